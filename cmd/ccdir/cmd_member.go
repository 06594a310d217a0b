package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
)

func newMemberCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "member",
		Short: "Add, change, remove and list the ccTLDs of the directory",
	}
	cmd.AddCommand(newMemberAddCmd(g), newMemberUpdateCmd(g), newMemberRemoveCmd(g), newMemberShowCmd(g), newMemberListCmd(g))
	return cmd
}

type memberAddOptions struct {
	org     string
	country string
}

func newMemberAddCmd(g *globals) *cobra.Command {
	var o memberAddOptions
	cmd := &cobra.Command{
		Use:   "add TLD --org ORG [--country CC]",
		Short: "Add a ccTLD (ASCII, A-label or U-label) with its managing organisation",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMemberAdd(cmd.Context(), o, g, args[0])
		},
	}
	cmd.Flags().StringVar(&o.org, "org", "", "managing organisation (required)")
	cmd.Flags().StringVar(&o.country, "country", "", "ISO 3166-1 country code (default: the ccTLD's)")
	return cmd
}

func runMemberAdd(ctx context.Context, o memberAddOptions, g *globals, tld string) error {
	if o.org == "" {
		return usagef("member add needs --org")
	}
	m := directory.Member{TLD: tld, Org: o.org, Country: o.country}
	return g.mutate(ctx, func(tx *directory.Tx) (string, error) {
		added, err := tx.AddMember(m)
		return "added " + displayTLD(added.TLD) + " (" + added.Org + ")", err
	})
}

// memberUpdateOptions: a field changes only if its flag was given (the
// *Set fields).
type memberUpdateOptions struct {
	org, country, status          string
	orgSet, countrySet, statusSet bool
}

func newMemberUpdateCmd(g *globals) *cobra.Command {
	var o memberUpdateOptions
	cmd := &cobra.Command{
		Use:   "update TLD [--org ORG] [--country CC] [--status active|inactive]",
		Short: "Change a ccTLD's organisation, country or status",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			o.orgSet, o.countrySet, o.statusSet = fs.Changed("org"), fs.Changed("country"), fs.Changed("status")
			return runMemberUpdate(cmd.Context(), o, g, args[0])
		},
	}
	cmd.Flags().StringVar(&o.org, "org", "", "managing organisation")
	cmd.Flags().StringVar(&o.country, "country", "", "ISO 3166-1 country code")
	cmd.Flags().StringVar(&o.status, "status", "", "active or inactive")
	return cmd
}

func runMemberUpdate(ctx context.Context, o memberUpdateOptions, g *globals, tld string) error {
	if !o.orgSet && !o.countrySet && !o.statusSet {
		return usagef("member update needs --org, --country or --status")
	}
	return g.mutate(ctx, func(tx *directory.Tx) (string, error) {
		now, err := tx.UpdateMember(tld, func(m *directory.Member) error {
			if o.orgSet {
				m.Org = o.org
			}
			if o.countrySet {
				m.Country = o.country
			}
			if o.statusSet {
				m.Status = o.status
			}
			return nil
		})
		return "updated " + displayTLD(now.TLD), err
	})
}

func newMemberRemoveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "remove TLD",
		Short: "Remove a ccTLD that has no contacts left",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMemberRemove(cmd.Context(), g, args[0])
		},
	}
}

func runMemberRemove(ctx context.Context, g *globals, tld string) error {
	return g.mutate(ctx, func(tx *directory.Tx) (string, error) {
		return "removed " + displayTLD(tld), tx.RemoveMember(tld)
	})
}

func newMemberShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show TLD",
		Short: "Show a ccTLD and its contacts",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMemberShow(cmd.Context(), g, args[0])
		},
	}
}

func runMemberShow(ctx context.Context, g *globals, tld string) error {
	s, err := g.openRead(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	g.warnTampered(ctx, s)
	m, err := s.Member(ctx, tld)
	if err != nil {
		return err
	}
	cs, err := s.Contacts(ctx, m.TLD)
	if err != nil {
		return err
	}
	if g.json {
		return g.printJSON(struct {
			directory.Member
			Unicode  string              `json:"unicode"`
			Contacts []directory.Contact `json:"contacts"`
		}{m, unicodeTLD(m.TLD), nonNil(stripArmor(cs))})
	}
	g.printf("%s  %s  %s  %s\n", displayTLD(m.TLD), m.Org, m.Country, m.Status)
	for _, c := range cs {
		g.printf("\n")
		printContact(g, c, m.TLD)
	}
	if len(cs) == 0 {
		g.printf("no contacts\n")
	}
	return nil
}

func newMemberListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the ccTLDs with their contact counts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMemberList(cmd.Context(), g)
		},
	}
}

func runMemberList(ctx context.Context, g *globals) error {
	snap, err := g.snapshot(ctx)
	if err != nil {
		return err
	}
	type row struct {
		directory.Member
		Unicode  string `json:"unicode"`
		Security int    `json:"security_contacts"`
		Admin    int    `json:"admin_contacts"`
	}
	rows := []row{}
	for _, m := range snap.Members {
		r := row{Member: m, Unicode: unicodeTLD(m.TLD)}
		for _, c := range snap.ContactsOf(m.TLD) {
			if c.RoleFor(m.TLD) == directory.RoleSecurity {
				r.Security++
			} else {
				r.Admin++
			}
		}
		rows = append(rows, r)
	}
	if g.json {
		return g.printJSON(rows)
	}
	t := &table{}
	t.add("TLD", "ORG", "COUNTRY", "STATUS", "SECURITY", "ADMIN")
	for _, r := range rows {
		t.add(displayTLD(r.TLD), r.Org, r.Country, r.Status, itoa(r.Security), itoa(r.Admin))
	}
	if err := t.write(g.stdout); err != nil {
		return err
	}
	g.printf("%s, %s\n", plural(len(rows), "ccTLD"), snap.Head)
	return nil
}

func displayTLD(code string) string { return directory.DisplayTLD(code) }

func unicodeTLD(code string) string {
	if t, err := directory.LookupCCTLD(code); err == nil {
		return t.Unicode
	}
	return code
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
