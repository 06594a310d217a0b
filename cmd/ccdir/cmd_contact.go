package main

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ccdir/ccdir/directory"
)

type contactFlags struct {
	name            string
	email           string
	phones          []string
	emergencyPhones []string
	role            string
	key             string
	anyUID          bool
	langs           []string
	tz              string
	always          bool
	addRoles        []string
	dropRoles       []string
}

func (f *contactFlags) phoneList() []directory.Phone {
	var ps []directory.Phone
	for _, p := range f.emergencyPhones {
		ps = append(ps, directory.Phone{Number: p, Emergency: true})
	}
	for _, p := range f.phones {
		ps = append(ps, directory.Phone{Number: p})
	}
	return ps
}

func newContactCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "contact",
		Short: "Add, change, remove and list contacts",
	}
	var a contactFlags
	add := &cobra.Command{
		Use:   "add TLD --name N --email E --phone P [--phone P]... [--emergency-phone P] [--role security|admin] [--key FILE] [--lang L]... [--tz TZ] [--24x7]",
		Short: "Add a contact for a ccTLD",
		Long: `Add a contact for a ccTLD. Phones are international numbers (+351 21 314 1516
or 00351...), stored in E.164; --emergency-phone marks the number to call first.
--key imports the contact's OpenPGP public key, which must be usable and carry a
user ID with the contact's email (or --any-uid).

EXIT STATUS
  0 added, 1 refused (nothing changed), 2 usage`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.name == "" || a.email == "" {
				return usagef("contact add needs --name and --email")
			}
			c := directory.Contact{
				Email: a.email, Name: a.name, Phones: a.phoneList(),
				Roles:     []directory.Role{{TLD: args[0], Role: a.role}},
				Languages: a.langs, TimeZone: a.tz, Always: a.always,
			}
			email, err := directory.NormalizeEmail(a.email)
			if err != nil {
				return err
			}
			if a.key != "" {
				pub, err := readOneKey(a.key)
				if err != nil {
					return err
				}
				k, warn, err := contactKey(pub, email, a.anyUID, g.now())
				if err != nil {
					return err
				}
				if warn != "" {
					g.warnf("%s", warn)
				}
				c.Key = k
			}
			err = g.mutate(cmd.Context(), func(tx *directory.Tx) (string, error) {
				added, err := tx.AddContact(c)
				if err != nil {
					return "", err
				}
				return "added " + added.Email + " as " + added.Roles[0].Role + " contact of " + displayTLD(added.Roles[0].TLD), nil
			})
			if err == nil && c.Key == nil {
				g.warnf("%s has no key: they will get no digest until one is imported (ccdir key import FILE)", email)
			}
			return err
		},
	}
	af := add.Flags()
	af.StringVar(&a.name, "name", "", "full name of the person or team (required)")
	af.StringVar(&a.email, "email", "", "mail address (required; unique)")
	af.StringArrayVar(&a.phones, "phone", nil, "phone number, international form (repeatable; at least one phone)")
	af.StringArrayVar(&a.emergencyPhones, "emergency-phone", nil, "emergency phone number, to call first (repeatable)")
	af.StringVar(&a.role, "role", directory.RoleSecurity, "role for this ccTLD: security or admin")
	af.StringVar(&a.key, "key", "", "file with the contact's armored OpenPGP public key")
	af.BoolVar(&a.anyUID, "any-uid", false, "accept a key without a user ID for the contact's email")
	af.StringArrayVar(&a.langs, "lang", nil, "language spoken, BCP 47 (repeatable, or comma-separated)")
	af.StringVar(&a.tz, "tz", "", "IANA time zone, e.g. Europe/Lisbon")
	af.BoolVar(&a.always, "24x7", false, "reachable around the clock")

	var u contactFlags
	update := &cobra.Command{
		Use:   "update EMAIL [--name N] [--email NEW] [--phone P]... [--emergency-phone P]... [--add-role TLD[:ROLE]]... [--drop-role TLD]... [--lang L]... [--tz TZ] [--24x7=true|false] [--key FILE]",
		Short: "Change a contact; --phone and --emergency-phone replace all phones, --lang replaces the languages",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			if fs.NFlag() == 0 || (fs.NFlag() == countGlobal(cmd)) {
				return usagef("contact update needs at least one change")
			}
			email, err := directory.NormalizeEmail(args[0])
			if err != nil {
				return err
			}
			var newKey *directory.Key
			if u.key != "" {
				pub, err := readOneKey(u.key)
				if err != nil {
					return err
				}
				target := email
				if fs.Changed("email") {
					if target, err = directory.NormalizeEmail(u.email); err != nil {
						return err
					}
				}
				k, warn, err := contactKey(pub, target, u.anyUID, g.now())
				if err != nil {
					return err
				}
				if warn != "" {
					g.warnf("%s", warn)
				}
				newKey = k
			}
			return g.mutate(cmd.Context(), func(tx *directory.Tx) (string, error) {
				now, err := tx.UpdateContact(email, func(c *directory.Contact) error {
					if fs.Changed("name") {
						c.Name = u.name
					}
					if fs.Changed("email") {
						c.Email = u.email
					}
					if fs.Changed("phone") || fs.Changed("emergency-phone") {
						c.Phones = u.phoneList()
					}
					for _, r := range u.addRoles {
						tld, role, _ := strings.Cut(r, ":")
						if role == "" {
							role = directory.RoleSecurity
						}
						t, err := directory.LookupCCTLD(tld)
						if err != nil {
							return err
						}
						c.SetRole(t.Code, role)
					}
					for _, tld := range u.dropRoles {
						t, err := directory.LookupCCTLD(tld)
						if err != nil {
							return err
						}
						if !c.DropRole(t.Code) {
							return &directory.Error{Err: directory.ErrNotFound, Msg: c.Email + " has no role for " + t.Code}
						}
					}
					if fs.Changed("lang") {
						c.Languages = u.langs
					}
					if fs.Changed("tz") {
						c.TimeZone = u.tz
					}
					if fs.Changed("24x7") {
						c.Always = u.always
					}
					if newKey != nil {
						c.Key = newKey
					}
					return nil
				})
				return "updated " + now.Email, err
			})
		},
	}
	uf := update.Flags()
	uf.StringVar(&u.name, "name", "", "full name")
	uf.StringVar(&u.email, "email", "", "new mail address")
	uf.StringArrayVar(&u.phones, "phone", nil, "phone number (repeatable; replaces all phones)")
	uf.StringArrayVar(&u.emergencyPhones, "emergency-phone", nil, "emergency phone number (repeatable; replaces all phones)")
	uf.StringArrayVar(&u.addRoles, "add-role", nil, "add or change a role: TLD or TLD:security or TLD:admin (repeatable)")
	uf.StringArrayVar(&u.dropRoles, "drop-role", nil, "drop the role for a ccTLD (repeatable)")
	uf.StringArrayVar(&u.langs, "lang", nil, "languages, BCP 47 (repeatable; replaces them)")
	uf.StringVar(&u.tz, "tz", "", "IANA time zone")
	uf.BoolVar(&u.always, "24x7", false, "reachable around the clock")
	uf.StringVar(&u.key, "key", "", "file with a new armored OpenPGP public key")
	uf.BoolVar(&u.anyUID, "any-uid", false, "accept a key without a user ID for the contact's email")

	remove := &cobra.Command{
		Use:   "remove EMAIL",
		Short: "Remove a contact from every ccTLD",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.mutate(cmd.Context(), func(tx *directory.Tx) (string, error) {
				c, err := tx.RemoveContact(args[0])
				return "removed " + c.Email, err
			})
		},
	}

	show := &cobra.Command{
		Use:   "show EMAIL",
		Short: "Show a contact",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openRead(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			c, err := s.Contact(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(c)
			}
			printContact(g, c, "")
			return nil
		},
	}

	list := &cobra.Command{
		Use:   "list [TLD]",
		Short: "List contacts, of one ccTLD or of all",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openRead(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			tld := ""
			if len(args) == 1 {
				tld = args[0]
			}
			cs, err := s.Contacts(cmd.Context(), tld)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(nonNil(stripArmor(cs)))
			}
			t := &table{}
			t.add("EMAIL", "NAME", "ROLES", "PHONE", "24X7", "KEY")
			for _, c := range cs {
				var roles []string
				for _, r := range c.Roles {
					roles = append(roles, displayTLD(r.TLD)+":"+r.Role)
				}
				key := "-"
				if c.Key != nil {
					key = c.Key.Fingerprint
				}
				t.add(c.Email, c.Name, strings.Join(roles, ","), c.Phones[0].Number, yesNo(c.Always), key)
			}
			if err := t.write(g.stdout); err != nil {
				return err
			}
			g.printf("%s\n", plural(len(cs), "contact"))
			return nil
		},
	}
	cmd.AddCommand(add, update, remove, show, list)
	return cmd
}

// countGlobal counts the persistent flags the user set, so "update EMAIL
// --json" alone is still "no change".
func countGlobal(cmd *cobra.Command) int {
	// InheritedFlags is a new FlagSet whose Visit sees no flag as set,
	// so count the changed ones by hand.
	n := 0
	cmd.InheritedFlags().VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			n++
		}
	})
	return n
}

// stripArmor drops the armored keys from contacts for listings.
func stripArmor(cs []directory.Contact) []directory.Contact {
	out := make([]directory.Contact, len(cs))
	for i, c := range cs {
		if c.Key != nil {
			k := *c.Key
			k.Armored = ""
			c.Key = &k
		}
		out[i] = c
	}
	return out
}

func printContact(g *globals, c directory.Contact, tld string) {
	g.printf("name       %s\n", c.Name)
	g.printf("email      %s\n", c.Email)
	for _, r := range c.Roles {
		if tld == "" || r.TLD == tld {
			g.printf("role       %s of %s\n", r.Role, displayTLD(r.TLD))
		}
	}
	for _, p := range c.Phones {
		mark := ""
		if p.Emergency {
			mark = " (emergency)"
		}
		g.printf("phone      %s%s\n", p.Number, mark)
	}
	g.printf("24x7       %s\n", yesNo(c.Always))
	if len(c.Languages) > 0 {
		g.printf("languages  %s\n", strings.Join(c.Languages, ", "))
	}
	if c.TimeZone != "" {
		g.printf("time zone  %s\n", c.TimeZone)
	}
	if c.Key != nil {
		exp := "never expires"
		if c.Key.Expires != "" {
			exp = "expires " + c.Key.Expires[:10]
		}
		g.printf("key        %s (%s, %s)\n", groupHex(c.Key.Fingerprint), c.Key.Algorithm, exp)
	} else {
		g.printf("key        none\n")
	}
	g.printf("confirmed  %s\n", c.Confirmed)
}
