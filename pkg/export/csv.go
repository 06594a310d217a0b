package export

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/ccdir/ccdir/directory"
)

// CSVHeader is the header of the CSV export and import format, in the
// order [WriteCSV] writes it: the member's tld and org, then the column of
// each field of [directory.ContactFields] that has one, in its order (a
// test holds the two together, and WriteCSV, ParseCSV and CSVRow to it).
// [ParseCSV] accepts the columns in any order.
var CSVHeader = []string{"tld", "org", "name", "email", "phones", "role", "languages", "timezone", "24x7"}

// CSVExtra are the columns [WriteCSV] writes after [CSVHeader], which
// [ParseCSV] takes when they are there (a file without them imports as
// before): the member's status (active, inactive) and country, and the
// fingerprint of the contact's key, by which the import finds it in the
// key bundle whatever its user IDs say (a key taken with --any-uid, or
// kept across an email change).
var CSVExtra = []string{"status", "country", "key"}

// Limits of [ParseCSV].
const (
	MaxCSVBytes = 10 << 20 // whole input
	MaxCSVRows  = 100_000  // rows after the header
	MaxCSVField = 4 << 10  // bytes in one field
)

// emergencyPrefix marks the emergency number in the phones column.
const emergencyPrefix = "emergency:"

// WriteCSV writes s in the import format: the [CSVHeader] and
// [CSVExtra], then one row per role of a contact for a ccTLD, and one
// row with only the member's columns for a member without contacts,
// sorted by ccTLD then email. Phones
// are joined with ";", the emergency one written "emergency:+351…";
// languages are joined with ";"; 24x7 is "yes" or "no". Lines end in LF.
// Every cell a spreadsheet would read as a formula is guarded with a
// leading "'" (see [csvGuard]); [ParseCSV] takes the guard off again.
func WriteCSV(w io.Writer, s *directory.Snapshot) error {
	type row struct {
		tld string
		c   *directory.Contact
	}
	var rows []row
	served := map[string]bool{}
	for i := range s.Contacts {
		c := &s.Contacts[i]
		for _, r := range c.Roles {
			rows = append(rows, row{r.TLD, c})
			served[r.TLD] = true
		}
	}
	// A member without contacts: a row with its columns only.
	for _, m := range s.Members {
		if !served[m.TLD] {
			rows = append(rows, row{m.TLD, nil})
		}
	}
	slices.SortStableFunc(rows, func(a, b row) int {
		if a.tld != b.tld {
			return strings.Compare(a.tld, b.tld)
		}
		if a.c == nil || b.c == nil {
			return 0 // one member-only row per ccTLD, and no other row
		}
		return strings.Compare(a.c.Email, b.c.Email)
	})
	members := map[string]*directory.Member{}
	for i := range s.Members {
		members[s.Members[i].TLD] = &s.Members[i]
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(append(slices.Clone(CSVHeader), CSVExtra...)); err != nil {
		return err
	}
	for _, r := range rows {
		var status, country string
		if m := members[r.tld]; m != nil {
			status, country = m.Status, m.Country
		}
		c := r.c
		if c == nil {
			rec := []string{r.tld, memberOrg(s, r.tld), "", "", "", "", "", "", "", status, country, ""}
			for i := range rec {
				rec[i] = csvGuard(rec[i])
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
			continue
		}
		key := ""
		if c.Key != nil {
			key = c.Key.Fingerprint
		}
		phones := make([]string, len(c.Phones))
		for i, p := range c.Phones {
			phones[i] = p.Number
			if p.Emergency {
				phones[i] = emergencyPrefix + p.Number
			}
		}
		rec := []string{
			r.tld,
			memberOrg(s, r.tld),
			c.Name,
			c.Email,
			strings.Join(phones, ";"),
			c.RoleFor(r.tld),
			strings.Join(c.Languages, ";"),
			c.TimeZone,
			yesNo(c.Always),
			status,
			country,
			key,
		}
		for i := range rec {
			rec[i] = csvGuard(rec[i])
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// CSVRow is one data row of the import format. Line is the line of the
// input the row starts on. ParseCSV checks only the shape of a row; the
// directory validates its values.
type CSVRow struct {
	Line      int
	TLD       string
	Org       string
	Name      string
	Email     string
	Phones    []directory.Phone
	Role      string
	Languages []string
	TimeZone  string
	Always    bool
	// Status and Country are the member's (CSVExtra; "" when not
	// given: a new member is active, in its ccTLD's country).
	Status, Country string
	// Key is the fingerprint of the contact's key in the bundle (CSVExtra;
	// "" to find it by email).
	Key string
	// Where names the row in input other than CSV (a JSON export:
	// "members[2].contacts[0]"); "" for a CSV row (Line).
	Where string
}

// MemberOnly reports a row that names a member and no contact (a member
// without contacts, as [WriteCSV] writes it).
func (r *CSVRow) MemberOnly() bool {
	return r.Name == "" && r.Email == "" && r.Role == "" && len(r.Phones) == 0 && len(r.Languages) == 0 && r.TimeZone == "" && !r.Always && r.Key == ""
}

// CSVError reports where the input of [ParseCSV] is wrong. Line is 1 for
// the header, 0 when the error is about the whole input; Column is the
// name of the column, "" if the error is about a whole line, or "#N" for a
// field past the last column.
type CSVError struct {
	Line   int
	Column string
	Err    error
}

func (e *CSVError) Error() string {
	switch {
	case e.Line > 0 && e.Column != "":
		return fmt.Sprintf("line %d, column %s: %v", e.Line, e.Column, e.Err)
	case e.Line > 0:
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	}
	return e.Err.Error()
}

func (e *CSVError) Unwrap() error { return e.Err }

// ErrCSVLimit is wrapped by the errors of [ParseCSV] for input past one of
// its limits.
var ErrCSVLimit = errors.New("over the limit")

// ParseCSV reads the import format written by [WriteCSV]. The header must
// name every column of [CSVHeader] once, in any order, and nothing else; a
// leading byte order mark is ignored. Fields are trimmed of spaces; rows
// whose fields are all empty are skipped. Phones are split on ";" (a phone
// written "emergency:+351…" is the emergency one), languages on ";" or
// ",". 24x7 is yes, no, true, false, 1, 0 or empty (no), in any case.
// A field guarded by [WriteCSV] against formula injection is read back
// without its guard.
// The input may hold at most [MaxCSVBytes] bytes, [MaxCSVRows] rows and
// [MaxCSVField] bytes per field. Errors are [*CSVError].
func ParseCSV(r io.Reader) ([]CSVRow, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxCSVBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxCSVBytes {
		return nil, &CSVError{Err: fmt.Errorf("input is %w of %d bytes", ErrCSVLimit, MaxCSVBytes)}
	}
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1

	header, err := cr.Read()
	if err == io.EOF {
		return nil, &CSVError{Line: 1, Err: fmt.Errorf("empty input, want the header %s", strings.Join(CSVHeader, ","))}
	}
	if err != nil {
		return nil, csvSyntaxError(err)
	}
	col, err := csvColumns(header)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(header))
	for name, i := range col {
		names[i] = name
	}

	var rows []CSVRow
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvSyntaxError(err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(header) {
			e := &CSVError{Line: line, Err: fmt.Errorf("%d fields, the header has %d", len(rec), len(header))}
			if len(rec) < len(header) {
				e.Column = names[len(rec)]
			} else {
				e.Column = fmt.Sprintf("#%d", len(header)+1)
			}
			return nil, e
		}
		empty := true
		for i := range rec {
			if len(rec[i]) > MaxCSVField {
				fl, _ := cr.FieldPos(i)
				return nil, &CSVError{Line: fl, Column: names[i], Err: fmt.Errorf("field is %w of %d bytes", ErrCSVLimit, MaxCSVField)}
			}
			rec[i] = csvUnguard(strings.TrimSpace(rec[i]))
			empty = empty && rec[i] == ""
		}
		if empty {
			continue
		}
		if len(rows) == MaxCSVRows {
			return nil, &CSVError{Line: line, Err: fmt.Errorf("rows are %w of %d", ErrCSVLimit, MaxCSVRows)}
		}
		row := CSVRow{
			Line:     line,
			TLD:      rec[col["tld"]],
			Org:      rec[col["org"]],
			Name:     rec[col["name"]],
			Email:    rec[col["email"]],
			Role:     rec[col["role"]],
			TimeZone: rec[col["timezone"]],
		}
		if i, ok := col["status"]; ok {
			row.Status = rec[i]
		}
		if i, ok := col["country"]; ok {
			row.Country = rec[i]
		}
		if i, ok := col["key"]; ok {
			row.Key = rec[i]
		}
		for _, p := range splitList(rec[col["phones"]], ";") {
			if n, ok := cutPrefixFold(p, emergencyPrefix); ok {
				n = strings.TrimSpace(n)
				if n == "" {
					fl, _ := cr.FieldPos(col["phones"])
					return nil, &CSVError{Line: fl, Column: "phones", Err: fmt.Errorf("%q without a number", emergencyPrefix)}
				}
				row.Phones = append(row.Phones, directory.Phone{Number: n, Emergency: true})
			} else {
				row.Phones = append(row.Phones, directory.Phone{Number: p})
			}
		}
		row.Languages = splitList(rec[col["languages"]], ";,")
		switch strings.ToLower(rec[col["24x7"]]) {
		case "yes", "true", "1":
			row.Always = true
		case "no", "false", "0", "":
		default:
			fl, _ := cr.FieldPos(col["24x7"])
			return nil, &CSVError{Line: fl, Column: "24x7", Err: fmt.Errorf("%q is not yes or no", shorten(rec[col["24x7"]]))}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// csvGuard keeps a spreadsheet that opens the CSV export from running a
// cell as a formula (OWASP's "CSV injection"): a cell that starts with =,
// +, -, @, a tab or a carriage return gets a leading "'", which Excel and
// LibreOffice read as "this is text". The directory refuses names and
// organisations that start so, but an email address may
// ("=cmd|'/Ccalc'!A0@dns.pt" is a valid one), so every cell is guarded.
//
// Two kinds of cell are left as they are. A list of phone numbers
// ("+351211234567;+351217654321": only digits, "+" and ";") is read as a
// number or as text and cannot call anything. And a cell that starts with
// "'" is guarded only when taking one "'" off would leave a cell that
// needs the guard, so that [csvUnguard] undoes exactly what csvGuard did
// ("'t Hooft" stays as it is; "'=x" gets a second "'" and reads back
// as "'=x").
func csvGuard(s string) string {
	if csvNeedsGuard(s) {
		return "'" + s
	}
	return s
}

// csvUnguard takes off the guard [csvGuard] put on a cell.
func csvUnguard(s string) string {
	if rest, ok := strings.CutPrefix(s, "'"); ok && csvNeedsGuard(rest) {
		return rest
	}
	return s
}

func csvNeedsGuard(s string) bool {
	for strings.HasPrefix(s, "'") {
		s = s[1:]
	}
	if s == "" || !strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return false
	}
	return strings.Trim(s, "0123456789+;") != ""
}

// csvColumns maps each column name of the header to its index.
func csvColumns(header []string) (map[string]int, error) {
	col := make(map[string]int, len(header))
	for i, h := range header {
		if len(h) > MaxCSVField {
			return nil, &CSVError{Line: 1, Column: fmt.Sprintf("#%d", i+1), Err: fmt.Errorf("field is %w of %d bytes", ErrCSVLimit, MaxCSVField)}
		}
		name := strings.TrimSpace(h)
		if !slices.Contains(CSVHeader, name) && !slices.Contains(CSVExtra, name) {
			return nil, &CSVError{Line: 1, Column: shorten(name), Err: fmt.Errorf("unknown column, want %s (and optionally %s)", strings.Join(CSVHeader, ","), strings.Join(CSVExtra, ","))}
		}
		if _, dup := col[name]; dup {
			return nil, &CSVError{Line: 1, Column: name, Err: errors.New("column given twice")}
		}
		col[name] = i
	}
	for _, name := range CSVHeader {
		if _, ok := col[name]; !ok {
			return nil, &CSVError{Line: 1, Column: name, Err: fmt.Errorf("missing from the header, want %s", strings.Join(CSVHeader, ","))}
		}
	}
	return col, nil
}

// csvSyntaxError turns an error of encoding/csv into a [*CSVError].
func csvSyntaxError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &CSVError{Line: pe.Line, Err: fmt.Errorf("%w (character %d)", pe.Err, pe.Column)}
	}
	return &CSVError{Err: err}
}

// splitList splits s on any of seps, trims the items and drops empty ones;
// it returns nil if nothing is left.
func splitList(s, seps string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(seps, r) }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// shorten keeps an echoed input value short in an error message.
func shorten(s string) string {
	if r := []rune(s); len(r) > 40 {
		s = string(r[:40]) + "…"
	}
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		// A control character must not reach the operator's terminal.
		return strconv.QuoteToGraphic(s)
	}
	return s
}
