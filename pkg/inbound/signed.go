package inbound

import (
	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// signedContent is what a signed MIME entity says.
type signedContent struct {
	text        string
	attachments []pgpmime.Part
	to          []string // protected To and Cc addresses
	subject     string   // protected Subject
	messageID   string   // protected Message-ID, as MessageID checks it
	shown       []Shown  // the texts a reader sees besides text
}

// readSigned reads the signed MIME entity: its protected headers, the
// first text/plain leaf (the commands) and the other leaves, except the
// alternatives of the text (text/html).
func (c *check) readSigned(entity []byte) (*signedContent, error) {
	w := &walker{maxDepth: c.cfg.MaxDepth, maxParts: c.cfg.MaxParts}
	root, err := w.parseEntity(entity, 0)
	if err != nil {
		return nil, err
	}
	var out signedContent
	h := mail.Header{Header: message.Header{Header: root.h}}
	for _, k := range []string{"To", "Cc"} {
		list, _ := h.AddressList(k) // a malformed list binds nothing
		for _, a := range list {
			out.to = append(out.to, a.Address)
		}
	}
	out.subject, _ = h.Subject()
	out.messageID = MessageID(h)

	text := firstText(root)
	if text != nil {
		b, err := text.decoded()
		if err == nil {
			out.text = toUTF8(b, text.params["charset"])
		}
	}
	if out.shown, err = shownTexts(root, text, c.cfg); err != nil {
		return nil, err
	}
	var walk func(n *node, skipAlt bool)
	walk = func(n *node, skipAlt bool) {
		if n == text {
			return
		}
		if n.children != nil {
			alt := n.mt == "multipart/alternative" && containsNode(n, text)
			for _, ch := range n.children {
				walk(ch, alt)
			}
			return
		}
		if skipAlt || n.body == nil {
			return
		}
		b, err := n.decoded()
		if err != nil {
			return
		}
		out.attachments = append(out.attachments, pgpmime.Part{
			ContentType: n.mt,
			Params:      n.params,
			Filename:    n.filename(),
			Body:        b,
		})
	}
	walk(root, false)
	return &out, nil
}

func containsNode(n, x *node) bool {
	if x == nil {
		return false
	}
	if n == x {
		return true
	}
	for _, ch := range n.children {
		if containsNode(ch, x) {
			return true
		}
	}
	return false
}
