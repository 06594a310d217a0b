package export

import (
	"bytes"
	"encoding/csv"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ccdir/ccdir/directory"
)

// wantRows is what ParseCSV must read back from the CSV export of s.
func wantRows(s *directory.Snapshot) []CSVRow {
	var rows []CSVRow
	for _, m := range sortedMembers(s) {
		var emails []string
		for _, c := range s.Contacts {
			if c.RoleFor(m.TLD) != "" {
				emails = append(emails, c.Email)
			}
		}
		for _, email := range emails { // s.Contacts is sorted by email
			for _, c := range s.Contacts {
				if c.Email != email {
					continue
				}
				langs := c.Languages
				if len(langs) == 0 {
					langs = nil
				}
				key := ""
				if c.Key != nil {
					key = c.Key.Fingerprint
				}
				rows = append(rows, CSVRow{
					TLD: m.TLD, Org: m.Org, Name: c.Name, Email: c.Email, Phones: c.Phones,
					Role: c.RoleFor(m.TLD), Languages: langs, TimeZone: c.TimeZone, Always: c.Always,
					Status: m.Status, Country: m.Country, Key: key,
				})
			}
		}
	}
	for i := range rows {
		rows[i].Line = i + 2
	}
	return rows
}

func TestCSVRoundTrip(t *testing.T) {
	s := testSnapshot()
	data := render(t, FormatCSV, s)
	if first, _, _ := strings.Cut(string(data), "\n"); first != "tld,org,name,email,phones,role,languages,timezone,24x7,status,country,key" {
		t.Errorf("header %q", first)
	}
	if !strings.Contains(string(data), "emergency:+351211234567;+351217654321") {
		t.Error("phones are not written emergency:…;…")
	}
	rows, err := ParseCSV(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	want := wantRows(s)
	if len(rows) != 7 {
		t.Errorf("%d rows, want one per contact and role (7)", len(rows))
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", rows, want)
	}
}

func TestParseCSVLenient(t *testing.T) {
	in := "\uFEFF24x7, email,tld,name,org,phones,role,languages,timezone\n" +
		"TRUE, a@b.example ,pt,A,Org,emergency:+351 1 ; +3512,security,\"pt, en;fr\",Europe/Lisbon\n" +
		",,,,,,,,\n" +
		"0,c@d.example,\"xn--p1ai\",\"C, \"\"the\"\" D\",\"Multi\nline\",,admin,,\n"
	rows, err := ParseCSV(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []CSVRow{
		{Line: 2, TLD: "pt", Org: "Org", Name: "A", Email: "a@b.example",
			Phones: []directory.Phone{{Number: "+351 1", Emergency: true}, {Number: "+3512"}},
			Role:   "security", Languages: []string{"pt", "en", "fr"}, TimeZone: "Europe/Lisbon", Always: true},
		{Line: 4, TLD: "xn--p1ai", Org: "Multi\nline", Name: `C, "the" D`, Email: "c@d.example", Role: "admin"},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("got  %+v\nwant %+v", rows, want)
	}
}

func TestParseCSVErrors(t *testing.T) {
	const header = "tld,org,name,email,phones,role,languages,timezone,24x7\n"
	const row = "pt,Org,Name,a@b.example,+351211234567,security,pt,Europe/Lisbon,yes\n"
	tests := []struct {
		name, in   string
		line       int
		column     string
		message    string // part of the error text
		limitError bool
	}{
		{"empty", "", 1, "", "line 1: empty input", false},
		{"bad header", "tld,org,nmae,email,phones,role,languages,timezone,24x7\n" + row, 1, "nmae", "line 1, column nmae: unknown column", false},
		{"missing column", "tld,org,name,email,phones,role,languages,timezone\n", 1, "24x7", "line 1, column 24x7: missing", false},
		{"twice", "tld,tld,org,name,email,phones,role,languages,timezone,24x7\n", 1, "tld", "given twice", false},
		{"too few fields", header + row + row + "pt,Org,Name,a@b.example,+351211234567,security,pt\n", 4, "timezone", "line 4, column timezone: 7 fields, the header has 9", false},
		{"too many fields", header + strings.TrimSuffix(row, "\n") + ",extra\n", 2, "#10", "line 2, column #10: 10 fields", false},
		{"bad 24x7", header + row + row + row + row + row + strings.Replace(row, "yes", "sometimes", 1), 7, "24x7", `line 7, column 24x7: "sometimes" is not yes or no`, false},
		{"oversize field", header + row + "pt,Org," + strings.Repeat("x", MaxCSVField+1) + ",a@b.example,+1,security,,,no\n", 3, "name", "line 3, column name: field is over the limit of 4096 bytes", true},
		{"empty emergency", header + strings.Replace(row, "+351211234567", "emergency:", 1), 2, "phones", "line 2, column phones:", false},
		{"bare quote", header + "pt,Or\"g,Name,a@b.example,+1,security,,,no\n", 2, "", "line 2: bare \"", false},
		{"field on a later line", header + "pt,\"Org\nSecond\",Name,a@b.example,+1,security,,,maybe\n", 3, "24x7", "line 3, column 24x7", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCSV(strings.NewReader(tt.in))
			var ce *CSVError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v (%T), want *CSVError", err, err)
			}
			if ce.Line != tt.line || ce.Column != tt.column {
				t.Errorf("line %d column %q, want line %d column %q (%v)", ce.Line, ce.Column, tt.line, tt.column, err)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %q does not contain %q", err, tt.message)
			}
			if errors.Is(err, ErrCSVLimit) != tt.limitError {
				t.Errorf("errors.Is(err, ErrCSVLimit) = %v", !tt.limitError)
			}
		})
	}
}

func TestParseCSVLimits(t *testing.T) {
	const header = "tld,org,name,email,phones,role,languages,timezone,24x7\n"
	const row = "pt,O,N,a@b.example,+1,security,,,no\n"

	big := header + strings.Repeat(row, MaxCSVBytes/len(row)+1)
	_, err := ParseCSV(strings.NewReader(big))
	var ce *CSVError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCSVLimit) || ce.Line != 0 || !strings.Contains(err.Error(), "10485760 bytes") {
		t.Errorf("oversize input: %v", err)
	}

	many := header + strings.Repeat(row, MaxCSVRows+1)
	_, err = ParseCSV(strings.NewReader(many))
	if !errors.As(err, &ce) || !errors.Is(err, ErrCSVLimit) || ce.Line != MaxCSVRows+2 {
		t.Errorf("too many rows: %v", err)
	}
	exact := header + strings.Repeat(row, MaxCSVRows)
	if rows, err := ParseCSV(strings.NewReader(exact)); err != nil || len(rows) != MaxCSVRows {
		t.Errorf("%d rows: %d rows, %v", MaxCSVRows, len(rows), err)
	}
}

func TestParseCSVAlways(t *testing.T) {
	const header = "tld,org,name,email,phones,role,languages,timezone,24x7\n"
	for v, want := range map[string]bool{"yes": true, "YES": true, "true": true, "1": true, "no": false, "False": false, "0": false, "": false} {
		rows, err := ParseCSV(strings.NewReader(header + "pt,O,N,a@b.example,+1,security,,," + v + "\n"))
		if err != nil || len(rows) != 1 || rows[0].Always != want {
			t.Errorf("24x7 %q: %+v, %v", v, rows, err)
		}
	}
}

func TestCSVErrorQuotesControlCharacters(t *testing.T) {
	_, err := ParseCSV(strings.NewReader("tld,\x1b]0;PWNED\a\x1b[2J,org\n"))
	if err == nil {
		t.Fatal("accepted")
	}
	if strings.ContainsAny(err.Error(), "\x1b\a") {
		t.Fatalf("control characters reach the terminal: %q", err)
	}
}

// The CSV format is written by hand in WriteCSV, ParseCSV and CSVRow: the
// field table's columns, CSVHeader, the fields of CSVRow and every row
// WriteCSV writes must agree, so that a field added to the table (say a
// pager) fails here until the CSV code carries it too.
func TestCSVFollowsContactFields(t *testing.T) {
	var columns []string
	for _, f := range directory.ContactFields {
		if f.Column != "" {
			columns = append(columns, f.Column)
		}
	}
	if !slices.Equal(CSVHeader[2:], columns) || !slices.Equal(CSVHeader[:2], []string{"tld", "org"}) {
		t.Errorf("CSVHeader %q; the field table's columns are %q (after tld, org)", CSVHeader, columns)
	}
	// And Line, Where.
	if n := reflect.TypeFor[CSVRow]().NumField(); n != len(CSVHeader)+len(CSVExtra)+2 {
		t.Errorf("CSVRow has %d fields, want one per column of CSVHeader and CSVExtra, Line and Where (%d)", n, len(CSVHeader)+len(CSVExtra)+2)
	}
	records, err := csv.NewReader(bytes.NewReader(render(t, FormatCSV, testSnapshot()))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range records {
		if len(r) != len(CSVHeader)+len(CSVExtra) {
			t.Errorf("record %d has %d fields, CSVHeader and CSVExtra %d", i+1, len(r), len(CSVHeader)+len(CSVExtra))
		}
	}
}

// A cell a spreadsheet would run as a formula is written guarded, and
// ParseCSV reads back the value as it was: the email address
// "=cmd|'/Ccalc'!A0@dns.pt" is valid, and an admin may add it by mail.
func TestCSVGuardsFormulaCells(t *testing.T) {
	s := testSnapshot()
	hostile := []string{"=cmd|'/Ccalc'!A0@dns.pt", "+sum(1)@dns.pt", "-2+3@dns.pt", "'=x@dns.pt"}
	for i, email := range hostile {
		s.Contacts[i%len(s.Contacts)].Email = email
	}
	data := render(t, FormatCSV, s)
	records, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range records {
		for _, cell := range rec {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) && strings.Trim(cell, "0123456789+;") != "" {
				t.Errorf("cell %q is read as a formula", cell)
			}
		}
	}
	for _, email := range hostile {
		if !bytes.Contains(data, []byte("'"+email)) {
			t.Errorf("%q is not written guarded:\n%s", email, data)
		}
	}
	rows, err := ParseCSV(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range rows {
		got[r.Email] = true
	}
	for _, email := range hostile {
		if !got[email] {
			t.Errorf("%q did not come back from ParseCSV; got %v", email, got)
		}
	}
}

func TestCSVGuard(t *testing.T) {
	for _, tc := range []struct{ in, out string }{
		{"=1+1", "'=1+1"},
		{"+cmd|x", "'+cmd|x"},
		{"-x", "'-x"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=x", "'\t=x"},
		{"\r=x", "'\r=x"},
		{"'=x", "''=x"},
		{"''@x", "'''@x"},
		{"'t Hooft", "'t Hooft"}, // a name, not a formula
		{"'", "'"},
		{"+351211234567;+351217654321", "+351211234567;+351217654321"},
		{"-5", "'-5"}, // only phone lists (digits, "+", ";") are left unguarded
		{"ana@dns.pt", "ana@dns.pt"},
		{"", ""},
	} {
		if got := csvGuard(tc.in); got != tc.out {
			t.Errorf("csvGuard(%q) = %q, want %q", tc.in, got, tc.out)
		}
		if got := csvUnguard(csvGuard(tc.in)); got != tc.in {
			t.Errorf("csvUnguard(csvGuard(%q)) = %q", tc.in, got)
		}
	}
}
