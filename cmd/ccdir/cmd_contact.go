package main

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/liveness"
)

// contactOptions are the flags of contact add and contact update.
type contactOptions struct {
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

func (f *contactOptions) phoneList() []directory.Phone {
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
	cmd.AddCommand(newContactAddCmd(g), newContactUpdateCmd(g), newContactRemoveCmd(g), newContactShowCmd(g), newContactListCmd(g), newContactEraseCmd(g))
	return cmd
}

func newContactAddCmd(g *globals) *cobra.Command {
	var o contactOptions
	cmd := &cobra.Command{
		Use:   "add TLD --name N --email E --phone P [--phone P]... [--emergency-phone P] [--role security|admin] [--key FILE] [--lang L]... [--tz TZ] [--24x7]",
		Short: "Add a contact for a ccTLD",
		Long: `Add a contact for a ccTLD. Phones are international numbers (+351 21 314 1516
or 00351...), stored in E.164; --emergency-phone marks the number to call first.
--key imports the contact's OpenPGP public key, which must be usable and carry a
user ID with the contact's email (or --any-uid).
A name is stored as it looks: runs of spaces become one space, and invisible
characters are refused, the zero-width joiner and non-joiner (U+200D, U+200C)
of some Persian or Indic names too: leave them out, or write the name in Latin
letters.

EXIT STATUS
  0 added, 1 refused (nothing changed), 2 usage`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runContactAdd(cmd.Context(), o, g, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "full name of the person or team (required)")
	f.StringVar(&o.email, "email", "", "mail address (required; unique)")
	f.StringArrayVar(&o.phones, "phone", nil, "phone number, international form (repeatable; at least one phone)")
	f.StringArrayVar(&o.emergencyPhones, "emergency-phone", nil, "emergency phone number, to call first (repeatable)")
	f.StringVar(&o.role, "role", directory.RoleSecurity, "role for this ccTLD: security or admin")
	f.StringVar(&o.key, "key", "", "file with the contact's armored OpenPGP public key")
	f.BoolVar(&o.anyUID, "any-uid", false, "accept a key without a user ID for the contact's email")
	f.StringArrayVar(&o.langs, "lang", nil, "language spoken, BCP 47 (repeatable, or comma-separated)")
	f.StringVar(&o.tz, "tz", "", "IANA time zone, e.g. Europe/Lisbon")
	f.BoolVar(&o.always, "24x7", false, "reachable around the clock")
	return cmd
}

func runContactAdd(ctx context.Context, o contactOptions, g *globals, tld string) error {
	if o.name == "" || o.email == "" {
		return usagef("contact add needs --name and --email")
	}
	c := directory.Contact{
		Email: o.email, Name: o.name, Phones: o.phoneList(),
		Roles:     []directory.Role{{TLD: tld, Role: o.role}},
		Languages: o.langs, TimeZone: o.tz, Always: o.always,
	}
	email, err := directory.NormalizeEmail(o.email)
	if err != nil {
		return err
	}
	if o.key != "" {
		pub, err := readOneKey(o.key)
		if err != nil {
			return err
		}
		k, warn, err := contactKey(pub, email, o.anyUID, g.now())
		if err != nil {
			return err
		}
		if warn != "" {
			g.warnf("%s", warn)
		}
		c.Key = k
	}
	err = g.mutate(ctx, func(tx *directory.Tx) (string, error) {
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
}

// contactUpdateOptions: a field changes only if its flag was given (the
// *Set fields); anyChange is false if no flag but global ones was given.
type contactUpdateOptions struct {
	contactOptions
	nameSet, emailSet, phonesSet, langsSet, tzSet, alwaysSet bool
	anyChange                                                bool
	replaceKey                                               bool
	confirmed                                                string // --confirmed, normalized; "" without it
	confirmedSet                                             bool
}

func newContactUpdateCmd(g *globals) *cobra.Command {
	var o contactUpdateOptions
	cmd := &cobra.Command{
		Use:   "update EMAIL [--name N] [--email NEW] [--phone P]... [--emergency-phone P]... [--add-role TLD[:ROLE]]... [--drop-role TLD]... [--lang L]... [--tz TZ] [--24x7=true|false] [--key FILE [--replace]] [--confirmed HOW]",
		Short: "Change a contact; --phone and --emergency-phone replace all phones, --lang replaces the languages",
		Long: `Change a contact; --phone and --emergency-phone replace all phones, --lang
replaces the languages. --key gives the contact a key if it has none, and
refreshes its key with a newer copy of the same key (same fingerprint);
another key replaces the registered one only with --replace (check the new
fingerprint with the contact itself first).

A new email (--email) or a key that replaces the registered one (--key
--replace) is guarded: without --confirmed it does not take effect now but
waits for changes.delay as a pending change, announced at once to the
contact's old address and key, its new ones and its ccTLDs' other contacts,
who can stop it (a signed VETO of its id); the output gives its id, when it
is due and how to apply it earlier (ccdir pending approve ID). The other
changes of the same command take effect at once. A new email and a new key
cannot both wait from one command: change one at a time, or confirm.
--confirmed HOW makes them take effect at once: HOW says how the operator
checked the change with the contact (for instance "phone call to +351 21
234 5678 on 2026-12-03"), and the ledger entry keeps it as its evidence,
with the operator's name as its actor.

EXIT STATUS
  0 updated (or the change waits, said so), 1 refused (nothing changed),
  2 usage`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			o.anyChange = fs.NFlag() != 0 && fs.NFlag() != countGlobal(cmd)
			o.nameSet, o.emailSet = fs.Changed("name"), fs.Changed("email")
			o.phonesSet = fs.Changed("phone") || fs.Changed("emergency-phone")
			o.langsSet, o.tzSet, o.alwaysSet, o.confirmedSet = fs.Changed("lang"), fs.Changed("tz"), fs.Changed("24x7"), fs.Changed("confirmed")
			return runContactUpdate(cmd.Context(), o, g, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "full name")
	f.StringVar(&o.email, "email", "", "new mail address (waits for changes.delay unless --confirmed)")
	f.StringArrayVar(&o.phones, "phone", nil, "phone number (repeatable; replaces all phones)")
	f.StringArrayVar(&o.emergencyPhones, "emergency-phone", nil, "emergency phone number (repeatable; replaces all phones)")
	f.StringArrayVar(&o.addRoles, "add-role", nil, "add or change a role: TLD or TLD:security or TLD:admin (repeatable)")
	f.StringArrayVar(&o.dropRoles, "drop-role", nil, "drop the role for a ccTLD (repeatable)")
	f.StringArrayVar(&o.langs, "lang", nil, "languages, BCP 47 (repeatable; replaces them)")
	f.StringVar(&o.tz, "tz", "", "IANA time zone")
	f.BoolVar(&o.always, "24x7", false, "reachable around the clock")
	f.StringVar(&o.key, "key", "", "file with a new armored OpenPGP public key")
	f.BoolVar(&o.anyUID, "any-uid", false, "accept a key without a user ID for the contact's email")
	f.BoolVar(&o.replaceKey, "replace", false, "with --key: replace the contact's registered key of another fingerprint (waits for changes.delay unless --confirmed)")
	f.StringVar(&o.confirmed, "confirmed", "", "how the new email or key was checked with the contact: it takes effect at once, and the ledger entry says so")
	return cmd
}

func runContactUpdate(ctx context.Context, o contactUpdateOptions, g *globals, address string) error {
	if !o.anyChange {
		return usagef("contact update needs at least one change")
	}
	email, err := directory.NormalizeEmail(address)
	if err != nil {
		return err
	}
	if o.replaceKey && o.key == "" {
		return usagef("--replace goes with --key")
	}
	if o.confirmedSet {
		if !o.emailSet && o.key == "" {
			return usagef("--confirmed goes with --email or --key")
		}
		if o.confirmed, err = normalizeConfirmed(o.confirmed); err != nil {
			return err
		}
	}
	newEmail := email
	if o.emailSet {
		if newEmail, err = directory.NormalizeEmail(o.email); err != nil {
			return err
		}
	}
	// A new email waits unless confirmed; the contact keeps its address
	// meanwhile, and a key given now must carry that one.
	pendingEmail := newEmail != email && o.confirmed == ""
	target := newEmail
	if pendingEmail {
		target = email
	}
	var pub *keys.Public
	if o.key != "" {
		if pub, err = readOneKey(o.key); err != nil {
			return err
		}
	}
	mo := mutateOptions{guarded: pendingEmail || (o.replaceKey && o.confirmed == "")}
	if o.confirmed != "" {
		mo.evidence = confirmedEvidence(o.confirmed)
	}
	return g.mutateWith(ctx, mo, func(tx *directory.Tx, notes *txNotes) (string, error) {
		var newKey, pendingKey *directory.Key
		changed := false
		if pub != nil {
			c, err := tx.Contact(email)
			if err != nil {
				return "", err
			}
			c.Email = target // the key must carry the email the contact will have
			k, change, warn, err := planKey(c, pub, o.anyUID, o.replaceKey, g.now())
			var re *replaceError
			if errors.As(err, &re) {
				return "", withHint(err, "check the new fingerprint with the contact itself, then add --replace")
			}
			if err != nil {
				return "", err
			}
			if warn != "" && !notes.dryRun {
				g.warnf("%s", warn)
			}
			switch change {
			case keyRefreshed, keyRevoked:
				// A newer copy of the same key: its own ledger entry.
				if _, err := tx.RefreshKey(email, k); err != nil {
					return "", err
				}
				changed = true
			case keyNew:
				newKey = k
			case keyReplaced:
				if o.confirmed == "" {
					pendingKey = k
				} else {
					newKey = k
				}
			}
		}
		if pendingEmail && pendingKey != nil {
			return "", withHint(errors.New("a new email and a new key cannot both wait from one command"),
				"change one at a time (the second once the first is applied), or make both at once with --confirmed HOW")
		}
		now, err := tx.UpdateContact(email, func(c *directory.Contact) error {
			if o.nameSet {
				c.Name = o.name
			}
			if o.emailSet && !pendingEmail {
				c.Email = o.email
			}
			if o.phonesSet {
				c.Phones = o.phoneList()
			}
			for _, r := range o.addRoles {
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
			for _, tld := range o.dropRoles {
				t, err := directory.LookupCCTLD(tld)
				if err != nil {
					return err
				}
				if !c.DropRole(t.Code) {
					return &directory.Error{Err: directory.ErrNotFound, Msg: c.Email + " has no role for " + t.Code}
				}
			}
			if o.langsSet {
				c.Languages = o.langs
			}
			if o.tzSet {
				c.TimeZone = o.tz
			}
			if o.alwaysSet {
				c.Always = o.always
			}
			if newKey != nil {
				c.Key = newKey
			}
			return nil
		})
		updated := err == nil || changed
		if errors.Is(err, directory.ErrUnchanged) && (changed || pendingEmail || pendingKey != nil) {
			err = nil
		}
		if err != nil {
			return "", err
		}
		var out []string
		if pendingEmail || pendingKey != nil {
			c, err := tx.Contact(email)
			if err != nil {
				return "", err
			}
			pe := ""
			if pendingEmail {
				pe = newEmail
			}
			line, err := g.proposeChange(ctx, tx, notes, c, pe, pendingKey)
			if err != nil {
				return "", err
			}
			out = append(out, line)
		}
		if updated {
			out = append(out, "updated "+now.Email)
		}
		return strings.Join(out, "\n"), nil
	})
}

func newContactRemoveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "remove EMAIL",
		Short: "Remove a contact from every ccTLD",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runContactRemove(cmd.Context(), g, args[0])
		},
	}
}

func runContactRemove(ctx context.Context, g *globals, email string) error {
	return g.mutate(ctx, func(tx *directory.Tx) (string, error) {
		c, err := tx.RemoveContact(email)
		return "removed " + c.Email, err
	})
}

func newContactShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show EMAIL",
		Short: "Show a contact",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runContactShow(cmd.Context(), g, args[0])
		},
	}
}

func runContactShow(ctx context.Context, g *globals, email string) error {
	s, err := g.openRead(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	g.warnTampered(ctx, s)
	c, err := s.Contact(ctx, email)
	if err != nil {
		return err
	}
	conf, err := liveness.Confirmed(ctx, s.DB(), []directory.Contact{c})
	if err != nil {
		return err
	}
	last := conf[c.Email]
	// The changes of its key or email that wait (operational, like the
	// last confirmed).
	all, err := liveness.ListPending(ctx, s.DB(), false)
	if err != nil {
		return err
	}
	var waiting []liveness.Pending
	for _, p := range all {
		if p.ContactID == c.ID && p.Email == c.Email {
			waiting = append(waiting, p)
		}
	}
	// Marked as pending list marks them: never applied, only discarded.
	tampered, err := g.tamperedPending(ctx, s.DB(), false)
	if err != nil {
		return err
	}
	if g.json {
		// "confirmed" is the signed entry's time of last change;
		// last_confirmed (operational, from the pings table) is the last
		// PONG, null if none.
		out := struct {
			directory.Contact
			LastConfirmed *string       `json:"last_confirmed"`
			Pending       []pendingJSON `json:"pending_changes,omitempty"`
		}{Contact: c, Pending: pendingJSONs(waiting)}
		for i := range out.Pending {
			out.Pending[i].Tampered = tampered[out.Pending[i].ID]
		}
		if !last.IsZero() {
			v := rfc3339(last)
			out.LastConfirmed = &v
		}
		return g.printJSON(out)
	}
	printContact(g, c, "")
	g.printf("last confirmed  %s\n", lastConfirmedText(last))
	for _, p := range waiting {
		mark := ""
		if tampered[p.ID] {
			mark = " TAMPERED (its row fails authentication: never applied; ccdir pending cancel " + p.ID + " --tampered)"
		}
		g.printf("pending         %s: %s, due %s, asked by %s%s\n", p.ID, p.What(), p.Due.UTC().Format("2006-01-02 15:04 UTC"), p.Actor, mark)
	}
	return nil
}

// lastConfirmedText is a contact's "last confirmed" (its last accepted
// PONG) for people: the time, or "never".
func lastConfirmedText(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

func newContactListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list [TLD]",
		Short: "List contacts, of one ccTLD or of all",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runContactList(cmd.Context(), g, args...)
		},
	}
}

// runContactList lists the contacts of the ccTLD given, or of all ccTLDs
// if none is.
func runContactList(ctx context.Context, g *globals, tlds ...string) error {
	tld := ""
	if len(tlds) == 1 {
		tld = tlds[0]
	}
	s, err := g.openRead(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	g.warnTampered(ctx, s)
	cs, err := s.Contacts(ctx, tld)
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
	g.printf("name            %s\n", c.Name)
	g.printf("email           %s\n", c.Email)
	for _, r := range c.Roles {
		if tld == "" || r.TLD == tld {
			g.printf("role            %s of %s\n", r.Role, displayTLD(r.TLD))
		}
	}
	for _, p := range c.Phones {
		mark := ""
		if p.Emergency {
			mark = " (emergency)"
		}
		g.printf("phone           %s%s\n", p.Number, mark)
	}
	g.printf("24x7            %s\n", yesNo(c.Always))
	if len(c.Languages) > 0 {
		g.printf("languages       %s\n", strings.Join(c.Languages, ", "))
	}
	if c.TimeZone != "" {
		g.printf("time zone       %s\n", c.TimeZone)
	}
	if c.Key != nil {
		exp := "never expires"
		if c.Key.Expires != "" {
			exp = "expires " + c.Key.Expires[:10]
		}
		g.printf("key             %s (%s, %s)\n", keys.GroupFingerprint(c.Key.Fingerprint), c.Key.Algorithm, exp)
	} else {
		g.printf("key             none\n")
	}
	// The signed entry's Confirmed field is the time of its last change
	// (a ledger entry), not a confirmation: "last confirmed" is a PONG,
	// operational data that contact show adds from the pings table.
	g.printf("changed         %s\n", c.Confirmed)
}
