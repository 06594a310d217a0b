package directory

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // NormalizeTimeZone works without a system zoneinfo
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/net/idna"
	"golang.org/x/text/language"
	"golang.org/x/text/unicode/norm"
)

// Limits on field values.
const (
	fieldMaxEmail       = 254 // whole address, after IDNA conversion (RFC 5321 path limit minus brackets)
	fieldMaxLocalPart   = 64  // local part (RFC 5321)
	fieldMaxNameRunes   = 200 // person and organisation names
	fieldMaxLanguages   = 32  // tags in one contact's language list
	fieldMaxInput       = 1024
	fieldMaxPhone       = 64
	fieldMaxLanguageTag = 64
	fieldMaxTimeZone    = 64
	fieldValueRunes     = 64 // FieldError.Value is cut to this many runes
)

// FieldError reports a field value that does not validate.
type FieldError struct {
	Field string // "email", "phone", "name", …
	Value string // the offending input, cut to 64 runes
	Err   error  // why, lowercase
}

// Error returns `invalid <field> "<value>": <reason>`. The value is quoted
// as %q quotes it, and invisible characters that %q leaves as they are
// are escaped too, so neither control characters nor invisible ones
// reach a terminal.
func (e *FieldError) Error() string {
	return fmt.Sprintf("invalid %s %s: %v", e.Field, quoteVisible(shortFieldValue(e.Value)), e.Err)
}

// quoteVisible is strconv.Quote that also escapes the default-ignorable
// code points strconv.Quote deems printable (U+034F, U+3164, U+FE0F…),
// and the blank ones (isBlank, white space other than U+0020).
func quoteVisible(s string) string {
	q := strconv.Quote(s)
	hidden := func(r rune) bool { return isDefaultIgnorable(r) || isBlank(r) || r != ' ' && isWhiteSpace(r) }
	if !strings.ContainsFunc(q, hidden) {
		return q
	}
	var b strings.Builder
	for _, r := range q {
		switch {
		case !hidden(r):
			b.WriteRune(r)
		case r > 0xFFFF:
			fmt.Fprintf(&b, `\U%08x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

func (e *FieldError) Unwrap() error { return e.Err }

func fieldError(field, value, reason string) *FieldError {
	return &FieldError{Field: field, Value: shortFieldValue(value), Err: errors.New(reason)}
}

// shortFieldValue cuts s to fieldValueRunes runes, the last being "…".
// It is idempotent.
func shortFieldValue(s string) string {
	n := 0
	for i := range s {
		if n == fieldValueRunes-1 {
			if utf8.RuneCountInString(s[i:]) > 1 {
				return s[:i] + "…"
			}
			return s
		}
		n++
	}
	return s
}

// NormalizeEmail checks that s is one bare addr-spec and returns it in the
// directory's canonical form: local part and domain lower case, the domain
// as A-labels ("jose@exämple.pt" → "jose@xn--exmple-cua.pt").
//
// The local part must be an RFC 5322 dot-atom of ASCII characters. Quoted
// local parts and non-ASCII local parts (RFC 6531, which needs SMTPUTF8 all
// along the delivery path) are refused: a security contact must be
// reachable from any mail server. Display names, angle brackets, address
// literals, whitespace and control characters are refused. The domain needs
// at least two labels.
func NormalizeEmail(s string) (string, error) {
	const field = "email"
	fail := func(reason string) (string, error) { return "", fieldError(field, s, reason) }
	switch {
	case s == "":
		return fail("empty")
	case len(s) > fieldMaxInput:
		return fail("too long")
	case !utf8.ValidString(s):
		return fail("not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fail("contains whitespace or a control character")
		}
	}
	if strings.ContainsAny(s, "<>") {
		return fail("give the bare address, without a display name or angle brackets")
	}
	if strings.Count(s, "@") != 1 {
		return fail("need exactly one @")
	}
	local, domain, _ := strings.Cut(s, "@")

	switch {
	case local == "":
		return fail("empty local part")
	case strings.HasPrefix(local, `"`):
		return fail("quoted local parts are not supported")
	}
	for i := 0; i < len(local); i++ {
		if local[i] >= utf8.RuneSelf {
			return fail("non-ASCII local parts are not supported")
		}
	}
	if len(local) > fieldMaxLocalPart {
		return fail(fmt.Sprintf("local part longer than %d characters", fieldMaxLocalPart))
	}
	for _, atom := range strings.Split(local, ".") {
		if atom == "" {
			return fail("local part has an empty atom (leading, trailing or double dot)")
		}
		for i := 0; i < len(atom); i++ {
			if !isAtext(atom[i]) {
				return fail(fmt.Sprintf("local part contains %q", atom[i]))
			}
		}
	}

	switch {
	case domain == "":
		return fail("empty domain")
	case strings.HasPrefix(domain, "["):
		return fail("address literals are not supported")
	}
	a, err := idna.Lookup.ToASCII(domain)
	if err != nil {
		return fail("invalid domain: " + strings.TrimPrefix(err.Error(), "idna: "))
	}
	a = strings.ToLower(a)
	labels := strings.Split(a, ".")
	if len(labels) < 2 {
		return fail("domain needs at least two labels")
	}
	for _, l := range labels {
		switch {
		case l == "":
			return fail("domain has an empty label")
		case len(l) > 63:
			return fail("domain label longer than 63 characters")
		case strings.HasPrefix(l, "xn--"):
			if _, err := idna.Lookup.ToUnicode(l); err != nil {
				return fail("domain has an invalid A-label")
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return fail("top-level domain is numeric")
	}
	out := strings.ToLower(local) + "@" + a
	if len(out) > fieldMaxEmail {
		return fail(fmt.Sprintf("longer than %d characters", fieldMaxEmail))
	}
	return out, nil
}

// isAtext reports whether c is an RFC 5322 atext character.
func isAtext(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// NormalizePhone parses an international phone number ("+351 21 314 1516",
// "00 55 11 5509 3500") and returns it in E.164 form ("+351213141516").
// Spaces, dashes, dots and parentheses may separate the digits; letters
// (vanity numbers) and extensions are refused. The number must be valid
// for its country according to libphonenumber's metadata.
func NormalizePhone(s string) (string, error) {
	const field = "phone"
	fail := func(reason string) (string, error) { return "", fieldError(field, s, reason) }
	in := strings.TrimSpace(s)
	switch {
	case in == "":
		return fail("empty")
	case len(in) > fieldMaxPhone:
		return fail("too long")
	}
	digits := 0
	for i, r := range in {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		case r == '+' && i == 0:
		default:
			return fail("only digits, spaces, dashes, dots, parentheses and a leading + are allowed")
		}
	}
	switch {
	case strings.HasPrefix(in, "+"):
	case strings.HasPrefix(in, "00"):
		in = "+" + in[2:]
	default:
		return fail("must be international, starting with + or 00 and the country code")
	}
	if digits < 4 {
		return fail("too short")
	}
	num, err := phonenumbers.Parse(in, "")
	if err != nil {
		return fail("not a phone number: " + err.Error())
	}
	if !phonenumbers.IsValidNumber(num) {
		return fail(fmt.Sprintf("not a valid number for country code +%d", num.GetCountryCode()))
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// NormalizeLanguages returns the canonical BCP 47 form of each tag
// ("pt_br" → "pt-BR", "iw" → "he"), duplicates removed, order kept. An
// element may hold several tags separated by commas ("en, pt"). Empty
// tags, "und" and private-use-only tags are refused. An empty list gives
// nil.
func NormalizeLanguages(list []string) ([]string, error) {
	const field = "language"
	var items []string
	for _, el := range list {
		items = append(items, strings.Split(el, ",")...)
	}
	if len(items) > fieldMaxLanguages {
		return nil, fieldError(field, strings.Join(list, ","), fmt.Sprintf("more than %d languages", fieldMaxLanguages))
	}
	if len(items) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(items))
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		it = strings.TrimSpace(it)
		switch {
		case it == "":
			return nil, fieldError(field, it, "empty language tag")
		case len(it) > fieldMaxLanguageTag:
			return nil, fieldError(field, it, "too long")
		}
		tag, err := language.Parse(it)
		if err != nil {
			return nil, fieldError(field, it, "not a BCP 47 language tag: "+strings.TrimPrefix(err.Error(), "language: "))
		}
		c := tag.String()
		if c == "und" || strings.HasPrefix(c, "und-") || strings.HasPrefix(c, "x-") {
			return nil, fieldError(field, it, "no language given (und)")
		}
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out, nil
}

// NormalizeTimeZone checks that s names an IANA time zone ("Europe/Lisbon",
// "UTC") and returns it. "Local" and the empty string, which
// time.LoadLocation accepts, are refused. The zone data is embedded, so
// this works without a system zoneinfo.
func NormalizeTimeZone(s string) (string, error) {
	const field = "time zone"
	fail := func(reason string) (string, error) { return "", fieldError(field, s, reason) }
	in := strings.TrimSpace(s)
	switch {
	case in == "":
		return fail("empty")
	case len(in) > fieldMaxTimeZone:
		return fail("too long")
	case strings.EqualFold(in, "UTC"):
		return "UTC", nil
	case in == "Local":
		return fail("give an IANA time zone name such as Europe/Lisbon")
	}
	for i := 0; i < len(in); i++ {
		c := in[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("/_+-", c) >= 0) {
			return fail("not an IANA time zone name")
		}
	}
	if in[0] == '/' || strings.Contains(in, "//") || strings.HasSuffix(in, "/") {
		return fail("not an IANA time zone name")
	}
	loc, err := time.LoadLocation(in)
	if err != nil {
		return fail("unknown time zone")
	}
	return loc.String(), nil
}

// NormalizeRole returns "security" or "admin", given in any case.
func NormalizeRole(s string) (string, error) {
	r := strings.ToLower(strings.TrimSpace(s))
	switch r {
	case "security", "admin":
		return r, nil
	}
	return "", fieldError("role", s, "want security or admin")
}

// NormalizeCountry returns the upper-case ISO 3166-1 alpha-2 code for s
// ("pt" → "PT"). It also accepts the country of a delegated ccTLD outside
// ISO 3166-1 (EU, SU), so that CCTLD.Country always normalizes.
func NormalizeCountry(s string) (string, error) {
	const field = "country"
	in := strings.TrimSpace(s)
	cc := strings.ToUpper(in)
	if len(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z' {
		return "", fieldError(field, s, "want an ISO 3166-1 alpha-2 code such as PT")
	}
	t := cctldTable()
	if _, ok := t.iso[cc]; ok {
		return cc, nil
	}
	if i, ok := t.byCode[strings.ToLower(cc)]; ok {
		c := t.list[i]
		if c.Country == cc {
			return cc, nil // EU, SU
		}
		return "", fieldError(field, s, fmt.Sprintf("not an ISO 3166-1 code; the ccTLD %s belongs to %s", c.Code, c.Country))
	}
	return "", fieldError(field, s, "not an ISO 3166-1 alpha-2 code")
}

// NormalizeName trims s, turns every run of white space (Unicode
// White_Space: no-break, thin, ideographic spaces…) into one U+0020, puts
// it in Unicode NFC form and checks it is a
// usable person or organisation name: not empty, at most 200 characters,
// no control characters (CR, LF and tab included), line or paragraph
// separators, bidirectional controls (marks, embeddings, overrides,
// isolates), other default-ignorable code points (zero-width spaces
// and joiners, soft hyphens, variation selectors, tags, Hangul fillers…)
// or blank characters that are not white space (U+2800): characters that
// render as nothing or as a space, so two names that look the same would
// differ.
// field names the field in the error ("name", "org").
//
// The zero-width joiner and non-joiner are refused too, although some
// scripts (Persian, Indic) use them inside words: a name is told apart by
// how it looks, and they change nothing of that that people compare.
func NormalizeName(s string, field string) (string, error) {
	if field == "" {
		field = "name"
	}
	fail := func(reason string) (string, error) { return "", fieldError(field, s, reason) }
	switch {
	case len(s) > fieldMaxInput*4:
		return fail(fmt.Sprintf("longer than %d characters", fieldMaxNameRunes))
	case !utf8.ValidString(s):
		return fail("not valid UTF-8")
	}
	for _, r := range s {
		switch {
		case unicode.IsControl(r):
			return fail("contains a control character")
		case r == '\u2028' || r == '\u2029':
			return fail("contains a line or paragraph separator")
		case isBidiControl(r):
			return fail("contains a bidirectional control character")
		case isDefaultIgnorable(r):
			return fail(fmt.Sprintf("contains an invisible character (U+%04X)", r))
		case isBlank(r):
			return fail(fmt.Sprintf("contains a blank character (U+%04X)", r))
		}
	}
	out := norm.NFC.String(strings.Join(strings.FieldsFunc(s, isWhiteSpace), " "))
	switch {
	case out == "":
		return fail("empty")
	case utf8.RuneCountInString(out) > fieldMaxNameRunes:
		return fail(fmt.Sprintf("longer than %d characters", fieldMaxNameRunes))
	case strings.ContainsRune("=+-@", rune(out[0])):
		// A spreadsheet opening the CSV export would run it as a formula.
		return fail("starts with " + string(out[0]))
	}
	return out, nil
}

// isWhiteSpace reports Unicode White_Space: a name has one U+0020 for
// every run of it, so that two names that look the same are the same.
func isWhiteSpace(r rune) bool { return unicode.Is(unicode.White_Space, r) }

// isBlank reports the characters that show as a blank but are not white
// space, nor default-ignorable (the Hangul fillers U+115F, U+1160, U+3164
// and U+FFA0 are, and refused as invisible): U+2800 BRAILLE PATTERN
// BLANK.
func isBlank(r rune) bool { return r == '\u2800' }

// isBidiControl reports the characters that change the direction of text
// around them (Unicode Bidi_Control): ALM, LRM, RLM, the embeddings and
// overrides LRE…RLO, and the isolates LRI…PDI.
func isBidiControl(r rune) bool {
	return unicode.Is(unicode.Bidi_Control, r)
}

// isDefaultIgnorable reports whether r is a Unicode Default_Ignorable_Code_Point
// (characters a renderer shows as nothing when it does not support them).
// It is derived from the tables of package unicode the way
// DerivedCoreProperties.txt derives it, so it follows the Unicode version
// of the Go release:
//
//	Other_Default_Ignorable_Code_Point + Cf + Variation_Selector
//	− White_Space − FFF9..FFFB − 13430..13440 − Prepended_Concatenation_Mark
func isDefaultIgnorable(r rune) bool {
	switch {
	case unicode.Is(unicode.White_Space, r),
		r >= 0xFFF9 && r <= 0xFFFB,   // interlinear annotation controls
		r >= 0x13430 && r <= 0x13440, // Egyptian hieroglyph format controls
		unicode.Is(unicode.Prepended_Concatenation_Mark, r):
		return false
	}
	return unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) ||
		unicode.Is(unicode.Cf, r) ||
		unicode.Is(unicode.Variation_Selector, r)
}
