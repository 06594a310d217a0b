package directory

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestLookupCCTLD(t *testing.T) {
	tests := []struct {
		in   string
		want CCTLD
	}{
		{"pt", CCTLD{Code: "pt", Unicode: "pt", Country: "PT", Name: "Portugal", Kind: "iso"}},
		{".PT", CCTLD{Code: "pt", Unicode: "pt", Country: "PT", Name: "Portugal", Kind: "iso"}},
		{"pt.", CCTLD{Code: "pt", Unicode: "pt", Country: "PT", Name: "Portugal", Kind: "iso"}},
		{" Pt ", CCTLD{Code: "pt", Unicode: "pt", Country: "PT", Name: "Portugal", Kind: "iso"}},
		{"ＰＴ", CCTLD{Code: "pt", Unicode: "pt", Country: "PT", Name: "Portugal", Kind: "iso"}}, // full width, mapped by IDNA
		// za has only second-level rules in the Public Suffix List.
		{"za", CCTLD{Code: "za", Unicode: "za", Country: "ZA", Name: "South Africa", Kind: "iso"}},
		{"uk", CCTLD{Code: "uk", Unicode: "uk", Country: "GB", Name: "United Kingdom", Kind: "exception"}},
		{"ac", CCTLD{Code: "ac", Unicode: "ac", Country: "SH", Name: "Ascension Island", Kind: "exception"}},
		{"eu", CCTLD{Code: "eu", Unicode: "eu", Country: "EU", Name: "European Union", Kind: "exception"}},
		{"su", CCTLD{Code: "su", Unicode: "su", Country: "SU", Name: "Soviet Union", Kind: "exception"}},
		{"gb", CCTLD{Code: "gb", Unicode: "gb", Country: "GB", Name: "United Kingdom", Kind: "iso", Dormant: true}},
		{"bv", CCTLD{Code: "bv", Unicode: "bv", Country: "BV", Name: "Bouvet Island", Kind: "iso", Dormant: true}},
		{"sj", CCTLD{Code: "sj", Unicode: "sj", Country: "SJ", Name: "Svalbard and Jan Mayen", Kind: "iso", Dormant: true}},
		{"tw", CCTLD{Code: "tw", Unicode: "tw", Country: "TW", Name: "Taiwan", Kind: "iso"}}, // common_name
		{"рф", CCTLD{Code: "xn--p1ai", Unicode: "рф", Country: "RU", Name: "Russian Federation", Kind: "idn"}},
		{"РФ", CCTLD{Code: "xn--p1ai", Unicode: "рф", Country: "RU", Name: "Russian Federation", Kind: "idn"}},
		{"xn--p1ai", CCTLD{Code: "xn--p1ai", Unicode: "рф", Country: "RU", Name: "Russian Federation", Kind: "idn"}},
		{".XN--P1AI.", CCTLD{Code: "xn--p1ai", Unicode: "рф", Country: "RU", Name: "Russian Federation", Kind: "idn"}},
		{"中国", CCTLD{Code: "xn--fiqs8s", Unicode: "中国", Country: "CN", Name: "China", Kind: "idn"}},
		{"中國", CCTLD{Code: "xn--fiqz9s", Unicode: "中國", Country: "CN", Name: "China", Kind: "idn"}},
		{"xn--fiqz9s", CCTLD{Code: "xn--fiqz9s", Unicode: "中國", Country: "CN", Name: "China", Kind: "idn"}},
		{"台湾", CCTLD{Code: "xn--kprw13d", Unicode: "台湾", Country: "TW", Name: "Taiwan", Kind: "idn"}},
		{"台灣", CCTLD{Code: "xn--kpry57d", Unicode: "台灣", Country: "TW", Name: "Taiwan", Kind: "idn"}},
		{"臺灣", CCTLD{Code: "xn--nnx388a", Unicode: "臺灣", Country: "TW", Name: "Taiwan", Kind: "idn"}},
		{"ею", CCTLD{Code: "xn--e1a4c", Unicode: "ею", Country: "EU", Name: "European Union", Kind: "idn"}},
		{"ישראל", CCTLD{Code: "xn--4dbrk0ce", Unicode: "ישראל", Country: "IL", Name: "Israel", Kind: "idn"}}, // listed in the ASCII block
		// The two comments with an irregular format (notes §7).
		{"xn--mgberp4a5d4a87g", CCTLD{Code: "xn--mgberp4a5d4a87g", Unicode: "السعودیة", Country: "SA", Name: "Saudi Arabia", Kind: "idn"}},
		{"xn--yfro4i67o", CCTLD{Code: "xn--yfro4i67o", Unicode: "新加坡", Country: "SG", Name: "Singapore", Kind: "idn"}},
	}
	for _, tt := range tests {
		got, err := LookupCCTLD(tt.in)
		if err != nil {
			t.Errorf("LookupCCTLD(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("LookupCCTLD(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestLookupCCTLDRefused(t *testing.T) {
	tests := []struct {
		in, msg string
	}{
		{"com", `"com" is not a delegated ccTLD (it is a generic TLD)`},
		{"museum", `"museum" is not a delegated ccTLD (it is a generic TLD)`},
		{"zzzz", `"zzzz" is not a delegated ccTLD (a ccTLD has two letters or is an IDN)`},
		{"bl", `"bl" is not a delegated ccTLD (ISO 3166-1 code BL (Saint Barthélemy) has no delegated TLD)`},
		{"bq", `"bq" is not a delegated ccTLD (ISO 3166-1 code BQ (Bonaire, Sint Eustatius and Saba) has no delegated TLD)`},
		{"eh", `"eh" is not a delegated ccTLD (ISO 3166-1 code EH (Western Sahara) has no delegated TLD)`},
		{"mf", `"mf" is not a delegated ccTLD (ISO 3166-1 code MF (Saint Martin (French part)) has no delegated TLD)`},
		{"um", `"um" is not a delegated ccTLD (ISO 3166-1 code UM (United States Minor Outlying Islands) has no delegated TLD)`},
		{"zz", `"zz" is not a delegated ccTLD (ZZ is not an ISO 3166-1 code)`},
		{"xn--invalid", `"xn--invalid" is not a delegated ccTLD (not an IDN ccTLD)`}, // valid punycode for 曌曓曐曒曌
		{"xn--zz", `"xn--zz" is not a delegated ccTLD (invalid label)`},
		{"онлайн", `"онлайн" is not a delegated ccTLD (it is a top-level domain, but not an IDN ccTLD in the list)`},
		{"", `"" is not a delegated ccTLD (empty)`},
		{".", `"." is not a delegated ccTLD (empty)`},
		{"pt.br", `"pt.br" is not a delegated ccTLD (a top-level domain is one label, this has 2)`},
		{"-pt", `"-pt" is not a delegated ccTLD (invalid label)`},
		{"p_t", `"p_t" is not a delegated ccTLD (invalid label: disallowed rune U+005F)`},
		{"p\nt", `"p\nt" is not a delegated ccTLD (invalid label: disallowed rune U+000A)`},
		{"\x1b[31mpt", `"\x1b[31mpt" is not a delegated ccTLD (invalid label: disallowed rune U+001B)`},
		{strings.Repeat("a", 64), `"` + strings.Repeat("a", 64) + `" is not a delegated ccTLD (longer than 63 characters)`},
		{strings.Repeat("a", 300), `"` + strings.Repeat("a", 63) + `…" is not a delegated ccTLD (too long)`},
	}
	for _, tt := range tests {
		got, err := LookupCCTLD(tt.in)
		if err == nil {
			t.Errorf("LookupCCTLD(%q) = %+v, want an error", tt.in, got)
			continue
		}
		if !errors.Is(err, ErrUnknownTLD) {
			t.Errorf("LookupCCTLD(%q): error %v does not wrap ErrUnknownTLD", tt.in, err)
		}
		if err.Error() != tt.msg {
			t.Errorf("LookupCCTLD(%q): error\n  %s\nwant\n  %s", tt.in, err, tt.msg)
		}
	}
}

func TestCCTLDs(t *testing.T) {
	all := CCTLDs()
	counts := map[string]int{}
	countries := map[string]bool{}
	for i, c := range all {
		counts[c.Kind]++
		if i > 0 && all[i-1].Code >= c.Code {
			t.Errorf("not sorted: %s before %s", all[i-1].Code, c.Code)
		}
		if c.Kind == "idn" {
			countries[c.Country] = true
			if !strings.HasPrefix(c.Code, "xn--") || c.Unicode == c.Code {
				t.Errorf("IDN %+v: bad labels", c)
			}
		} else if len(c.Code) != 2 || c.Unicode != c.Code {
			t.Errorf("ASCII %+v: bad labels", c)
		}
		if len(c.Country) != 2 || strings.ToUpper(c.Country) != c.Country || c.Name == "" {
			t.Errorf("%+v: bad country or name", c)
		}
		if got, err := LookupCCTLD(c.Code); err != nil || got != c {
			t.Errorf("LookupCCTLD(%q) = %+v, %v", c.Code, got, err)
		}
		if got, err := LookupCCTLD(c.Unicode); err != nil || got != c {
			t.Errorf("LookupCCTLD(%q) = %+v, %v", c.Unicode, got, err)
		}
		if _, err := NormalizeCountry(c.Country); err != nil {
			t.Errorf("NormalizeCountry(%q) of %s: %v", c.Country, c.Code, err)
		}
	}
	if got := counts["iso"] + counts["exception"]; got != 248 {
		t.Errorf("%d ASCII ccTLDs, want 248", got)
	}
	if counts["exception"] != 4 {
		t.Errorf("%d exceptions, want 4", counts["exception"])
	}
	if counts["idn"] != 70 {
		t.Errorf("%d IDN ccTLDs, want 70", counts["idn"])
	}
	if len(countries) != 43 {
		t.Errorf("IDN ccTLDs for %d countries, want 43", len(countries))
	}
	var dormant []string
	for _, c := range all {
		if c.Dormant {
			dormant = append(dormant, c.Code)
		}
	}
	if want := []string{"bv", "gb", "sj"}; !slices.Equal(dormant, want) {
		t.Errorf("dormant = %v, want %v", dormant, want)
	}

	// The result is a copy.
	all[0].Code = "changed"
	if CCTLDs()[0].Code == "changed" {
		t.Error("CCTLDs returns the shared slice")
	}
	if got, want := CCTLDSources(), "iso-codes 4.15.0-1, publicsuffix 20230209.2326-1"; got != want {
		t.Errorf("CCTLDSources() = %q, want %q", got, want)
	}
}

func TestCCTLDDisplay(t *testing.T) {
	for in, want := range map[string]string{
		"pt":   "pt",
		"рф":   "рф (xn--p1ai)",
		"中國":   "中國 (xn--fiqz9s)",
		"eu":   "eu",
		".UK.": "uk",
	} {
		c, err := LookupCCTLD(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Display(); got != want {
			t.Errorf("LookupCCTLD(%q).Display() = %q, want %q", in, got, want)
		}
	}
}

func TestCCTLDEmbeddedFiles(t *testing.T) {
	// The generated files end in a newline and have one header block.
	for name, data := range map[string]string{"cctld.tsv": cctldTSV, "iso3166.tsv": iso3166TSV} {
		if !strings.HasSuffix(data, "\n") || !strings.HasPrefix(data, "# Code generated ") {
			t.Errorf("%s: unexpected framing", name)
		}
	}
	if n := len(cctldTable().iso); n != 249 {
		t.Errorf("%d ISO 3166-1 codes, want 249", n)
	}
}
