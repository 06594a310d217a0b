package export

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestAttachments(t *testing.T) {
	s := testSnapshot()
	want := map[string]struct{ filename, contentType, format string }{
		"vcard": {"directory.vcf", "text/vcard; charset=utf-8", FormatVCard},
		"json":  {"directory.json", "application/json", FormatJSON},
		"keys":  {"directory-keys.asc", "application/pgp-keys", FormatKeys},
	}
	for _, name := range AttachmentNames {
		t.Run(name, func(t *testing.T) {
			atts, err := Attachments(s, []string{name})
			if err != nil {
				t.Fatal(err)
			}
			if len(atts) != 1 {
				t.Fatalf("%d attachments", len(atts))
			}
			a, w := atts[0], want[name]
			if a.Name != name || a.Filename != w.filename || a.ContentType != w.contentType {
				t.Errorf("attachment %+v", a)
			}
			if !bytes.Equal(a.Body, render(t, w.format, s)) {
				t.Error("the body differs from the export")
			}
		})
	}

	atts, err := Attachments(s, []string{"keys", " vcard", "", "json"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range atts {
		got = append(got, a.Filename)
	}
	if strings.Join(got, " ") != "directory-keys.asc directory.vcf directory.json" {
		t.Errorf("order: %v", got)
	}
	if atts, err := Attachments(s, nil); err != nil || atts != nil {
		t.Errorf("no names: %v, %v", atts, err)
	}
}

func TestAttachmentsRefuses(t *testing.T) {
	s := testSnapshot()
	_, err := Attachments(s, []string{"vcard", "csv"})
	if !errors.Is(err, ErrUnknownAttachment) || !strings.Contains(err.Error(), `"csv"`) {
		t.Fatalf("err = %v, want ErrUnknownAttachment naming csv", err)
	}
	for _, n := range AttachmentNames {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error %q does not list %s", err, n)
		}
	}
	if _, err := Attachments(s, []string{"json", "json"}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("a repeated name: err = %v", err)
	}
}
