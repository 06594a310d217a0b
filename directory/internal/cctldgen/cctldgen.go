// Package cctldgen builds the ccTLD and ISO 3166-1 tables that package
// directory embeds, from Debian's iso-codes and publicsuffix packages.
//
// The algorithm follows notes/dependencies.md §7: walk the ICANN section of
// the Public Suffix List up to "// newGTLDs", take the last label of every
// rule, keep two-letter ASCII labels (ISO 3166-1 codes plus a hand-kept
// table of exceptions) and IDN labels mapped to a country by the nearest
// "// xn--… : CC" comment, and fail on anything it cannot classify.
// The output is sorted and carries no timestamps, so a rerun on the same
// inputs gives identical bytes.
package cctldgen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/net/idna"
)

// exception is a delegated two-letter ccTLD that is not an ISO 3166-1
// alpha-2 code.
type exception struct {
	country string // the country it belongs to, upper case
	name    string
}

// exceptions is the hand-kept table of delegated ccTLDs outside ISO 3166-1.
var exceptions = map[string]exception{
	"ac": {"SH", "Ascension Island"}, // part of Saint Helena, Ascension and Tristan da Cunha
	"eu": {"EU", "European Union"},   // exceptionally reserved
	"su": {"SU", "Soviet Union"},     // withdrawn from ISO 3166-1, still delegated
	"uk": {"GB", "United Kingdom"},   // ISO code is GB
}

// noTLD lists ISO 3166-1 codes that have no delegated TLD. Every ISO code
// must either appear in the Public Suffix List or be listed here.
var noTLD = map[string]bool{
	"bl": true, // Saint Barthélemy
	"bq": true, // Bonaire, Sint Eustatius and Saba
	"eh": true, // Western Sahara
	"mf": true, // Saint Martin (French part)
	"um": true, // United States Minor Outlying Islands, removed from the root in 2008
}

// dormant lists delegated ccTLDs that take no registrations.
var dormant = map[string]bool{
	"bv": true, // Bouvet Island: no registrations
	"gb": true, // effectively dormant; the UK uses .uk
	"sj": true, // Svalbard and Jan Mayen: no registrations
}

// idnComment matches the comment that precedes an IDN ccTLD, for example
// "// xn--p1ai ("rf", Russian-Cyrillic) : RU". It is lenient on purpose: the
// SA entry has a double space and the SG entry has text outside the
// parentheses.
var idnComment = regexp.MustCompile(`^// (xn--[a-z0-9-]+)\b.*:\s*([A-Z]{2})\s*$`)

const (
	beginICANN = "// ===BEGIN ICANN DOMAINS==="
	endICANN   = "// ===END ICANN DOMAINS==="
	newGTLDs   = "// newGTLDs"
)

// Header lines of the generated files.
const (
	CCTLDColumns   = "# tld\tkind\tiso_cc\tunicode\tname\tdormant"
	ISO3166Columns = "# alpha_2\tname"
)

// Country is one ISO 3166-1 entry.
type Country struct {
	Code string // alpha-2, upper case
	Name string // common_name when present, else name
}

// ReadISO3166 decodes iso-codes' iso_3166-1.json. The result is sorted by
// code.
func ReadISO3166(r io.Reader) ([]Country, error) {
	var doc struct {
		Entries []struct {
			Alpha2     string `json:"alpha_2"`
			Name       string `json:"name"`
			CommonName string `json:"common_name"`
		} `json:"3166-1"`
	}
	dec := json.NewDecoder(r)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("reading iso_3166-1.json: %w", err)
	}
	if len(doc.Entries) == 0 {
		return nil, fmt.Errorf("reading iso_3166-1.json: no \"3166-1\" entries")
	}
	seen := make(map[string]bool)
	var out []Country
	for _, e := range doc.Entries {
		if !isUpperAlpha2(e.Alpha2) {
			return nil, fmt.Errorf("reading iso_3166-1.json: bad alpha_2 %q", e.Alpha2)
		}
		if seen[e.Alpha2] {
			return nil, fmt.Errorf("reading iso_3166-1.json: duplicate alpha_2 %q", e.Alpha2)
		}
		seen[e.Alpha2] = true
		name := e.Name
		if e.CommonName != "" {
			name = e.CommonName
		}
		if err := checkField(name); err != nil {
			return nil, fmt.Errorf("reading iso_3166-1.json: name of %s: %w", e.Alpha2, err)
		}
		out = append(out, Country{Code: e.Alpha2, Name: name})
	}
	slices.SortFunc(out, func(a, b Country) int { return strings.Compare(a.Code, b.Code) })
	return out, nil
}

// Row is one line of cctld.tsv.
type Row struct {
	TLD     string // A-label, lower case
	Kind    string // "iso", "exception" or "idn"
	Country string // ISO 3166-1 alpha-2 (or EU, SU), upper case
	Unicode string // U-label; equal to TLD for ASCII ccTLDs
	Name    string
	Dormant bool
}

// Build classifies the labels of the Public Suffix List and returns the
// ccTLD rows sorted by TLD.
func Build(countries []Country, psl io.Reader) ([]Row, error) {
	iso := make(map[string]string, len(countries)) // lower-case code → name
	for _, c := range countries {
		iso[strings.ToLower(c.Code)] = c.Name
	}
	byCountry := make(map[string]string) // upper-case country of an exception → name
	for _, e := range exceptions {
		if _, ok := iso[strings.ToLower(e.country)]; !ok {
			byCountry[e.country] = e.name
		}
	}
	countryName := func(cc string) (string, bool) {
		if n, ok := iso[strings.ToLower(cc)]; ok {
			return n, true
		}
		n, ok := byCountry[cc]
		return n, ok
	}

	rows := make(map[string]Row)
	var (
		state     = 0 // 0 before ICANN, 1 inside, 2 done
		lineNo    = 0
		curALabel string
		curCC     string
	)
	sc := bufio.NewScanner(psl)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		switch state {
		case 0:
			if line == beginICANN {
				state = 1
			}
			continue
		case 2:
			continue
		}
		if line == newGTLDs {
			state = 2
			continue
		}
		if line == endICANN {
			return nil, fmt.Errorf("public_suffix_list.dat:%d: end of the ICANN section before %q", lineNo, newGTLDs)
		}
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "//") {
			if m := idnComment.FindStringSubmatch(line); m != nil {
				curALabel, curCC = m[1], m[2]
			}
			continue
		}
		// A rule is the first whitespace-separated field.
		rule := strings.Fields(line)[0]
		rule = strings.TrimPrefix(rule, "!")
		rule = strings.TrimPrefix(rule, "*.")
		label := rule[strings.LastIndexByte(rule, '.')+1:]
		if label == "" {
			return nil, fmt.Errorf("public_suffix_list.dat:%d: empty label in %q", lineNo, line)
		}

		if isASCII(label) && !strings.HasPrefix(label, "xn--") {
			if len(label) != 2 {
				if !isLDH(label) {
					return nil, fmt.Errorf("public_suffix_list.dat:%d: unclassified label %q", lineNo, label)
				}
				continue // a generic TLD (com, arpa, museum, …)
			}
			if _, ok := rows[label]; ok {
				continue
			}
			r := Row{TLD: label, Unicode: label, Dormant: dormant[label]}
			if e, ok := exceptions[label]; ok {
				r.Kind, r.Country, r.Name = "exception", e.country, e.name
			} else if name, ok := iso[label]; ok {
				if noTLD[label] {
					return nil, fmt.Errorf("public_suffix_list.dat:%d: %q is in the no-TLD table but delegated; update the table", lineNo, label)
				}
				r.Kind, r.Country, r.Name = "iso", strings.ToUpper(label), name
			} else {
				return nil, fmt.Errorf("public_suffix_list.dat:%d: unclassified two-letter label %q: neither ISO 3166-1 nor a known exception", lineNo, label)
			}
			rows[label] = r
			continue
		}

		// An IDN label, given as a U-label (or, defensively, an A-label).
		alabel, err := idna.Registration.ToASCII(label)
		if err != nil {
			return nil, fmt.Errorf("public_suffix_list.dat:%d: label %q: %w", lineNo, label, err)
		}
		ulabel, err := idna.Registration.ToUnicode(alabel)
		if err != nil {
			return nil, fmt.Errorf("public_suffix_list.dat:%d: label %q: %w", lineNo, label, err)
		}
		if curALabel == "" {
			return nil, fmt.Errorf("public_suffix_list.dat:%d: unclassified IDN label %q (%s): no preceding \"// xn--… : CC\" comment", lineNo, label, alabel)
		}
		if alabel != curALabel {
			return nil, fmt.Errorf("public_suffix_list.dat:%d: IDN label %q is %s, but the preceding comment says %s", lineNo, label, alabel, curALabel)
		}
		name, ok := countryName(curCC)
		if !ok {
			return nil, fmt.Errorf("public_suffix_list.dat:%d: IDN label %q: unknown country %s", lineNo, label, curCC)
		}
		if r, ok := rows[alabel]; ok {
			if r.Country != curCC || r.Unicode != ulabel {
				return nil, fmt.Errorf("public_suffix_list.dat:%d: IDN label %q: conflicting entries", lineNo, label)
			}
			continue
		}
		rows[alabel] = Row{TLD: alabel, Kind: "idn", Country: curCC, Unicode: ulabel, Name: name, Dormant: dormant[alabel]}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading public_suffix_list.dat: %w", err)
	}
	switch state {
	case 0:
		return nil, fmt.Errorf("public_suffix_list.dat: no %q line", beginICANN)
	case 1:
		return nil, fmt.Errorf("public_suffix_list.dat: no %q line in the ICANN section", newGTLDs)
	}

	// Every ISO code is either delegated or known to have no TLD.
	for _, c := range countries {
		code := strings.ToLower(c.Code)
		_, found := rows[code]
		switch {
		case found && noTLD[code]:
			return nil, fmt.Errorf("ISO code %q is in the no-TLD table but delegated", code)
		case !found && !noTLD[code]:
			return nil, fmt.Errorf("ISO code %q has no TLD in the Public Suffix List and is not in the no-TLD table", code)
		}
	}
	for code := range exceptions {
		if _, ok := rows[code]; !ok {
			return nil, fmt.Errorf("exception %q is not in the Public Suffix List", code)
		}
	}
	for code := range dormant {
		if _, ok := rows[code]; !ok {
			return nil, fmt.Errorf("dormant %q is not in the Public Suffix List", code)
		}
	}

	out := make([]Row, 0, len(rows))
	for _, r := range rows {
		for _, f := range []string{r.TLD, r.Kind, r.Country, r.Unicode, r.Name} {
			if err := checkField(f); err != nil {
				return nil, fmt.Errorf("row %s: %w", r.TLD, err)
			}
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Row) int { return strings.Compare(a.TLD, b.TLD) })
	return out, nil
}

// Generate writes cctld.tsv to w. versions names the source package
// versions and goes into the header, for example
// "iso-codes 4.15.0-1, publicsuffix 20230209.2326-1".
func Generate(isoJSON, psl io.Reader, versions string, w io.Writer) error {
	if err := checkHeader(versions); err != nil {
		return err
	}
	countries, err := ReadISO3166(isoJSON)
	if err != nil {
		return err
	}
	rows, err := Build(countries, psl)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("# Code generated by go run ./internal/gencctld; DO NOT EDIT.\n")
	b.WriteString("# Delegated ccTLDs from the ICANN section of the Public Suffix List, names from ISO 3166-1.\n")
	fmt.Fprintf(&b, "# Sources: %s\n", versions)
	b.WriteString(CCTLDColumns + "\n")
	for _, r := range rows {
		d := "no"
		if r.Dormant {
			d = "yes"
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%s\t%s\n", r.TLD, r.Kind, r.Country, r.Unicode, r.Name, d)
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// GenerateISO3166 writes iso3166.tsv (alpha-2 code and name) to w.
func GenerateISO3166(isoJSON io.Reader, versions string, w io.Writer) error {
	if err := checkHeader(versions); err != nil {
		return err
	}
	countries, err := ReadISO3166(isoJSON)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("# Code generated by go run ./internal/gencctld; DO NOT EDIT.\n")
	b.WriteString("# ISO 3166-1 alpha-2 codes; name is common_name when present.\n")
	fmt.Fprintf(&b, "# Sources: %s\n", versions)
	b.WriteString(ISO3166Columns + "\n")
	for _, c := range countries {
		fmt.Fprintf(&b, "%s\t%s\n", c.Code, c.Name)
	}
	_, err = io.WriteString(w, b.String())
	return err
}

func checkHeader(s string) error {
	if s == "" {
		return fmt.Errorf("source versions are empty")
	}
	if strings.ContainsAny(s, "\r\n") {
		return fmt.Errorf("source versions %q contain a line break", s)
	}
	return nil
}

func checkField(s string) error {
	if s == "" {
		return fmt.Errorf("empty field")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("control character in %q", s)
		}
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func isLDH(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func isUpperAlpha2(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}
