package inbound

import (
	"testing"

	"github.com/emersion/go-message/textproto"
)

// listWrapped takes only a PGP/MIME entity first in a multipart/mixed
// whose other parts are footers.
func TestListWrapped(t *testing.T) {
	signed := &node{mt: "multipart/signed", raw: []byte("x")}
	encrypted := &node{mt: "multipart/encrypted", params: map[string]string{"protocol": "application/pgp-encrypted"}, children: []*node{{mt: "application/pgp-encrypted", body: []byte("Version: 1")}}}
	plain := func() *node { return &node{mt: "text/plain", body: []byte("footer")} }
	html := &node{mt: "text/html", body: []byte("<p>footer</p>")}
	attached := &node{mt: "text/plain", body: []byte("x"), h: headerOf("Content-Disposition", "attachment; filename=x.txt")}
	pdf := &node{mt: "application/pdf", body: []byte("%PDF")}
	mixed := func(c ...*node) *node { return &node{mt: "multipart/mixed", children: c} }
	alt := &node{mt: "multipart/alternative", children: []*node{plain(), html}}
	for _, tc := range []struct {
		name string
		n    *node
		want *node
	}{
		{"mailman footer", mixed(signed, plain()), signed},
		{"encrypted, disclaimer", mixed(encrypted, alt), encrypted},
		{"two footers", mixed(signed, plain(), html), signed},
		{"signed not first", mixed(plain(), signed), nil},
		{"two signed", mixed(signed, signed), nil},
		{"an attachment beside", mixed(signed, attached), nil},
		{"a pdf beside", mixed(signed, pdf), nil},
		{"alone", mixed(signed), nil},
		{"not mixed", &node{mt: "multipart/alternative", children: []*node{signed, plain()}}, nil},
		{"encrypted of another protocol", mixed(&node{mt: "multipart/encrypted", params: map[string]string{"protocol": "application/pkcs7-mime"}}, plain()), nil},
		{"nested alternative", mixed(signed, &node{mt: "multipart/alternative", children: []*node{alt}}), nil},
	} {
		if got := listWrapped(tc.n); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func headerOf(k, v string) textproto.Header {
	var h textproto.Header
	h.Set(k, v)
	return h
}
