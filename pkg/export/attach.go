package export

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/ccdir/ccdir/directory"
)

// Attachment is a file attached to a digest.
type Attachment struct {
	Name        string // the name in the configuration: "vcard", "json" or "keys"
	Filename    string // "directory.vcf"
	ContentType string // "text/vcard; charset=utf-8"
	Body        []byte
}

// attachmentKinds are the attachments a digest can carry, in the order of
// [AttachmentNames].
var attachmentKinds = []struct {
	name, filename, contentType, format string
}{
	{"vcard", "directory.vcf", "text/vcard; charset=utf-8", FormatVCard},
	{"json", "directory.json", "application/json", FormatJSON},
	{"keys", "directory-keys.asc", "application/pgp-keys", FormatKeys},
}

// AttachmentNames lists the names [Attachments] knows, which is also the
// default of the digest.attach setting.
var AttachmentNames = []string{"vcard", "json", "keys"}

// ErrUnknownAttachment is wrapped by the error [Attachments] returns for a
// name it does not know.
var ErrUnknownAttachment = errors.New("unknown digest attachment")

// Attachments renders the attachments named in names (the digest.attach
// setting), in that order: "vcard" is directory.vcf ([WriteVCard]),
// "json" is directory.json ([WriteJSON]) and "keys" is
// directory-keys.asc ([WriteKeys]). Spaces around a name are ignored, and
// so are empty names: no names, no attachments. An unknown
// or repeated name is an error that lists the valid ones, and nothing is
// rendered.
func Attachments(s *directory.Snapshot, names []string) ([]Attachment, error) {
	var kinds []int
	seen := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		i := -1
		for k, a := range attachmentKinds {
			if a.name == n {
				i = k
			}
		}
		if i < 0 {
			return nil, fmt.Errorf("%w %q (want %s)", ErrUnknownAttachment, n, strings.Join(AttachmentNames, ", "))
		}
		if seen[n] {
			return nil, fmt.Errorf("digest attachment %q given twice", n)
		}
		seen[n] = true
		kinds = append(kinds, i)
	}
	var out []Attachment
	for _, i := range kinds {
		a := attachmentKinds[i]
		var buf bytes.Buffer
		if err := Render(&buf, a.format, s); err != nil {
			return nil, fmt.Errorf("%s: %w", a.filename, err)
		}
		out = append(out, Attachment{Name: a.name, Filename: a.filename, ContentType: a.contentType, Body: buf.Bytes()})
	}
	return out, nil
}
