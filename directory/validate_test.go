package directory

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// checkFieldError asserts that err is a *FieldError for field whose
// message is exactly msg.
func checkFieldError(t *testing.T, call string, err error, field, msg string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %q", call, msg)
		return
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Errorf("%s: error %T %v is not a *FieldError", call, err, err)
		return
	}
	if fe.Field != field {
		t.Errorf("%s: Field = %q, want %q", call, fe.Field, field)
	}
	if fe.Err == nil || errors.Unwrap(err) != fe.Err {
		t.Errorf("%s: Unwrap does not give Err", call)
	}
	if err.Error() != msg {
		t.Errorf("%s: error\n  %s\nwant\n  %s", call, err, msg)
	}
}

func TestFieldErrorMessage(t *testing.T) {
	long := strings.Repeat("é", 100)
	tests := []struct {
		err  *FieldError
		want string
	}{
		{&FieldError{Field: "status", Value: "x", Err: errors.New("want active or inactive")}, `invalid status "x": want active or inactive`},
		{&FieldError{Field: "name", Value: "a\r\nb\x1b[2J", Err: errors.New("r")}, `invalid name "a\r\nb\x1b[2J": r`},
		{&FieldError{Field: "name", Value: long, Err: errors.New("r")}, `invalid name "` + strings.Repeat("é", 63) + `…": r`},
		{&FieldError{Field: "name", Value: "\xff", Err: errors.New("r")}, `invalid name "\xff": r`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %s, want %s", got, tt.want)
		}
	}
	// Constructed errors keep the short value, and cutting is idempotent.
	_, err := NormalizeName(strings.Repeat("x", 300), "org")
	var fe *FieldError
	if !errors.As(err, &fe) || len(fe.Value) != 63+len("…") {
		t.Errorf("NormalizeName long: Value %q", fe.Value)
	}
	if s := shortFieldValue(fe.Value); s != fe.Value {
		t.Errorf("shortFieldValue not idempotent: %q", s)
	}
	for _, n := range []int{0, 1, 63, 64} {
		s := strings.Repeat("ü", n)
		if got := shortFieldValue(s); got != s {
			t.Errorf("shortFieldValue(%d runes) = %q", n, got)
		}
	}
	if got := shortFieldValue(strings.Repeat("ü", 65)); got != strings.Repeat("ü", 63)+"…" {
		t.Errorf("shortFieldValue(65 runes) = %q", got)
	}
}

func TestNormalizeEmail(t *testing.T) {
	ok := []struct{ in, want string }{
		{"security@example.pt", "security@example.pt"},
		{"Security.Team@Example.PT", "security.team@example.pt"},
		{"jose@exämple.pt", "jose@xn--exmple-cua.pt"},
		{"jose@EXÄMPLE.pt", "jose@xn--exmple-cua.pt"},
		{"cert@xn--exmple-cua.pt", "cert@xn--exmple-cua.pt"},
		{"abuse@nic.рф", "abuse@nic.xn--p1ai"},
		{"a+tag@sub.example.co.uk", "a+tag@sub.example.co.uk"},
		{"o'brien@example.ie", "o'brien@example.ie"},
		{"!#$%&'*+-/=?^_`{|}~@example.org", "!#$%&'*+-/=?^_`{|}~@example.org"},
		{strings.Repeat("a", 64) + "@example.org", strings.Repeat("a", 64) + "@example.org"},
	}
	for _, tt := range ok {
		got, err := NormalizeEmail(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}

	bad := []struct{ in, msg string }{
		{"", `invalid email "": empty`},
		{"josé@exämple.pt", `invalid email "josé@exämple.pt": non-ASCII local parts are not supported`},
		{"Jose <jose@example.pt>", `invalid email "Jose <jose@example.pt>": contains whitespace or a control character`},
		{"<jose@example.pt>", `invalid email "<jose@example.pt>": give the bare address, without a display name or angle brackets`},
		{"jose@example.pt\r\nBcc: x@y.z", `invalid email "jose@example.pt\r\nBcc: x@y.z": contains whitespace or a control character`},
		{"jose@exa\x00mple.pt", `invalid email "jose@exa\x00mple.pt": contains whitespace or a control character`},
		{"jose", `invalid email "jose": need exactly one @`},
		{"a@b@example.pt", `invalid email "a@b@example.pt": need exactly one @`},
		{"@example.pt", `invalid email "@example.pt": empty local part`},
		{`"jose"@example.pt`, `invalid email "\"jose\"@example.pt": quoted local parts are not supported`},
		{".jose@example.pt", `invalid email ".jose@example.pt": local part has an empty atom (leading, trailing or double dot)`},
		{"jo..se@example.pt", `invalid email "jo..se@example.pt": local part has an empty atom (leading, trailing or double dot)`},
		{"jose.@example.pt", `invalid email "jose.@example.pt": local part has an empty atom (leading, trailing or double dot)`},
		{"jo,se@example.pt", `invalid email "jo,se@example.pt": local part contains ','`},
		{strings.Repeat("a", 65) + "@example.org", `invalid email "` + strings.Repeat("a", 63) + `…": local part longer than 64 characters`},
		{"jose@", `invalid email "jose@": empty domain`},
		{"jose@[192.0.2.1]", `invalid email "jose@[192.0.2.1]": address literals are not supported`},
		{"jose@localhost", `invalid email "jose@localhost": domain needs at least two labels`},
		{"jose@example..pt", `invalid email "jose@example..pt": domain has an empty label`},
		{"jose@example.pt.", `invalid email "jose@example.pt.": domain has an empty label`},
		{"jose@exa_mple.pt", `invalid email "jose@exa_mple.pt": invalid domain: disallowed rune U+005F`},
		{"jose@-example.pt", `invalid email "jose@-example.pt": invalid domain: invalid label "-example"`},
		{"jose@192.0.2.1", `invalid email "jose@192.0.2.1": top-level domain is numeric`},
		{"jose@xn--zz.pt", `invalid email "jose@xn--zz.pt": invalid domain: invalid label "zz"`},
		{"jose@" + strings.Repeat("a", 64) + ".pt", `invalid email "jose@` + strings.Repeat("a", 58) + `…": domain label longer than 63 characters`},
		{strings.Repeat("a", 60) + "@" + strings.Repeat(strings.Repeat("b", 60)+".", 4) + "example.pt", `invalid email "` + strings.Repeat("a", 60) + `@bb…": longer than 254 characters`},
		{strings.Repeat("a", 2000), `invalid email "` + strings.Repeat("a", 63) + `…": too long`},
		{"jose@exa\xffmple.pt", `invalid email "jose@exa\xffmple.pt": not valid UTF-8`},
	}
	for _, tt := range bad {
		got, err := NormalizeEmail(tt.in)
		if got != "" {
			t.Errorf("NormalizeEmail(%q) = %q, want \"\"", tt.in, got)
		}
		checkFieldError(t, "NormalizeEmail("+tt.in+")", err, "email", tt.msg)
	}
}

func TestNormalizePhone(t *testing.T) {
	ok := []struct{ in, want string }{
		{"+351 21 314 1516", "+351213141516"},
		{"+351213141516", "+351213141516"},
		{"00 55 11 5509 3500", "+551155093500"},
		{"+1 (202) 456-1111", "+12024561111"},
		{"+44 (0)20 7946 0958", "+442079460958"},
		{"+33.1.23.45.67.89", "+33123456789"},
		{"  +49 30 901820  ", "+4930901820"},
	}
	for _, tt := range ok {
		got, err := NormalizePhone(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("NormalizePhone(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}

	bad := []struct{ in, msg string }{
		{"", `invalid phone "": empty`},
		{"12345", `invalid phone "12345": must be international, starting with + or 00 and the country code`},
		{"021 314 1516", `invalid phone "021 314 1516": must be international, starting with + or 00 and the country code`},
		{"+1 555", `invalid phone "+1 555": not a valid number for country code +1`},
		{"+351 21 314 1516 1", `invalid phone "+351 21 314 1516 1": not a valid number for country code +351`},
		{"+1-800-FLOWERS", `invalid phone "+1-800-FLOWERS": only digits, spaces, dashes, dots, parentheses and a leading + are allowed`},
		{"+351 21 314 1516 ext. 3", `invalid phone "+351 21 314 1516 ext. 3": only digits, spaces, dashes, dots, parentheses and a leading + are allowed`},
		{"+351 21+314", `invalid phone "+351 21+314": only digits, spaces, dashes, dots, parentheses and a leading + are allowed`},
		{"+351\n213141516", `invalid phone "+351\n213141516": only digits, spaces, dashes, dots, parentheses and a leading + are allowed`},
		{"+", `invalid phone "+": too short`},
		{"+999 1234 5678", `invalid phone "+999 1234 5678": not a phone number: invalid country code`},
		{"+" + strings.Repeat("1", 70), `invalid phone "+` + strings.Repeat("1", 62) + `…": too long`},
	}
	for _, tt := range bad {
		got, err := NormalizePhone(tt.in)
		if got != "" {
			t.Errorf("NormalizePhone(%q) = %q, want \"\"", tt.in, got)
		}
		checkFieldError(t, "NormalizePhone("+tt.in+")", err, "phone", tt.msg)
	}
}

func TestNormalizeLanguages(t *testing.T) {
	ok := []struct {
		in   []string
		want []string
	}{
		{[]string{"en"}, []string{"en"}},
		{[]string{"pt-br", "EN"}, []string{"pt-BR", "en"}},
		{[]string{"pt_BR"}, []string{"pt-BR"}},
		{[]string{"en, pt"}, []string{"en", "pt"}},
		{[]string{"en,pt-PT", "fr", "EN"}, []string{"en", "pt-PT", "fr"}},
		{[]string{"iw"}, []string{"he"}},
		{[]string{"zh-hant-tw"}, []string{"zh-Hant-TW"}},
		{nil, nil},
	}
	for _, tt := range ok {
		got, err := NormalizeLanguages(tt.in)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("NormalizeLanguages(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}

	bad := []struct {
		in  []string
		msg string
	}{
		{[]string{""}, `invalid language "": empty language tag`},
		{[]string{"en,,pt"}, `invalid language "": empty language tag`},
		{[]string{"und"}, `invalid language "und": no language given (und)`},
		{[]string{"und-PT"}, `invalid language "und-PT": no language given (und)`},
		{[]string{"x-klingon"}, `invalid language "x-klingon": no language given (und)`},
		{[]string{"en", "xx"}, `invalid language "xx": not a BCP 47 language tag: subtag "xx" is well-formed but unknown`},
		{[]string{"english"}, `invalid language "english": not a BCP 47 language tag: tag is not well-formed`},
		{[]string{"en\r\npt"}, `invalid language "en\r\npt": not a BCP 47 language tag: tag is not well-formed`},
		{[]string{strings.Repeat("en,", 33)}, `invalid language "` + strings.Repeat("en,", 21) + `…": more than 32 languages`},
	}
	for _, tt := range bad {
		got, err := NormalizeLanguages(tt.in)
		if got != nil {
			t.Errorf("NormalizeLanguages(%q) = %q, want nil", tt.in, got)
		}
		checkFieldError(t, "NormalizeLanguages", err, "language", tt.msg)
	}
}

func TestNormalizeTimeZone(t *testing.T) {
	ok := []struct{ in, want string }{
		{"Europe/Lisbon", "Europe/Lisbon"},
		{"America/Sao_Paulo", "America/Sao_Paulo"},
		{"America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires"},
		{"UTC", "UTC"},
		{"utc", "UTC"},
		{"Etc/GMT+3", "Etc/GMT+3"},
		{" Asia/Tokyo ", "Asia/Tokyo"},
	}
	for _, tt := range ok {
		got, err := NormalizeTimeZone(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("NormalizeTimeZone(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}

	bad := []struct{ in, msg string }{
		{"", `invalid time zone "": empty`},
		{"Local", `invalid time zone "Local": give an IANA time zone name such as Europe/Lisbon`},
		{"Europe/Atlantis", `invalid time zone "Europe/Atlantis": unknown time zone`},
		{"europe/lisbon", `invalid time zone "europe/lisbon": unknown time zone`},
		{"../../etc/passwd", `invalid time zone "../../etc/passwd": not an IANA time zone name`},
		{"/etc/localtime", `invalid time zone "/etc/localtime": not an IANA time zone name`},
		{"Europe//Lisbon", `invalid time zone "Europe//Lisbon": not an IANA time zone name`},
		{"Europe/Lis\x1bbon", `invalid time zone "Europe/Lis\x1bbon": not an IANA time zone name`},
	}
	for _, tt := range bad {
		got, err := NormalizeTimeZone(tt.in)
		if got != "" {
			t.Errorf("NormalizeTimeZone(%q) = %q, want \"\"", tt.in, got)
		}
		checkFieldError(t, "NormalizeTimeZone("+tt.in+")", err, "time zone", tt.msg)
	}
}

func TestNormalizeRole(t *testing.T) {
	for in, want := range map[string]string{"security": "security", "Security": "security", " ADMIN ": "admin"} {
		if got, err := NormalizeRole(in); err != nil || got != want {
			t.Errorf("NormalizeRole(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "tech", "securityx", "sécurité"} {
		_, err := NormalizeRole(in)
		checkFieldError(t, "NormalizeRole("+in+")", err, "role", `invalid role "`+in+`": want security or admin`)
	}
}

func TestNormalizeCountry(t *testing.T) {
	for in, want := range map[string]string{"pt": "PT", "PT": "PT", " br ": "BR", "bl": "BL", "um": "UM", "EU": "EU", "su": "SU", "gb": "GB"} {
		if got, err := NormalizeCountry(in); err != nil || got != want {
			t.Errorf("NormalizeCountry(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []struct{ in, msg string }{
		{"", `invalid country "": want an ISO 3166-1 alpha-2 code such as PT`},
		{"PRT", `invalid country "PRT": want an ISO 3166-1 alpha-2 code such as PT`},
		{"p1", `invalid country "p1": want an ISO 3166-1 alpha-2 code such as PT`},
		{"ZZ", `invalid country "ZZ": not an ISO 3166-1 alpha-2 code`},
		{"uk", `invalid country "uk": not an ISO 3166-1 code; the ccTLD uk belongs to GB`},
		{"ac", `invalid country "ac": not an ISO 3166-1 code; the ccTLD ac belongs to SH`},
	}
	for _, tt := range bad {
		_, err := NormalizeCountry(tt.in)
		checkFieldError(t, "NormalizeCountry("+tt.in+")", err, "country", tt.msg)
	}
}

func TestNormalizeName(t *testing.T) {
	ok := []struct{ in, want string }{
		{"Maria Silva", "Maria Silva"},
		{"  Associação DNS.PT  ", "Associação DNS.PT"},
		{"Jose\u0301", "José"}, // NFD → NFC
		{"Координационный центр", "Координационный центр"},
		{"中国互联网络信息中心", "中国互联网络信息中心"},
		{strings.Repeat("ä", 200), strings.Repeat("ä", 200)},
		{strings.Repeat("a\u0308", 200), strings.Repeat("ä", 200)}, // 400 runes, 200 after NFC
		// Every run of white space is one space: two names that look the
		// same are the same.
		{"Maria  Silva", "Maria Silva"},
		{"Maria\u00a0Silva", "Maria Silva"},       // no-break space
		{"Maria\u2009Silva", "Maria Silva"},       // thin space
		{"Maria\u200aSilva", "Maria Silva"},       // hair space
		{"Maria\u3000Silva", "Maria Silva"},       // ideographic space
		{"Maria\u202f\u205fSilva", "Maria Silva"}, // narrow no-break, medium mathematical
		{"Maria\u1680 Silva", "Maria Silva"},      // Ogham space mark
		{"\u00a0Maria Silva\u2003", "Maria Silva"},
	}
	for _, tt := range ok {
		got, err := NormalizeName(tt.in, "name")
		if err != nil || got != tt.want {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}

	bad := []struct{ in, field, msg string }{
		{"", "name", `invalid name "": empty`},
		{"   ", "org", `invalid org "   ": empty`},
		{"Maria\r\nBcc: x", "name", `invalid name "Maria\r\nBcc: x": contains a control character`},
		{"Maria\n", "name", `invalid name "Maria\n": contains a control character`},
		{"Maria\tSilva", "name", `invalid name "Maria\tSilva": contains a control character`},
		{"Maria\x1b[31m", "name", `invalid name "Maria\x1b[31m": contains a control character`},
		{"Maria\u0085", "name", `invalid name "Maria\u0085": contains a control character`},
		{"Maria\u2028Silva", "name", `invalid name "Maria\u2028Silva": contains a line or paragraph separator`},
		{"Maria\u202eavliS", "org", `invalid org "Maria\u202eavliS": contains a bidirectional control character`},
		{"\xffMaria", "name", `invalid name "\xffMaria": not valid UTF-8`},
		{strings.Repeat("ä", 201), "org", `invalid org "` + strings.Repeat("ä", 63) + `…": longer than 200 characters`},
		{"\x00", "", `invalid name "\x00": contains a control character`}, // field defaults to "name"
		{"=HYPERLINK(\"x\")", "name", `invalid name "=HYPERLINK(\"x\")": starts with =`},
		{" @SUM(A1)", "org", `invalid org " @SUM(A1)": starts with @`},
		{"+1 evil", "name", `invalid name "+1 evil": starts with +`},
		// Invisible characters: two names that look the same must be the same.
		{"Maria\u200eSilva", "name", `invalid name "Maria\u200eSilva": contains a bidirectional control character`}, // LRM
		{"Maria\u200fSilva", "name", `invalid name "Maria\u200fSilva": contains a bidirectional control character`}, // RLM
		{"\u061cDNS.PT", "org", `invalid org "\u061cDNS.PT": contains a bidirectional control character`},           // ALM
		{"Ma\u200bria", "name", `invalid name "Ma\u200bria": contains an invisible character (U+200B)`},             // zero-width space
		{"Ma\u200cria", "name", `invalid name "Ma\u200cria": contains an invisible character (U+200C)`},             // ZWNJ
		{"Ma\u200dria", "name", `invalid name "Ma\u200dria": contains an invisible character (U+200D)`},             // ZWJ
		{"Ma\u2060ria", "name", `invalid name "Ma\u2060ria": contains an invisible character (U+2060)`},             // word joiner
		{"\ufeffMaria", "name", `invalid name "\ufeffMaria": contains an invisible character (U+FEFF)`},             // BOM
		{"Ma\u00adria", "org", `invalid org "Ma\u00adria": contains an invisible character (U+00AD)`},               // soft hyphen
		{"Mari\u034fa", "name", `invalid name "Mari\u034fa": contains an invisible character (U+034F)`},             // combining grapheme joiner
		{"DNS\u3164PT", "org", `invalid org "DNS\u3164PT": contains an invisible character (U+3164)`},               // Hangul filler
		{"Maria\ufe0f", "name", `invalid name "Maria\ufe0f": contains an invisible character (U+FE0F)`},             // variation selector
		{"Maria\U000e0041", "name", `invalid name "Maria\U000e0041": contains an invisible character (U+E0041)`},    // tag
		{"Maria\u180e", "name", `invalid name "Maria\u180e": contains an invisible character (U+180E)`},             // Mongolian vowel separator
		// Blank characters that are not white space.
		{"Maria\u2800", "name", `invalid name "Maria\u2800": contains a blank character (U+2800)`}, // Braille pattern blank
		{"\u2800Maria", "name", `invalid name "\u2800Maria": contains a blank character (U+2800)`},
		{"Maria\u115fSilva", "name", `invalid name "Maria\u115fSilva": contains an invisible character (U+115F)`}, // Hangul choseong filler
		{"Maria\u1160Silva", "name", `invalid name "Maria\u1160Silva": contains an invisible character (U+1160)`}, // Hangul jungseong filler
		{"Maria\uffa0Silva", "name", `invalid name "Maria\uffa0Silva": contains an invisible character (U+FFA0)`}, // halfwidth Hangul filler
		{"\u00a0=cmd", "name", `invalid name "\u00a0=cmd": starts with =`},
	}
	for _, tt := range bad {
		got, err := NormalizeName(tt.in, tt.field)
		if got != "" {
			t.Errorf("NormalizeName(%q) = %q, want \"\"", tt.in, got)
		}
		field := tt.field
		if field == "" {
			field = "name"
		}
		checkFieldError(t, "NormalizeName("+tt.in+")", err, field, tt.msg)
	}
}
