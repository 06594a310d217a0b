package liveness

import "github.com/ccdir/ccdir/directory"

// Owner is the owner of the living directory's tables in
// schema_migrations.
const Owner = "liveness"

// Migrations are the steps of the living directory's tables, for
// directory.Open (see directory.Migration). Each step is appended with
// the next version; a released step is never changed.
var Migrations = []directory.Migration{}
