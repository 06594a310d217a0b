package directory

import "testing"

func TestInfoOwnAddress(t *testing.T) {
	i := Info{Address: "ccdir@tldops.example", ListAddress: "alerts@tldops.example"}
	for in, want := range map[string]string{
		"ccdir@tldops.example":              "ccdir@tldops.example",
		"CCDIR@TLDOPS.EXAMPLE":              "ccdir@tldops.example",
		"ccdir+x@tldops.example":            "ccdir@tldops.example",
		"ccdir-sendkey@tldops.example":      "ccdir-sendkey@tldops.example",
		"alerts@tldops.example":             "alerts@tldops.example",
		"ccdir-bounces@tldops.example":      "ccdir-bounces@tldops.example",
		"ccdir-bounces+1-ab@tldops.example": "ccdir-bounces@tldops.example",
		"alerts+ops@tldops.example":         "alerts@tldops.example",
		"ccdir@other.example":               "",
		"ccdirx@tldops.example":             "",
		"ops@tldops.example":                "",
		"":                                  "",
	} {
		if got := i.OwnAddress(in); got != want {
			t.Errorf("OwnAddress(%q) = %q, want %q", in, got, want)
		}
	}
	if got := (Info{Address: "ccdir@tldops.example"}).Addresses(); len(got) != 3 {
		t.Errorf("Addresses without a list = %v", got)
	}
}
