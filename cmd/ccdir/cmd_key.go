package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/export"
)

func newKeyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Import and check contacts' OpenPGP keys; the directory key's user IDs",
	}
	cmd.AddCommand(newKeyImportCmd(g), newKeyCheckCmd(g), newKeyUpdateUIDsCmd(g), newKeyRevokeRetiredCmd(g))
	return cmd
}

type keyImportOptions struct {
	email        string
	anyUID       bool
	replace      []string
	operator     bool
	confirmed    string // --confirmed, normalized; "" without it
	confirmedSet bool
}

func newKeyImportCmd(g *globals) *cobra.Command {
	var o keyImportOptions
	cmd := &cobra.Command{
		Use:   "import FILE [--email EMAIL [--any-uid]] [--replace EMAIL]... [--confirmed HOW] | import --operator [--email ADDRESS] [--any-uid] FILE",
		Short: "Import armored public keys, matched to contacts by the email in their user IDs",
		Long: `Import one key or a bundle of many (as gpg --export --armor writes). Each key
is given to the contact whose email one of its user IDs carries; with --email,
the file must hold one key and it goes to that contact. A key that is expired,
revoked, weak (RSA below 2048 bits), without an encryption subkey or without
a signing key is refused with the reason, and so is secret key material. All
keys are imported or none.

A newer copy of a contact's registered key (the same fingerprint, with a
later expiry, new self-signatures or new subkeys) refreshes it: it is merged
into the registered copy. A copy that is not newer changes nothing. A copy
with its owner's revocation (of the key or of a subkey) is always taken: the
contact then gets nothing encrypted until a new key is registered with
--replace. FILE may also be a bare revocation certificate (gpg --gen-revoke):
it revokes the registered key that made it.

A key never replaces a contact's registered key of another fingerprint
unless --replace names that contact: without it the whole import is
refused, naming the contact and both fingerprints. Check the new fingerprint
with the contact (not with the file) before you replace. A replacement is
guarded: without --confirmed it does not take effect now but waits for
changes.delay as a pending change, announced at once to the contact's old
address and key, its new key and its ccTLDs' other contacts, who can stop it
(a signed VETO of its id); the output gives its id, when it is due and how to
apply it earlier (ccdir pending approve ID). The file's other keys (first
keys, refreshes) take effect at once. --confirmed HOW makes the replacements
take effect at once: HOW says how the operator checked the new key with the
contact (for instance "phone call to +351 21 234 5678 on 2026-12-03"), and
the ledger entries keep it as their evidence, with the operator's name as
their actor.

With --operator, FILE holds the operator's own key (operator.key, kept in
keys/operator.pub.asc), not a contact's: the directory's mail for the
operator (ccdir report) is encrypted to it. --email sets the operator's
address (operator.address) too; without it the key is for the address set
already. The key must be usable and have a user ID with that address
(unless --any-uid), and be neither the directory's nor a contact's. It
replaces the operator's key at once (saying old → new fingerprint): it is
the operator's own configuration, written to the config file, not a
ledger entry.

EXIT STATUS
  0 imported (or nothing to change), 1 refused (nothing changed), 2 usage`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.confirmedSet = cmd.Flags().Changed("confirmed")
			return runKeyImport(cmd.Context(), o, g, args[0])
		},
	}
	cmd.Flags().StringVar(&o.email, "email", "", "give the key to this contact")
	cmd.Flags().BoolVar(&o.anyUID, "any-uid", false, "with --email: accept a key without a user ID for that email")
	cmd.Flags().StringArrayVar(&o.replace, "replace", nil, "let the file's key replace this contact's registered key of another fingerprint (repeatable)")
	cmd.Flags().BoolVar(&o.operator, "operator", false, "FILE is the operator's own key (operator.key); --email sets operator.address")
	cmd.Flags().StringVar(&o.confirmed, "confirmed", "", "with --replace: how the new key was checked with the contact; it takes effect at once, and the ledger entry says so")
	return cmd
}

func runKeyImport(ctx context.Context, o keyImportOptions, g *globals, file string) error {
	if o.confirmedSet {
		if len(o.replace) == 0 || o.operator {
			return usagef("--confirmed goes with --replace")
		}
		how, err := normalizeConfirmed(o.confirmed)
		if err != nil {
			return err
		}
		o.confirmed = how
	}
	if o.operator {
		return runOperatorKeyImport(ctx, o, g, file)
	}
	b, err := readCapped(file, maxBundleFile)
	if err != nil {
		return err
	}
	pubs, err := keys.ParsePublic(b)
	if errors.Is(err, keys.ErrNoKey) && o.email == "" && len(o.replace) == 0 {
		if rc, rerr := keys.ParseRevocationCert(b); rerr == nil {
			return runRevocationImport(ctx, g, file, rc)
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if o.anyUID && o.email == "" {
		return usagef("--any-uid goes with --email")
	}
	if o.email != "" && len(pubs) != 1 {
		return fmt.Errorf("%s holds %d keys; with --email it must hold one", file, len(pubs))
	}
	replace := map[string]bool{}
	for _, r := range o.replace {
		e, err := directory.NormalizeEmail(r)
		if err != nil {
			return usagef("--replace: %v", err)
		}
		replace[e] = true
	}
	now := g.now()
	mo := mutateOptions{guarded: len(o.replace) > 0 && o.confirmed == ""}
	if o.confirmed != "" {
		mo.evidence = confirmedEvidence(o.confirmed)
	}
	return g.mutateWith(ctx, mo, func(tx *directory.Tx, notes *txNotes) (string, error) {
		// Which contact each key is for: the one named by --email,
		// or the one whose email a user ID of the key carries.
		type assignment struct {
			c      directory.Contact
			pub    *keys.Public
			anyUID bool
		}
		var todo []assignment
		if o.email != "" {
			c, err := tx.Contact(o.email)
			if err != nil {
				return "", err
			}
			todo = append(todo, assignment{c, pubs[0], o.anyUID})
		}
		taken := map[string]string{}
		for _, p := range pubs {
			if o.email != "" {
				break
			}
			var match []directory.Contact
			for _, e := range p.Emails {
				if c, err := tx.Contact(e); err == nil && !slices.ContainsFunc(match, func(m directory.Contact) bool { return m.Email == c.Email }) {
					match = append(match, c)
				}
			}
			switch {
			case len(match) == 0:
				if !notes.dryRun {
					g.warnf("skipped key %s (%s): no contact has one of its emails", p.Fingerprint, quoteAll(p.UserIDs))
				}
				continue
			case len(match) > 1:
				emails := make([]string, len(match))
				for i, m := range match {
					emails[i] = m.Email
				}
				return "", withHint(fmt.Errorf("key %s matches several contacts: %s", p.Fingerprint, strings.Join(emails, ", ")),
					"import it for one of them with: ccdir key import FILE --email EMAIL")
			}
			email := match[0].Email
			if other, ok := taken[email]; ok {
				if other == p.Fingerprint {
					continue // the same key twice in the bundle
				}
				return "", fmt.Errorf("%s holds two keys for %s: %s and %s", file, email, other, p.Fingerprint)
			}
			taken[email] = p.Fingerprint
			todo = append(todo, assignment{match[0], p, false})
		}
		if len(todo) == 0 {
			return "", withHint(fmt.Errorf("%s: none of its %d key(s) belongs to a contact", file, len(pubs)),
				"add the contacts first, or import a key for one contact with --email EMAIL --any-uid")
		}
		var imported, refreshed, replaced, revoked, waiting []string
		var refused []string
		used := map[string]bool{}
		for _, a := range todo {
			k, change, warn, err := planKey(a.c, a.pub, a.anyUID, replace[a.c.Email], now)
			var re *replaceError
			if errors.As(err, &re) {
				refused = append(refused, re.Error())
				continue
			}
			if err != nil {
				return "", err
			}
			if warn != "" && change != keyRevoked && !notes.dryRun {
				g.warnf("%s", warn)
			}
			switch change {
			case keyNew:
				_, err = tx.SetKey(a.c.Email, k)
				imported = append(imported, a.c.Email)
			case keyReplaced:
				used[a.c.Email] = true
				if o.confirmed == "" {
					// Guarded: it waits for changes.delay.
					var line string
					if line, err = g.proposeChange(ctx, tx, notes, a.c, "", k); err == nil {
						waiting = append(waiting, line)
					}
					break
				}
				_, err = tx.SetKey(a.c.Email, k)
				replaced = append(replaced, fmt.Sprintf("%s (%s → %s)", a.c.Email, a.c.Key.Fingerprint, k.Fingerprint))
			case keyRefreshed:
				_, err = tx.RefreshKey(a.c.Email, k)
				exp := "never expires"
				if t, ok := k.ExpiresAt(); ok {
					exp = "expires " + t.UTC().Format(time.DateOnly)
				}
				refreshed = append(refreshed, fmt.Sprintf("%s (%s, %s)", a.c.Email, k.Fingerprint, exp))
			case keyRevoked:
				// A revocation by the key's owner is always taken.
				_, err = tx.RefreshKey(a.c.Email, k)
				revoked = append(revoked, warn)
			}
			if err != nil && !errors.Is(err, directory.ErrUnchanged) {
				return "", err
			}
		}
		if len(refused) > 0 {
			return "", withHint(fmt.Errorf("nothing imported: %s", strings.Join(refused, "; ")),
				"check the new fingerprint with the contact itself, then: ccdir key import %s --replace EMAIL", file)
		}
		for _, r := range o.replace {
			if e, _ := directory.NormalizeEmail(r); !used[e] {
				return "", withHint(fmt.Errorf("--replace %s: %s holds no other key for that contact; nothing imported", e, file),
					"name with --replace only the contacts whose key the file replaces")
			}
		}
		var out []string
		if len(imported) > 0 {
			out = append(out, fmt.Sprintf("imported %s: %s", plural(len(imported), "key"), strings.Join(imported, ", ")))
		}
		if len(refreshed) > 0 {
			out = append(out, fmt.Sprintf("refreshed %s: %s", plural(len(refreshed), "key"), strings.Join(refreshed, ", ")))
		}
		if len(replaced) > 0 {
			out = append(out, fmt.Sprintf("replaced %s: %s", plural(len(replaced), "key"), strings.Join(replaced, ", ")))
		}
		out = append(out, revoked...)
		out = append(out, waiting...)
		if len(out) == 0 {
			return "unchanged: every key is already registered", nil
		}
		return strings.Join(out, "; "), nil
	})
}

// runRevocationImport takes a bare revocation certificate (gpg
// --gen-revoke) for the registered key that made it, as a key.refresh:
// the key is then revoked in the directory (see planKey).
func runRevocationImport(ctx context.Context, g *globals, file string, rc *keys.RevocationCert) error {
	s, err := g.openRead(ctx)
	if err != nil {
		return err
	}
	cs, err := s.Contacts(ctx, "")
	s.Close()
	if err != nil {
		return err
	}
	issuer := rc.Issuer
	if issuer == "" {
		issuer = rc.IssuerKeyID
	}
	var email string
	for _, c := range cs {
		if c.Key == nil {
			continue
		}
		if pub, err := keys.ParsePublicOne([]byte(c.Key.Armored)); err == nil && rc.Of(pub) {
			email = c.Email
			break
		}
	}
	if email == "" {
		return withHint(fmt.Errorf("%s is a revocation certificate of key %s, which no contact has", file, issuer),
			"nothing to revoke: the directory sends nothing to a key it does not have")
	}
	now := g.now()
	return g.mutate(ctx, func(tx *directory.Tx) (string, error) {
		c, err := tx.Contact(email)
		if err != nil {
			return "", err
		}
		if c.Key == nil {
			return "", fmt.Errorf("%s has no key any more", email)
		}
		reg, err := keys.ParsePublicOne([]byte(c.Key.Armored))
		if err != nil {
			return "", fmt.Errorf("the registered key of %s: %w", email, err)
		}
		merged, err := reg.Revoke(rc)
		if errors.Is(err, keys.ErrNotNewer) {
			return fmt.Sprintf("unchanged: key %s of %s carries that revocation already", reg.Fingerprint, email), nil
		}
		if err != nil {
			return "", fmt.Errorf("%s: %w", file, err)
		}
		r, err := export.RefreshedKey(reg, merged, email, false, now)
		if err != nil {
			return "", err
		}
		if _, err := tx.RefreshKey(email, r.Key); err != nil {
			return "", err
		}
		return revokedNote(email, r), nil
	})
}

type keyCheckOptions struct {
	days int
}

func newKeyCheckCmd(g *globals) *cobra.Command {
	var o keyCheckOptions
	cmd := &cobra.Command{
		Use:   "check [--days N]",
		Short: "List contacts whose key is missing, unusable, or expires within N days",
		Long: `List contacts whose key is missing, unusable now (expired, revoked, weak), or
expires within N days (default 30): when the key stops working, the
primary key's expiry or, if earlier, that of its last encryption or
signing subkey. Such contacts get no digest. The operator's own key
(operator.key), when set, is checked too: the row named (operator), not
counted among the contacts; and so is the directory's own key, the row
named (directory key) when it expires within N days (renew it with ccdir
key update-uids --renew); the last line says when it expires.

EXIT STATUS
  0 the check ran (whatever it found), 1 error`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKeyCheck(cmd.Context(), o, g)
		},
	}
	cmd.Flags().IntVar(&o.days, "days", 30, "warn about keys expiring within this many days")
	return cmd
}

func runKeyCheck(ctx context.Context, o keyCheckOptions, g *globals) error {
	if o.days < 0 || o.days > 3650 {
		return usagef("--days must be from 0 to 3650")
	}
	s, err := g.openRead(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	g.warnTampered(ctx, s)
	cs, err := s.Contacts(ctx, "")
	if err != nil {
		return err
	}
	now := g.now()
	horizon := now.Add(time.Duration(o.days) * 24 * time.Hour)
	type finding struct {
		Email       string `json:"email"`
		Name        string `json:"name"`
		Fingerprint string `json:"fingerprint,omitempty"`
		Expires     string `json:"expires,omitempty"`
		Problem     string `json:"problem"`
	}
	findings := []finding{}
	for _, c := range cs {
		f := finding{Email: c.Email, Name: c.Name}
		if c.Key == nil {
			f.Problem = "no key"
			findings = append(findings, f)
			continue
		}
		f.Fingerprint, f.Expires = c.Key.Fingerprint, c.Key.Expires
		pub, err := keys.ParsePublicOne([]byte(c.Key.Armored))
		if err == nil {
			err = pub.Check(now)
		}
		if err != nil {
			f.Problem = "unusable: " + err.Error()
		} else if f.Problem = expiringProblem(pub, c.Key, now, horizon); f.Problem != "" {
			f.Expires = pub.UsableUntil(now).UTC().Format(time.RFC3339)
		} else {
			continue
		}
		findings = append(findings, f)
	}
	contactFindings := len(findings)
	sort.SliceStable(findings, func(i, j int) bool { return findings[i].Email < findings[j].Email })
	// The operator's own key (operator.key), when one is set: the
	// directory's mail for the operator is encrypted to it.
	if addr, fpr := g.text("operator.address"), g.text("operator.key"); addr != "" || fpr != "" {
		f := finding{Email: addr, Name: "(operator)", Fingerprint: fpr}
		info, err := s.Info(ctx)
		var op *operatorIdentity
		if err == nil {
			op, err = g.operator(info)
		}
		var pub *keys.Public
		if err == nil {
			f.Expires = op.Key.Expires
			if pub, err = keys.ParsePublicOne([]byte(op.Key.Armored)); err == nil {
				err = pub.Check(now)
			}
		}
		if err != nil {
			f.Problem = "unusable: " + err.Error()
		} else if f.Problem = expiringProblem(pub, op.Key, now, horizon); f.Problem != "" {
			f.Expires = pub.UsableUntil(now).UTC().Format(time.RFC3339)
		}
		if f.Problem != "" {
			findings = append(findings, f)
		}
	}
	// The directory's own key: it signs everything, and expires.
	dirKey, dirErr := g.publicKey()
	if dirErr == nil {
		if exp := dirKey.Expires; !exp.IsZero() && exp.Before(horizon) {
			f := finding{Email: g.text("directory.address"), Name: "(directory key)", Fingerprint: dirKey.Fingerprint, Expires: exp.UTC().Format(time.RFC3339)}
			if info, err := s.Info(ctx); err == nil {
				f.Email = info.Address
			}
			f.Problem = fmt.Sprintf("expires in %s; renew it: ccdir key update-uids --renew", plural(int(exp.Sub(now).Hours()/24), "day"))
			if !exp.After(now) {
				f.Problem = "expired: it signs nothing; renew it: ccdir key update-uids --renew"
			}
			findings = append(findings, f)
		}
	}
	if g.json {
		return g.printJSON(findings)
	}
	t := &table{}
	t.add("EMAIL", "NAME", "KEY", "PROBLEM")
	for _, f := range findings {
		fp := f.Fingerprint
		if fp == "" {
			fp = "-"
		}
		t.add(f.Email, f.Name, fp, f.Problem)
	}
	if len(findings) > 0 {
		if err := t.write(g.stdout); err != nil {
			return err
		}
	}
	g.printf("%d of %s need attention (keys expiring within %d days, unusable or missing)\n", contactFindings, plural(len(cs), "contact"), o.days)
	if dirErr == nil {
		g.printf("directory key %s %s\n", dirKey.Fingerprint, keyExpiryText(dirKey.Expires, now))
	}
	return nil
}

// expiringProblem is key check's finding for a usable key that stops
// working before horizon, or "": when it stops working is
// keys.Public.UsableUntil (an encryption or signing subkey may expire
// before the primary key, whose expiry k records), and a subkey that
// ends it first is named with both dates.
func expiringProblem(pub *keys.Public, k *directory.Key, now, horizon time.Time) string {
	exp := pub.UsableUntil(now)
	if exp.IsZero() || !exp.Before(horizon) {
		return ""
	}
	p := fmt.Sprintf("expires in %d days", int(exp.Sub(now).Hours()/24))
	primary, ok := k.ExpiresAt()
	switch {
	case !ok:
		p += fmt.Sprintf(" (on %s: a subkey; the primary key does not expire)", exp.UTC().Format(time.DateOnly))
	case exp.Before(primary):
		p += fmt.Sprintf(" (on %s: a subkey; the primary key expires %s)", exp.UTC().Format(time.DateOnly), primary.UTC().Format(time.DateOnly))
	}
	return p
}

type pubkeyOptions struct {
	wkd  string // --wkd DIR
	dane bool   // --dane
}

func newPubkeyCmd(g *globals) *cobra.Command {
	var o pubkeyOptions
	cmd := &cobra.Command{
		Use:   "pubkey [--wkd DIR | --dane]",
		Short: "Print the directory's public key (armored), or publish it (Web Key Directory, DNS)",
		Long: `Print the directory's public key, armored, with a user ID for each of the
directory's addresses (the command address and the list's). After a
ccdir rekey, the key carries the certifications by the directory's earlier
keys (here, in the WKD files and the DNS records), and the earlier keys
follow it, the latest first, each certified by the one before; a key
revoked by rekey --revoke-old carries its revocation. gpg --import takes
them all.

--wkd DIR writes the Web Key Directory files for each address
(draft-koch-openpgp-webkey-service), so that an existing web server
publishes the key and mail clients (gpg --locate-keys, Thunderbird, K-9)
find it by address: for the direct method
DIR/.well-known/openpgpkey/hu/HASH and DIR/.well-known/openpgpkey/policy
(serve DIR as https://DOMAIN/), and for the advanced method
DIR/openpgpkey.DOMAIN/.well-known/openpgpkey/DOMAIN/hu/HASH and its policy
(serve DIR/openpgpkey.DOMAIN as https://openpgpkey.DOMAIN/). HASH is the
z-base-32 SHA-1 of the lowercased local part, as gpg --with-wkd-hash
prints it; each file holds the key in binary with the user ID of its
address only. When the addresses are in several domains, the direct
method's files go to DIR/DOMAIN/.well-known/... instead. Files of other
keys in DIR are left alone, and so is a policy file that exists; run it
again after ccdir key update-uids (or a rekey) to publish the new key.

--dane prints the DNS OPENPGPKEY records (RFC 7929) of the addresses, in
zone file form, to add to each domain's zone (DNSSEC-signed).

EXIT STATUS
  0 printed or written, 1 error`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPubkey(cmd.Context(), o, g)
		},
	}
	cmd.Flags().StringVar(&o.wkd, "wkd", "", "write the Web Key Directory files under this folder")
	cmd.Flags().BoolVar(&o.dane, "dane", false, "print the DNS OPENPGPKEY records (RFC 7929)")
	return cmd
}

func runPubkey(ctx context.Context, o pubkeyOptions, g *globals) error {
	if o.wkd != "" && o.dane {
		return usagef("give --wkd or --dane, not both")
	}
	s, err := g.openRead(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	pub, err := g.publicKey()
	if err != nil {
		return err
	}
	if pub.Fingerprint != info.KeyFingerprint {
		return withHint(fmt.Errorf("the key file holds %s, but the directory's key is %s", pub.Fingerprint, info.KeyFingerprint),
			"restore the home from a backup and run ccdir verify")
	}
	chain, err := s.KeyChain(ctx)
	if err != nil {
		return err
	}
	earlier, err := earlierKeys(chain)
	if err != nil {
		return err
	}
	// Published, the key keeps the certifications by the keys before it.
	switch {
	case o.wkd != "":
		return writeWKD(g, o.wkd, pub, keyAddresses(info), earlier...)
	case o.dane:
		return printDANE(g, pub, keyAddresses(info), earlier...)
	}
	// The key now first, with those certifications; then the earlier
	// keys, the latest first.
	armored, err := pub.ArmoredWith(earlier...)
	if err != nil {
		return err
	}
	if g.json {
		out := map[string]any{"fingerprint": pub.Fingerprint, "algorithm": pub.Algorithm, "armored": string(armored)}
		if len(earlier) > 0 {
			var prev []map[string]any
			for i, p := range earlier {
				a, err := p.ArmoredWith(earlier[i+1:]...)
				if err != nil {
					return err
				}
				k := chain[len(chain)-2-i]
				prev = append(prev, map[string]any{"fingerprint": p.Fingerprint, "algorithm": p.Algorithm, "armored": string(a),
					"since": k.Since, "until": k.Until, "revoked": k.Revoked})
			}
			out["earlier"] = prev
		}
		return g.printJSON(out)
	}
	if _, err := g.stdout.Write(armored); err != nil {
		return err
	}
	for i, p := range earlier {
		a, err := p.ArmoredWith(earlier[i+1:]...)
		if err != nil {
			return err
		}
		if _, err := g.stdout.Write(a); err != nil {
			return err
		}
	}
	return nil
}
