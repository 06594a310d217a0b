package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newManCmd is the hidden ccdir man DIR: one man page (section 1) per
// command, from the same cobra tree, help texts and Examples as --help
// (github.com/spf13/cobra/doc). scripts/install.sh runs it.
func newManCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "man DIR",
		Short:  "Write a man page (section 1) for every command into DIR",
		Hidden: true,
		Long: `Write a man page, section 1, for ccdir and each of its commands into DIR
(ccdir.1, ccdir-contact-add.1, …), made from the same help texts and
examples as --help. DIR is created when missing; pages there are
replaced. The pages' date is SOURCE_DATE_EPOCH when set, else the date of
the commit the binary was built from, so that a rebuild gives the same
pages. scripts/install.sh installs them into PREFIX/share/man/man1.`,
		Args:              cobra.ExactArgs(1),
		PersistentPreRunE: noSetup,
		RunE:              func(cmd *cobra.Command, args []string) error { return runMan(cmd, g, args[0]) },
	}
}

// runMan writes the man pages of the whole command tree into dir.
func runMan(cmd *cobra.Command, g *globals, dir string) error {
	root := cmd.Root()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return withHint(err, "name a folder you can write, e.g. ccdir man ./man1")
	}
	v := readVersion()
	header := &doc.GenManHeader{Section: "1", Source: "ccdir " + v.Version, Manual: "ccdir manual"}
	if os.Getenv("SOURCE_DATE_EPOCH") == "" { // else cobra/doc takes it
		if t, err := time.Parse(time.RFC3339, v.Date); err == nil {
			header.Date = &t
		}
	}
	root.DisableAutoGenTag = true // no "generated on" date: the same build gives the same pages
	if err := doc.GenManTree(root, header, dir); err != nil {
		return err
	}
	pages, _ := filepath.Glob(filepath.Join(dir, "ccdir*.1"))
	if g.json {
		return g.printJSON(map[string]any{"dir": dir, "pages": len(pages)})
	}
	_, err := fmt.Fprintf(g.stdout, "wrote %d man pages to %s\n", len(pages), dir)
	return err
}
