package main

import (
	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
)

func newMemberCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "member",
		Short: "Add, change, remove and list the ccTLDs of the directory",
	}
	var m directory.Member
	add := &cobra.Command{
		Use:   "add TLD --org ORG [--country CC]",
		Short: "Add a ccTLD (ASCII, A-label or U-label) with its managing organisation",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if m.Org == "" {
				return usagef("member add needs --org")
			}
			m.TLD = args[0]
			return g.mutate(cmd.Context(), func(tx *directory.Tx) (string, error) {
				added, err := tx.AddMember(m)
				return "added " + displayTLD(added.TLD) + " (" + added.Org + ")", err
			})
		},
	}
	add.Flags().StringVar(&m.Org, "org", "", "managing organisation (required)")
	add.Flags().StringVar(&m.Country, "country", "", "ISO 3166-1 country code (default: the ccTLD's)")

	var u directory.Member
	update := &cobra.Command{
		Use:   "update TLD [--org ORG] [--country CC] [--status active|inactive]",
		Short: "Change a ccTLD's organisation, country or status",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			if !fs.Changed("org") && !fs.Changed("country") && !fs.Changed("status") {
				return usagef("member update needs --org, --country or --status")
			}
			return g.mutate(cmd.Context(), func(tx *directory.Tx) (string, error) {
				now, err := tx.UpdateMember(args[0], func(m *directory.Member) error {
					if fs.Changed("org") {
						m.Org = u.Org
					}
					if fs.Changed("country") {
						m.Country = u.Country
					}
					if fs.Changed("status") {
						m.Status = u.Status
					}
					return nil
				})
				return "updated " + displayTLD(now.TLD), err
			})
		},
	}
	update.Flags().StringVar(&u.Org, "org", "", "managing organisation")
	update.Flags().StringVar(&u.Country, "country", "", "ISO 3166-1 country code")
	update.Flags().StringVar(&u.Status, "status", "", "active or inactive")

	remove := &cobra.Command{
		Use:   "remove TLD",
		Short: "Remove a ccTLD that has no contacts left",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.mutate(cmd.Context(), func(tx *directory.Tx) (string, error) {
				return "removed " + displayTLD(args[0]), tx.RemoveMember(args[0])
			})
		},
	}

	show := &cobra.Command{
		Use:   "show TLD",
		Short: "Show a ccTLD and its contacts",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openRead(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			m, err := s.Member(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			cs, err := s.Contacts(cmd.Context(), m.TLD)
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
		},
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List the ccTLDs with their contact counts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			snap, err := g.snapshot(cmd.Context())
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
		},
	}
	cmd.AddCommand(add, update, remove, show, list)
	return cmd
}

func displayTLD(code string) string {
	if t, err := directory.LookupCCTLD(code); err == nil {
		return t.Display()
	}
	return code
}

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
