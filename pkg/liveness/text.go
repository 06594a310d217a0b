package liveness

import (
	"fmt"
	"strings"

	"github.com/ccdir/ccdir/directory"
)

// PongVerb is the mail command that answers a challenge.
const PongVerb = "PONG"

func challengeSubject(info directory.Info) string {
	return info.Name + ": reachability check"
}

// challengeBody is the text of a challenge, or of its reminder: it holds
// the line "PONG <token>" alone, to be copied into a signed command mail.
func challengeBody(snap *directory.Snapshot, c *directory.Contact, p *ping, token string, reminder bool) string {
	info := snap.Info
	var b strings.Builder
	fmt.Fprintf(&b, "%s: reachability check\n\n", info.Name)
	if reminder {
		fmt.Fprintf(&b, "REMINDER: the directory has had no answer yet to this check, sent on\n%s. Please answer it now.\n\n", p.sent.Format(timeFormat))
	}
	fmt.Fprintf(&b, "The directory checks that it can still reach you, %s <%s>,\n", c.Name, c.Email)
	fmt.Fprintf(&b, "contact of %s: that mail to this address arrives, that your key\n%s decrypts it, and that it signs.\n\n",
		strings.Join(roleNames(snap, c), ", "), c.Key.Fingerprint)
	fmt.Fprintf(&b, "Please answer with a mail to %s, signed with that key\n", info.Address)
	b.WriteString("(clear-signed or PGP/MIME; encrypting it to the directory's key is\nrecommended), whose text begins with these two lines:\n\n")
	fmt.Fprintf(&b, "DIRECTORY %s\n%s %s\n\n", info.Address, PongVerb, token)
	fmt.Fprintf(&b, "The token works once, for you alone, until %s.\n", p.expires.Format(timeFormat))
	b.WriteString("Your answer changes nothing in your entry: it is recorded as the time\nyou were last confirmed, which the other contacts see with your entry\n")
	b.WriteString("(and CALL, among contacts it otherwise ranks alike, puts confirmed\nones first). Without an answer, the admin contacts of your ccTLD are\ntold that you could not be reached.\n")
	return footer(&b, info)
}

func staleSubject(info directory.Info, c *directory.Contact, tlds []string) string {
	return fmt.Sprintf("%s: %s (%s) does not answer", info.Name, c.Email, strings.Join(displayAll(tlds), ", "))
}

// staleBody tells an admin (or the operator) that c left the challenge p
// unanswered.
func staleBody(snap *directory.Snapshot, c *directory.Contact, tlds []string, st *state, p *ping, to *directory.Contact) string {
	info := snap.Info
	var b strings.Builder
	fmt.Fprintf(&b, "%s: a contact does not answer\n\n", info.Name)
	fmt.Fprintf(&b, "%s <%s>, contact of %s, has not answered\nthe directory's reachability check sent on %s (valid until\n%s).\n",
		c.Name, c.Email, strings.Join(roleNames(snap, c), ", "), p.sent.Format(timeFormat), p.expires.Format(timeFormat))
	if st.confirmed.IsZero() {
		b.WriteString("It has never answered one at this address and key.\n")
	} else {
		fmt.Fprintf(&b, "It last answered on %s.\n", st.confirmed.Format(timeFormat))
	}
	if to == nil {
		b.WriteString("\nYou get this notice as the directory's operator.\n")
	} else {
		fmt.Fprintf(&b, "\nYou get this notice as an admin contact of %s. Please check with\nthem that their mailbox and key still work; if they changed, update\ntheir entry (by signed mail to %s, or ask the operator).\n", strings.Join(displayAll(tlds), ", "), info.Address)
	}
	b.WriteString("A new check goes to them with the next daily run; this notice is not\nrepeated until they have answered.\n")
	return footer(&b, info)
}

func footer(b *strings.Builder, info directory.Info) string {
	fmt.Fprintf(b, "\n-- \n%s <%s>\nDirectory key %s\n", info.Name, info.Address, info.KeyFingerprint)
	return b.String()
}

// roleNames lists c's roles at the active ccTLDs of snap: ".pt (security)".
func roleNames(snap *directory.Snapshot, c *directory.Contact) []string {
	var out []string
	for _, tld := range snap.ActiveTLDs(c) {
		out = append(out, fmt.Sprintf("%s (%s)", display(tld), c.RoleFor(tld)))
	}
	return out
}

func display(tld string) string { return directory.DisplayTLD(tld) }

func displayAll(tlds []string) []string {
	out := make([]string, len(tlds))
	for i, t := range tlds {
		out[i] = display(t)
	}
	return out
}
