package export

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/ccdir/ccdir/directory"
)

// Formats for export.
const (
	FormatText  = "text"  // the plain-text directory of a digest
	FormatJSON  = "json"  // the versioned JSON snapshot, see [Export]
	FormatCSV   = "csv"   // the import format, see [ParseCSV]
	FormatVCard = "vcard" // vCard 4.0, one card per contact
	FormatKeys  = "keys"  // every contact's armored public key
)

// Formats lists the formats [Render] knows, in the order they are offered.
var Formats = []string{FormatText, FormatJSON, FormatCSV, FormatVCard, FormatKeys}

// ErrUnknownFormat is wrapped by the error [Render] returns for a format
// it does not know.
var ErrUnknownFormat = errors.New("unknown export format")

// Render writes s to w in format, one of [Formats].
func Render(w io.Writer, format string, s *directory.Snapshot) error {
	switch format {
	case FormatText:
		return WriteText(w, s)
	case FormatJSON:
		return WriteJSON(w, s)
	case FormatCSV:
		return WriteCSV(w, s)
	case FormatVCard:
		return WriteVCard(w, s)
	case FormatKeys:
		return WriteKeys(w, s)
	}
	return fmt.Errorf("%w %q (want %s)", ErrUnknownFormat, format, strings.Join(Formats, ", "))
}

// cctld returns what the embedded list knows of a member's code; a code
// missing from the list (it should not happen) is shown as it is.
func cctld(code string) directory.CCTLD {
	t, err := directory.LookupCCTLD(code)
	if err != nil {
		return directory.CCTLD{Code: code, Unicode: code}
	}
	return t
}

// display returns a ccTLD as people read it: "pt", or "рф (xn--p1ai)".
func display(code string) string { return cctld(code).Display() }

// unicodeLabel returns the U-label of code, or code itself.
func unicodeLabel(code string) string {
	if u := cctld(code).Unicode; u != "" {
		return u
	}
	return code
}

// sortedMembers returns the members sorted by code.
func sortedMembers(s *directory.Snapshot) []directory.Member {
	ms := slices.Clone(s.Members)
	slices.SortStableFunc(ms, func(a, b directory.Member) int { return strings.Compare(a.TLD, b.TLD) })
	return ms
}

// sortedContacts returns the contacts sorted by email.
func sortedContacts(s *directory.Snapshot) []directory.Contact {
	cs := slices.Clone(s.Contacts)
	slices.SortStableFunc(cs, func(a, b directory.Contact) int { return strings.Compare(a.Email, b.Email) })
	return cs
}

// memberOrg returns the org of the member tld, or "".
func memberOrg(s *directory.Snapshot, tld string) string {
	for _, m := range s.Members {
		if m.TLD == tld {
			return m.Org
		}
	}
	return ""
}

// parseTime parses an RFC 3339 time of the snapshot.
func parseTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, s)
	return t, err == nil
}

// date returns the UTC date of an RFC 3339 time, or the text unchanged if
// it does not parse.
func date(s string) string {
	if t, ok := parseTime(s); ok {
		return t.UTC().Format(time.DateOnly)
	}
	return s
}

// printable makes member-supplied text safe to show on a line of its own:
// control characters (newlines included) and the bidirectional embedding,
// override and isolate characters, which could make a line read as
// something else, become U+FFFD.
func printable(s string) string {
	if !strings.ContainsFunc(s, unsafeRune) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unsafeRune(r) {
			return unicode.ReplacementChar
		}
		return r
	}, s)
}

func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || r == 0x2028 || r == 0x2029 || (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}
