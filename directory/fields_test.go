package directory

import (
	"reflect"
	"testing"
)

// Every field of Contact has one row in ContactFields, so that a new field
// cannot be left out of what "a contact changed" means; a detail has what
// its users need.
func TestContactFieldsCoverContact(t *testing.T) {
	rows := map[string]ContactField{}
	columns := map[string]bool{}
	for _, f := range ContactFields {
		if _, dup := rows[f.Field]; dup {
			t.Errorf("field %s has two rows", f.Field)
		}
		rows[f.Field] = f
		if f.Column != "" {
			if columns[f.Column] {
				t.Errorf("column %s given twice", f.Column)
			}
			columns[f.Column] = true
		}
		switch f.Kind {
		case FieldDetail:
			if f.Text == nil || f.Label == "" || f.Column == "" {
				t.Errorf("detail %s needs a Text, a Label and a Column", f.Field)
			}
		case FieldRoles, FieldKey:
			if f.Label == "" || f.Text != nil {
				t.Errorf("%s needs a Label and no Text", f.Field)
			}
		case FieldInternal:
			if f.Label != "" || f.Column != "" || f.Text != nil {
				t.Errorf("internal %s is shown", f.Field)
			}
		default:
			t.Errorf("%s has no kind", f.Field)
		}
	}
	typ := reflect.TypeFor[Contact]()
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		if _, ok := rows[name]; !ok {
			t.Errorf("Contact.%s has no row in ContactFields", name)
		}
		delete(rows, name)
	}
	for name := range rows {
		t.Errorf("ContactFields names %s, which Contact does not have", name)
	}
	// A change is decided by a field's Text (details), or by the code of
	// its kind (roles, key): a new field of Phone, Role or Key must be
	// taken into that decision, so adding one fails here until it is.
	for typ, known := range map[reflect.Type][]string{
		reflect.TypeFor[Phone](): {"Number", "Emergency"},                                       // phoneList
		reflect.TypeFor[Role]():  {"TLD", "Role"},                                               // pkg/export's role changes
		reflect.TypeFor[Key]():   {"Fingerprint", "Algorithm", "Created", "Expires", "Armored"}, // key changes
	} {
		var names []string
		for i := range typ.NumField() {
			names = append(names, typ.Field(i).Name)
		}
		if !reflect.DeepEqual(names, known) {
			t.Errorf("%s has the fields %q, known %q: decide how a change of the new one is told", typ.Name(), names, known)
		}
	}
}

// The Text of every detail tells two contacts apart exactly when the
// field differs.
func TestContactFieldText(t *testing.T) {
	a := Contact{Email: "ana@dns.pt", Name: "Ana", Phones: []Phone{{Number: "+351211234567", Emergency: true}},
		Languages: []string{"pt", "en"}, TimeZone: "Europe/Lisbon", Always: true}
	want := map[string]string{
		"Email": "ana@dns.pt", "Name": "Ana", "Phones": "+351211234567 (emergency)",
		"Languages": "pt, en", "TimeZone": "Europe/Lisbon", "Always": "yes",
	}
	none := map[string]string{
		"Email": "", "Name": "", "Phones": "none", "Languages": "none", "TimeZone": "none", "Always": "no",
	}
	for _, f := range DetailFields() {
		if got := f.Text(&a); got != want[f.Field] {
			t.Errorf("%s: %q, want %q", f.Field, got, want[f.Field])
		}
		if got := f.Text(&Contact{}); got != none[f.Field] {
			t.Errorf("%s of an empty contact: %q, want %q", f.Field, got, none[f.Field])
		}
	}
}
