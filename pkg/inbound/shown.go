package inbound

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Shown is a text a reader of the message sees besides Accepted.Text: a
// labelled place of the signed content, or of the message around an
// inline signed text. The relay reads them for labels the author may have
// meant (a post is never relayed under a weaker label than one it shows);
// nothing in them is a command.
type Shown struct {
	// Where names the place for the author: "text part 2",
	// `attachment 3 ("report.txt")`, "the HTML of part 2", "the attached
	// message (part 2)", "the Subject of the attached message (part 2)".
	Where string
	Text  string // UTF-8, LF line endings
	// Field: Text is one header field (a Subject, a file name), not a
	// text read line by line.
	Field bool
}

// shownTexts returns what a reader sees in the tree root besides its leaf
// text (Accepted.Text's part, or nil): every other text leaf, text or
// attachment (text/html with its tags removed, without scripts and
// styles), each attached message (message/rfc822, message/global) with
// its Subject and its own texts, and the file names of the leaves.
// Attached messages are parsed within cfg's depth and part limits, counted
// over all of them; a limit passed is an error (errTooDeep, errTooMany),
// as for the message itself. Leaves that are not text are not read.
func shownTexts(root, text *node, cfg Config) ([]Shown, error) {
	s := &shower{w: &walker{maxDepth: cfg.MaxDepth, maxParts: cfg.MaxParts}}
	if err := s.walk(root, text, "", 0); err != nil {
		return nil, err
	}
	return s.out, nil
}

type shower struct {
	w   *walker
	out []Shown
}

func (s *shower) add(where, text string) {
	if strings.TrimSpace(text) != "" {
		s.out = append(s.out, Shown{Where: where, Text: text})
	}
}

func (s *shower) field(where, text string) {
	if strings.TrimSpace(text) != "" {
		s.out = append(s.out, Shown{Where: where, Text: text, Field: true})
	}
}

// walk adds the texts of n's leaves other than skip. in names the
// attached message they are in ("" at the top); depth is n's nesting
// below the top entity, attached messages included.
func (s *shower) walk(root, skip *node, in string, depth int) error {
	part := 0
	var leaf func(n *node, depth int) error
	leaf = func(n *node, depth int) error {
		if n.children != nil || n.raw != nil {
			for _, ch := range n.children {
				if err := leaf(ch, depth+1); err != nil {
					return err
				}
			}
			if n.raw != nil { // a multipart/signed inside: its signed part is shown
				if signed, _, err := splitSigned(n.raw); err == nil {
					return s.entity(signed, in, depth+1)
				}
			}
			return nil
		}
		part++
		if n == skip {
			return nil
		}
		where := fmt.Sprintf("part %d", part)
		name := sanitizeLine(n.filename())
		if name != "" {
			s.field("the file name of "+where+of(in), name)
		}
		if n.body == nil {
			return nil
		}
		kind := "text " + where
		if n.attachment() || name != "" {
			kind = "attachment " + strconv.Itoa(part)
			if name != "" {
				kind += " (" + strconv.Quote(name) + ")"
			}
		}
		switch {
		case n.mt == "message/rfc822" || n.mt == "message/global":
			b, err := n.decoded()
			if err != nil {
				b = n.body
			}
			label := "the attached message (" + where + ")"
			if in != "" {
				label = "a message attached to " + in
			}
			return s.message(b, label, depth+1)
		case n.mt == "text/html":
			b, err := n.decoded()
			if err != nil {
				b = n.body
			}
			s.add("the HTML of "+where+of(in), htmlText(toUTF8(b, n.params["charset"])))
		case strings.HasPrefix(n.mt, "text/"):
			b, err := n.decoded()
			if err != nil {
				b = n.body
			}
			s.add(kind+of(in), toUTF8(b, n.params["charset"]))
		}
		return nil
	}
	return leaf(root, depth)
}

func of(in string) string {
	if in == "" {
		return ""
	}
	return " of " + in
}

// message adds an attached message: its Subject and all its texts. One
// that cannot be parsed is shown as the text it is.
func (s *shower) message(b []byte, label string, depth int) error {
	n, err := s.w.parseEntity(b, depth)
	if errors.Is(err, errMalfMIME) || errors.Is(err, errHeaderLarge) {
		s.add(label, toUTF8(b, "utf-8"))
		return nil
	}
	if err != nil {
		return err
	}
	h := mail.Header{Header: message.Header{Header: n.h}}
	subject, _ := h.Subject()
	s.field("the Subject of "+label, subject)
	return s.walk(n, nil, label, depth)
}

// entity adds the texts of a whole entity (header and body).
func (s *shower) entity(b []byte, in string, depth int) error {
	n, err := s.w.parseEntity(b, depth)
	if err != nil {
		return err
	}
	return s.walk(n, nil, in, depth)
}

// htmlText is what a reader may see of an HTML text: all its text
// (entities decoded, comments and tags removed; scripts and styles are
// kept, as a label there can only make the answer stricter), a line break
// at each block element. It reads with the HTML tokenizer; its input is a
// part already bounded by the message size.
func htmlText(src string) string {
	z := html.NewTokenizer(strings.NewReader(src))
	var b strings.Builder
	for {
		switch z.Next() {
		case html.ErrorToken:
			return b.String()
		case html.TextToken:
			b.Write(z.Text())
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			tn, _ := z.TagName()
			switch atom.Lookup(tn) {
			case atom.Br, atom.P, atom.Div, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6,
				atom.Li, atom.Tr, atom.Table, atom.Blockquote, atom.Pre, atom.Hr, atom.Section, atom.Article,
				atom.Header, atom.Footer, atom.Ul, atom.Ol, atom.Dl, atom.Dt, atom.Dd, atom.Td, atom.Th, atom.Title:
				if s := b.String(); s != "" && !strings.HasSuffix(s, "\n") {
					b.WriteByte('\n')
				}
			}
		}
	}
}
