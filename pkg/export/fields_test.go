package export

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ccdir/ccdir/directory"
)

// changeField gives the field of c named by f another value, whatever
// its type, so that a field added to directory.Contact is changed here
// without a line of this test.
func changeField(t *testing.T, c *directory.Contact, f directory.ContactField) {
	t.Helper()
	switch f.Kind {
	case directory.FieldRoles:
		c.Roles[0].Role = directory.RoleAdmin
		return
	case directory.FieldKey:
		k := *c.Key
		k.Fingerprint = "BBBB1111BBBB2222CCCC3333DDDD4444EEEE5555"
		c.Key = &k
		return
	}
	v := reflect.ValueOf(c).Elem().FieldByName(f.Field)
	switch v.Kind() {
	case reflect.String:
		v.SetString("x" + v.String())
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Slice:
		v.Set(reflect.Append(v, reflect.New(v.Type().Elem()).Elem()))
		if p, ok := v.Interface().([]directory.Phone); ok {
			p[len(p)-1].Number = "+351217654321"
		}
		if l, ok := v.Interface().([]string); ok {
			l[len(l)-1] = "fr"
		}
	default:
		t.Fatalf("field %s: cannot change a %s", f.Field, v.Kind())
	}
}

// wantKind is the change a digest lists for a change of f.
func wantKind(f directory.ContactField) ChangeKind {
	switch f.Kind {
	case directory.FieldRoles:
		return ChangeRoleChanged
	case directory.FieldKey:
		return ChangeKeyRotated
	}
	return fieldChanges[f.Field]
}

// A change of any field of a contact, alone or with all the others, is in
// the digest's changes, told by the label of its field.
func TestDiffEveryContactField(t *testing.T) {
	var shown []directory.ContactField
	for _, f := range directory.ContactFields {
		if f.Kind != directory.FieldInternal {
			shown = append(shown, f)
		}
	}
	base := func() *directory.Snapshot {
		s := diffBase()
		s.Contacts[0].Languages = []string{"pt"}
		s.Contacts[0].TimeZone = "Europe/Lisbon"
		return s
	}
	all := base()
	for _, f := range shown {
		t.Run(f.Field, func(t *testing.T) {
			if k := wantKind(f); k == 0 {
				t.Fatalf("field %s has no kind of change (fieldChanges)", f.Field)
			}
			cur := base()
			changeField(t, &cur.Contacts[0], f)
			got := Diff(base(), cur, digestNow, KeyCheck{})
			if len(got) != 1 || got[0].Kind != wantKind(f) {
				t.Fatalf("changing %s alone: %q, want one %q", f.Field, changeLines(got), wantKind(f))
			}
			if !strings.HasPrefix(got[0].Kind.String(), f.Label+" ") && f.Kind == directory.FieldDetail {
				t.Errorf("the change of %s reads %q, not by its label %q", f.Field, got[0].Kind, f.Label)
			}
			if f.Kind == directory.FieldDetail && got[0].Detail != f.Text(&base().Contacts[0])+arrow+f.Text(&cur.Contacts[0]) {
				t.Errorf("the change of %s says %q", f.Field, got[0].Detail)
			}
		})
	}
	// Every field at once, apart from the subtests (which -run may skip).
	for _, f := range shown {
		changeField(t, &all.Contacts[0], f)
	}
	got := Diff(base(), all, digestNow, KeyCheck{})
	var kinds []ChangeKind
	for _, c := range got {
		kinds = append(kinds, c.Kind)
	}
	for _, f := range shown {
		if !slices.Contains(kinds, wantKind(f)) {
			t.Errorf("with every field changed, the change of %s is missing from:\n%s", f.Field, changeLines(got))
		}
	}
	if len(got) != len(shown) {
		t.Errorf("with every field changed: %d changes, want %d:\n%s", len(got), len(shown), changeLines(got))
	}
	// And the digest's body lists each of them.
	body := writeBody(t, all, BodyOptions{Now: digestNow, PrevSerial: 1, Changes: got})
	for _, c := range got {
		if !strings.Contains(body, c.Kind.String()+": ") {
			t.Errorf("the body does not list the %q change:\n%s", c.Kind, body)
		}
	}
}
