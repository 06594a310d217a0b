package export

import (
	"io"
	"strings"

	"github.com/ccdir/ccdir/directory"
)

// WriteKeys writes every contact's armored public key as stored, sorted by
// the contact's email, each block ending in a newline and separated from
// the next by an empty line, so that `gpg --import` takes the whole file.
// A key shared by several contacts is written once; contacts without a key
// are skipped, so a directory without keys gives an empty file.
func WriteKeys(w io.Writer, s *directory.Snapshot) error {
	var b strings.Builder
	seen := map[string]bool{}
	for _, c := range sortedContacts(s) {
		if c.Key == nil || strings.TrimSpace(c.Key.Armored) == "" {
			continue
		}
		fp := strings.ToUpper(c.Key.Fingerprint)
		if fp != "" && seen[fp] {
			continue
		}
		seen[fp] = true
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString(c.Key.Armored)
		if !strings.HasSuffix(c.Key.Armored, "\n") {
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
