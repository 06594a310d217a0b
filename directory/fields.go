package directory

import "strings"

// FieldKind says how a [ContactField] is compared and shown.
type FieldKind int

// Kinds of [ContactField].
const (
	// FieldDetail is a value of the contact as a whole, compared and shown
	// through its Text: email, name, phones, languages, time zone, 24x7.
	FieldDetail FieldKind = iota + 1
	// FieldRoles is the contact's role per ccTLD: a change is told per
	// ccTLD (added, removed, changed).
	FieldRoles
	// FieldKey is the contact's OpenPGP key: a change is told as new,
	// rotated, re-dated or removed.
	FieldKey
	// FieldInternal is not shown to people and is no change of the
	// contact: its ID, and when it was last confirmed.
	FieldInternal
)

// ContactField is one field of [Contact] as people see it.
type ContactField struct {
	Field  string    // the field of Contact: "TimeZone"
	Kind   FieldKind // how it is compared
	Column string    // its column in the CSV import format: "timezone"; "" for none
	Label  string    // how a sentence names it: "time zone"
	Quoted bool      // free text, quoted where a sentence shows it
	// Text is the value as a change shows it, "none" when there is none
	// (FieldDetail only): two contacts differ in the field exactly when
	// their texts differ.
	Text func(*Contact) string
}

// ContactFields is the one list of a contact's fields, in the order
// people read them. It decides what "a contact changed" means: the
// digest's list of changes, the notices of a change made by mail, the
// import's check that rows of one contact agree, and the CSV columns all
// follow it. A new field of Contact gets a row here (a test checks it).
var ContactFields = []ContactField{
	{Field: "ID", Kind: FieldInternal},
	{Field: "Name", Kind: FieldDetail, Column: "name", Label: "name", Quoted: true,
		Text: func(c *Contact) string { return c.Name }},
	{Field: "Email", Kind: FieldDetail, Column: "email", Label: "email",
		Text: func(c *Contact) string { return c.Email }},
	{Field: "Phones", Kind: FieldDetail, Column: "phones", Label: "phones",
		Text: func(c *Contact) string { return phoneList(c.Phones) }},
	{Field: "Roles", Kind: FieldRoles, Column: "role", Label: "roles"},
	{Field: "Languages", Kind: FieldDetail, Column: "languages", Label: "languages",
		Text: func(c *Contact) string { return orNone(strings.Join(c.Languages, ", ")) }},
	{Field: "TimeZone", Kind: FieldDetail, Column: "timezone", Label: "time zone",
		Text: func(c *Contact) string { return orNone(c.TimeZone) }},
	{Field: "Always", Kind: FieldDetail, Column: "24x7", Label: "24x7",
		Text: func(c *Contact) string { return yesNo(c.Always) }},
	{Field: "Key", Kind: FieldKey, Label: "key"},
	{Field: "Confirmed", Kind: FieldInternal},
}

// DetailFields returns the rows of [ContactFields] of kind [FieldDetail],
// in their order.
func DetailFields() []ContactField {
	var out []ContactField
	for _, f := range ContactFields {
		if f.Kind == FieldDetail {
			out = append(out, f)
		}
	}
	return out
}

// phoneList returns phones as people read them: "+351211234567
// (emergency), +351217654321", or "none".
func phoneList(phones []Phone) string {
	if len(phones) == 0 {
		return "none"
	}
	parts := make([]string, len(phones))
	for i, p := range phones {
		parts[i] = p.Number
		if p.Emergency {
			parts[i] += " (emergency)"
		}
	}
	return strings.Join(parts, ", ")
}

// yesNo returns "yes" or "no".
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
