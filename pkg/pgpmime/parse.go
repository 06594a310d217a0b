package pgpmime

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
)

// Inner is a parsed inner entity.
type Inner struct {
	// Protected are the headers of the entity, decoded. ToGroup is set
	// when To is an empty group ("name:;").
	Protected Protected
	// ProtectedHeaders reports the protected-headers="v1" parameter.
	ProtectedHeaders bool
	// Parts are the leaves of a multipart entity (one level deep), or the
	// entity itself if it is not multipart. Bodies are transfer-decoded;
	// Params are the Content-Type parameters; Filename comes from
	// Content-Disposition (RFC 2231 and RFC 2047 decoded).
	Parts []Part
}

// ParseInner reads an inner entity, such as Verified.Signed. At most
// MaxParts parts and MaxEntityBytes bytes are read.
func ParseInner(entity []byte) (*Inner, error) {
	if len(entity) > MaxEntityBytes {
		return nil, fmt.Errorf("%w: entity of %d bytes, at most %d allowed", ErrTooLarge, len(entity), MaxEntityBytes)
	}
	e, err := message.Read(bytes.NewReader(entity))
	if err != nil && !message.IsUnknownCharset(err) {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	h := mail.Header{Header: e.Header}
	var in Inner
	if err := readProtected(&in.Protected, h); err != nil {
		return nil, err
	}
	_, params, _ := e.Header.ContentType()
	in.ProtectedHeaders = params["protected-headers"] == "v1"

	mr := e.MultipartReader()
	if mr == nil {
		p, err := readPart(e)
		if err != nil {
			return nil, err
		}
		in.Parts = []Part{p}
		return &in, nil
	}
	for {
		pe, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil && !message.IsUnknownCharset(err) {
			return nil, fmt.Errorf("%w: part %d: %v", ErrMalformed, len(in.Parts)+1, err)
		}
		if len(in.Parts) == MaxParts {
			return nil, fmt.Errorf("%w: more than %d parts", ErrTooLarge, MaxParts)
		}
		p, err := readPart(pe)
		if err != nil {
			return nil, fmt.Errorf("part %d: %w", len(in.Parts)+1, err)
		}
		in.Parts = append(in.Parts, p)
	}
	return &in, nil
}

func readPart(e *message.Entity) (Part, error) {
	t, params, err := e.Header.ContentType()
	if err != nil {
		return Part{}, fmt.Errorf("%w: Content-Type: %v", ErrMalformed, err)
	}
	p := Part{ContentType: t, Params: params}
	if _, dp, err := e.Header.ContentDisposition(); err == nil {
		p.Filename = dp["filename"]
	}
	p.Body, err = io.ReadAll(io.LimitReader(e.Body, MaxEntityBytes))
	if err != nil {
		return Part{}, fmt.Errorf("%w: body: %v", ErrMalformed, err)
	}
	return p, nil
}

func readProtected(p *Protected, h mail.Header) error {
	from, err := h.AddressList("From")
	if err != nil {
		return fmt.Errorf("%w: From: %v", ErrMalformed, err)
	}
	if len(from) > 0 {
		p.From = *from[0]
	}
	to, err := h.AddressList("To")
	if err != nil {
		return fmt.Errorf("%w: To: %v", ErrMalformed, err)
	}
	for _, a := range to {
		p.To = append(p.To, *a)
	}
	if raw := strings.TrimSpace(h.Get("To")); len(to) == 0 && strings.HasSuffix(raw, ":;") {
		p.ToGroup = decodePhrase(strings.TrimSuffix(raw, ":;"))
	}
	if p.Subject, err = h.Subject(); err != nil {
		return fmt.Errorf("%w: Subject: %v", ErrMalformed, err)
	}
	if p.Date, err = h.Date(); err != nil {
		return fmt.Errorf("%w: Date: %v", ErrMalformed, err)
	}
	if p.MessageID, err = h.MessageID(); err != nil {
		return fmt.Errorf("%w: Message-ID: %v", ErrMalformed, err)
	}
	return nil
}

// decodePhrase decodes a display name: RFC 2047 words or a quoted string.
func decodePhrase(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		var b strings.Builder
		for i := 1; i < len(s)-1; i++ {
			if s[i] == '\\' && i+1 < len(s)-1 {
				i++
			}
			b.WriteByte(s[i])
		}
		return b.String()
	}
	d := mime.WordDecoder{CharsetReader: message.CharsetReader}
	if out, err := d.DecodeHeader(s); err == nil {
		return out
	}
	return s
}
