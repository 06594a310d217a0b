package directory

//go:generate go run ./internal/gencctld

import (
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// cctldTSV is the list of delegated ccTLDs, generated from the ICANN
// section of Debian's Public Suffix List (a February 2023 snapshot) and
// ISO 3166-1 from iso-codes. See internal/cctldgen.
//
//go:embed cctld.tsv
var cctldTSV string

// iso3166TSV lists the ISO 3166-1 alpha-2 codes and names, from the same
// iso-codes package.
//
//go:embed iso3166.tsv
var iso3166TSV string

// Kinds of ccTLD.
const (
	CCTLDKindISO       = "iso"       // the ISO 3166-1 alpha-2 code
	CCTLDKindException = "exception" // delegated outside ISO 3166-1: ac, eu, su, uk
	CCTLDKindIDN       = "idn"       // an internationalized ccTLD
)

// CCTLD is one delegated country-code top-level domain.
type CCTLD struct {
	Code    string // A-label, lower case, no dot: "pt", "xn--p1ai"
	Unicode string // U-label: "рф"; equal to Code for ASCII ccTLDs
	Country string // ISO 3166-1 alpha-2, upper case: "GB" for uk, "SH" for ac, "EU" for eu, "SU" for su
	Name    string // English name of the country or territory
	Kind    string // CCTLDKindISO, CCTLDKindException or CCTLDKindIDN
	Dormant bool   // delegated but taking no registrations: gb, bv, sj
}

// IsIDN reports whether c is an internationalized ccTLD.
func (c CCTLD) IsIDN() bool { return c.Kind == CCTLDKindIDN }

// Display returns the ccTLD as shown to people: "pt", or "рф (xn--p1ai)"
// for an IDN.
func (c CCTLD) Display() string {
	if c.Unicode == "" || c.Unicode == c.Code {
		return c.Code
	}
	return c.Unicode + " (" + c.Code + ")"
}

// DisplayTLD returns the ccTLD of code as shown to people (see
// [CCTLD.Display]), or code itself when it is no delegated ccTLD (a
// ccTLD the embedded list no longer has, in an old entry).
func DisplayTLD(code string) string {
	if t, err := LookupCCTLD(code); err == nil {
		return t.Display()
	}
	return code
}

// ErrUnknownTLD is wrapped by the errors of [LookupCCTLD].
var ErrUnknownTLD = errors.New("not a delegated ccTLD")

type cctldData struct {
	list    []CCTLD        // sorted by Code
	byCode  map[string]int // Code → index in list
	iso     map[string]string
	sources string // the "# Sources:" header of cctld.tsv
}

// cctldTable parses the embedded files once. They are generated and
// checked by tests, so a malformed line is a build defect and panics.
var cctldTable = sync.OnceValue(func() *cctldData {
	d := &cctldData{byCode: make(map[string]int), iso: make(map[string]string)}
	for i, line := range strings.Split(cctldTSV, "\n") {
		if src, ok := strings.CutPrefix(line, "# Sources: "); ok {
			d.sources = src
		}
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 6 || (f[5] != "yes" && f[5] != "no") {
			panic(fmt.Sprintf("directory: cctld.tsv:%d: malformed line", i+1))
		}
		c := CCTLD{Code: f[0], Kind: f[1], Country: f[2], Unicode: f[3], Name: f[4], Dormant: f[5] == "yes"}
		if _, dup := d.byCode[c.Code]; dup {
			panic(fmt.Sprintf("directory: cctld.tsv:%d: duplicate %s", i+1, c.Code))
		}
		d.byCode[c.Code] = len(d.list)
		d.list = append(d.list, c)
	}
	if !slices.IsSortedFunc(d.list, func(a, b CCTLD) int { return strings.Compare(a.Code, b.Code) }) {
		panic("directory: cctld.tsv is not sorted")
	}
	for i, line := range strings.Split(iso3166TSV, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		code, name, ok := strings.Cut(line, "\t")
		if !ok || len(code) != 2 || name == "" {
			panic(fmt.Sprintf("directory: iso3166.tsv:%d: malformed line", i+1))
		}
		d.iso[code] = name
	}
	return d
})

// CCTLDs returns all delegated ccTLDs, sorted by Code.
func CCTLDs() []CCTLD {
	return slices.Clone(cctldTable().list)
}

// CCTLDSources names the source package versions the embedded list was
// generated from, for example "iso-codes 4.15.0-1, publicsuffix
// 20230209.2326-1".
func CCTLDSources() string { return cctldTable().sources }

// LookupCCTLD finds a delegated ccTLD by its A-label or U-label, in any
// case, with or without a leading or trailing dot: "pt", ".PT", "pt.",
// "рф", "xn--p1ai", "中国". The error wraps [ErrUnknownTLD] and says why
// the input is not a ccTLD.
func LookupCCTLD(s string) (CCTLD, error) {
	label, err := cctldLabel(s)
	if err != nil {
		return CCTLD{}, err
	}
	t := cctldTable()
	if i, ok := t.byCode[label]; ok {
		return t.list[i], nil
	}
	return CCTLD{}, unknownCCTLD(s, cctldWhyNot(label))
}

// cctldLabel turns s into a lower-case A-label, or fails.
func cctldLabel(s string) (string, error) {
	in := strings.TrimSpace(s)
	in = strings.TrimPrefix(in, ".")
	in = strings.TrimSuffix(in, ".")
	if in == "" {
		return "", unknownCCTLD(s, "empty")
	}
	if len(in) > 253 {
		return "", unknownCCTLD(s, "too long")
	}
	a, err := idna.Lookup.ToASCII(in)
	if err != nil {
		why := strings.TrimPrefix(err.Error(), "idna: ")
		if strings.HasPrefix(why, "invalid label") {
			why = "" // names the label, which the message already quotes
		}
		return "", unknownCCTLD(s, strings.TrimSuffix("invalid label: "+why, ": "))
	}
	a = strings.ToLower(a)
	if n := strings.Count(a, ".") + 1; n > 1 {
		return "", unknownCCTLD(s, fmt.Sprintf("a top-level domain is one label, this has %d", n))
	}
	if len(a) > 63 {
		return "", unknownCCTLD(s, "longer than 63 characters")
	}
	if strings.HasPrefix(a, "xn--") {
		u, err := idna.Registration.ToUnicode(a)
		if err != nil {
			return "", unknownCCTLD(s, "invalid A-label")
		}
		if back, err := idna.Registration.ToASCII(u); err != nil || back != a {
			return "", unknownCCTLD(s, "invalid A-label")
		}
	}
	return a, nil
}

// cctldWhyNot explains, cheaply, why a valid label is not in the list.
func cctldWhyNot(label string) string {
	t := cctldTable()
	if len(label) == 2 {
		cc := strings.ToUpper(label)
		if name, ok := t.iso[cc]; ok {
			return fmt.Sprintf("ISO 3166-1 code %s (%s) has no delegated TLD", cc, name)
		}
		return fmt.Sprintf("%s is not an ISO 3166-1 code", cc)
	}
	_, icann := publicsuffix.PublicSuffix(label)
	if strings.HasPrefix(label, "xn--") {
		if icann {
			return "it is a top-level domain, but not an IDN ccTLD in the list"
		}
		return "not an IDN ccTLD"
	}
	if icann {
		return "it is a generic TLD"
	}
	return "a ccTLD has two letters or is an IDN"
}

func unknownCCTLD(input, why string) error {
	return fmt.Errorf("%q is %w (%s)", shortFieldValue(input), ErrUnknownTLD, why)
}
