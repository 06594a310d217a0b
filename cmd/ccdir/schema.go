package main

import (
	"slices"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/digest"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/receive"
	"github.com/ccdir/ccdir/pkg/relay"
	"github.com/ccdir/ccdir/pkg/report"
)

// migrations are the schema steps of every package that keeps tables in
// the directory database, beside the signed tables' own: directory.Open
// applies those a home has not had yet, and verify accepts exactly the
// tables they make. A package with new tables adds its list here.
func migrations() []directory.Migration {
	return slices.Concat(outbox.Migrations, inbound.Migrations, digest.Migrations, relay.Migrations, liveness.Migrations, receive.Migrations, report.Migrations)
}
