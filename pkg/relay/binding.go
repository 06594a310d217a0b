package relay

import (
	"bytes"
	"io"
	"mime"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// boundToList reports whether the signed content of a names the list:
// a DIRECTORY line with the list address, or the list address in the
// protected To or Cc of a PGP/MIME post. inbound accepts a post bound to
// any of the directory's addresses; without this check a member's command
// mail (bound to the command address) sent to the list by someone who
// caught it would be relayed to everyone.
func boundToList(a *inbound.Accepted, p *post, list string, dir *keys.Secret) bool {
	if containsFold(p.directory, list) {
		return true
	}
	if a.Form != inbound.FormPGPMIMESigned && a.Form != inbound.FormPGPMIMEEncrypted {
		return false
	}
	return containsFold(protectedTo(a.Raw, dir), list)
}

// maxProtectedScan caps what is read to find the protected headers.
const maxProtectedScan = 64 << 20

// protectedTo returns the To and Cc addresses of the signed entity of a
// PGP/MIME message (decrypting it with dir if it is encrypted), or nil.
func protectedTo(raw []byte, dir *keys.Secret) []string {
	entity := raw
	if mt := mediaType(raw); mt == "multipart/encrypted" {
		o, err := pgpmime.Open(bytes.NewReader(raw), dir, pgpmime.OpenOptions{MaxMessageBytes: maxProtectedScan})
		if err != nil {
			return nil
		}
		entity = o.Entity
	}
	if mediaType(entity) == "multipart/signed" {
		e, err := message.Read(bytes.NewReader(entity))
		if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
			return nil
		}
		mr := e.MultipartReader()
		if mr == nil {
			return nil
		}
		part, err := mr.NextPart()
		if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
			return nil
		}
		return addresses(part.Header)
	}
	e, err := message.Read(bytes.NewReader(entity))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return nil
	}
	io.Copy(io.Discard, e.Body)
	return addresses(e.Header)
}

func mediaType(entity []byte) string {
	e, err := message.Read(bytes.NewReader(entity))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return ""
	}
	mt, _, _ := mime.ParseMediaType(e.Header.Get("Content-Type"))
	return mt
}

func addresses(h message.Header) []string {
	mh := mail.Header{Header: h}
	var out []string
	for _, k := range []string{"To", "Cc"} {
		list, _ := mh.AddressList(k)
		for _, a := range list {
			out = append(out, a.Address)
		}
	}
	return out
}
