package export

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/emersion/go-vcard"
)

// vcardProdID names the producer of the cards.
const vcardProdID = "-//ccdir//ccdir directory//EN"

// WriteVCard writes one vCard 4.0 (RFC 6350) per contact, sorted by email;
// a contact serving several ccTLDs is one card. A card has:
//
//   - FN, the name as given, and N, split on its last space into given
//     and family name (a name without a space is all family name);
//   - EMAIL, and TEL as tel: URIs with TYPE=voice, the emergency one with
//     PREF=1;
//   - ORG, the org of the contact's first ccTLD, one TITLE per ccTLD
//     ("security contact .pt") and a NOTE with every role, 24x7 and the
//     key fingerprint;
//   - LANG (in order of preference), TZ, KEY as an openpgp4fpr: URI
//     of the key's fingerprint (RFC 6350 §6.8.1 KEY with a URI value;
//     the key itself is in the key bundle, [WriteKeys], so a digest
//     carries it once), REV (when the entry last changed: the time of its
//     last ledger entry, Contact.Confirmed), and a UID derived from the
//     email address (a name-based UUID), stable across digests.
//
// Lines end in CRLF and are folded at 75 octets, never inside a UTF-8
// sequence.
func WriteVCard(w io.Writer, s *directory.Snapshot) error {
	var buf bytes.Buffer
	enc := vcard.NewEncoder(&buf)
	for _, c := range sortedContacts(s) {
		if err := enc.Encode(contactCard(s, &c)); err != nil {
			return err
		}
	}
	return foldVCard(w, buf.Bytes())
}

func contactCard(s *directory.Snapshot, c *directory.Contact) vcard.Card {
	card := vcard.Card{}
	card.SetValue(vcard.FieldVersion, "4.0")
	card.SetValue(vcard.FieldProductID, vcardProdID)
	card.SetValue(vcard.FieldUID, "urn:uuid:"+uuid5(uuidNamespaceURL, "mailto:"+c.Email))

	name := printable(c.Name)
	card.SetValue(vcard.FieldFormattedName, name)
	n := &vcard.Name{FamilyName: component(name)}
	if i := strings.LastIndexByte(name, ' '); i > 0 {
		n.GivenName, n.FamilyName = component(name[:i]), component(name[i+1:])
	}
	card.SetName(n)

	card.Add(vcard.FieldEmail, &vcard.Field{
		Value:  printable(c.Email),
		Params: vcard.Params{vcard.ParamType: {vcard.TypeWork}},
	})
	for _, p := range c.Phones {
		params := vcard.Params{vcard.ParamType: {vcard.TypeVoice}, vcard.ParamValue: {"uri"}}
		if p.Emergency {
			params.Set(vcard.ParamPreferred, "1")
		}
		card.Add(vcard.FieldTelephone, &vcard.Field{Value: "tel:" + printable(p.Number), Params: params})
	}

	var note []string
	for i, r := range c.Roles {
		org := memberOrg(s, r.TLD)
		if i == 0 && org != "" {
			card.SetValue(vcard.FieldOrganization, component(printable(org)))
		}
		title := fmt.Sprintf("%s contact .%s", printable(r.Role), display(r.TLD))
		card.AddValue(vcard.FieldTitle, title)
		if org != "" {
			title += " (" + printable(org) + ")"
		}
		note = append(note, title)
	}
	note = append(note, "24x7: "+yesNo(c.Always))
	if c.Key != nil {
		note = append(note, "OpenPGP key: "+keys.GroupFingerprint(printable(c.Key.Fingerprint)))
	} else {
		note = append(note, "OpenPGP key: none")
	}
	if s.Info.Name != "" {
		note = append(note, "From "+printable(s.Info.Name)+", serial "+fmt.Sprint(s.Head.Serial))
	}
	card.SetValue(vcard.FieldNote, strings.Join(note, "\n"))

	for i, l := range c.Languages {
		card.Add(vcard.FieldLanguage, &vcard.Field{
			Value:  printable(l),
			Params: vcard.Params{vcard.ParamPreferred: {fmt.Sprint(i + 1)}},
		})
	}
	if c.TimeZone != "" {
		card.SetValue(vcard.FieldTimezone, printable(c.TimeZone))
	}
	if c.Key != nil && c.Key.Fingerprint != "" {
		card.Add(vcard.FieldKey, &vcard.Field{
			Value:  KeyURI(c.Key.Fingerprint),
			Params: vcard.Params{vcard.ParamValue: {"uri"}},
		})
	}
	if t, ok := parseTime(c.Confirmed); ok {
		card.SetRevision(t.UTC())
	}
	return card
}

// component makes text fit in one component of a structured value (N,
// ORG), where ";" separates components and go-vcard cannot escape it.
func component(s string) string { return strings.ReplaceAll(s, ";", ",") }

// KeyURI is the openpgp4fpr: URI of a fingerprint (upper-case hex, no
// spaces), as a vCard's KEY carries it.
func KeyURI(fingerprint string) string {
	return "openpgp4fpr:" + strings.ToUpper(strings.ReplaceAll(printable(fingerprint), " ", ""))
}

// foldVCard writes the cards go-vcard encoded, with lines longer than 75
// octets folded as RFC 6350 §3.2 asks.
func foldVCard(w io.Writer, data []byte) error {
	var out bytes.Buffer
	for _, line := range strings.SplitAfter(string(data), "\r\n") {
		if line == "" {
			continue
		}
		line = strings.TrimSuffix(line, "\r\n")
		limit := 75
		for len(line) > limit {
			cut := limit
			for cut > 0 && !utf8.RuneStart(line[cut]) {
				cut--
			}
			out.WriteString(line[:cut])
			out.WriteString("\r\n ") // the space counts in the next line
			line = line[cut:]
			limit = 74
		}
		out.WriteString(line)
		out.WriteString("\r\n")
	}
	_, err := w.Write(out.Bytes())
	return err
}

// uuidNamespaceURL is the URL namespace of RFC 9562.
var uuidNamespaceURL = [16]byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}

// uuid5 returns the name-based (SHA-1) UUID of name in namespace, RFC 9562 §5.5.
func uuid5(namespace [16]byte, name string) string {
	h := sha1.New()
	h.Write(namespace[:])
	h.Write([]byte(name))
	u := h.Sum(nil)[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
