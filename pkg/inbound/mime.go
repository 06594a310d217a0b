package inbound

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
)

// node is one MIME entity. Leaves keep their raw body (not
// transfer-decoded), multipart/signed entities their raw bytes (header and
// body, as the signature covers them); other multiparts keep their
// children only.
type node struct {
	h        textproto.Header
	mt       string
	params   map[string]string
	body     []byte // leaf: raw body
	raw      []byte // multipart/signed: header + body
	children []*node
}

var (
	errTooDeep     = errors.New("MIME nesting too deep")
	errTooMany     = errors.New("too many MIME parts")
	errMalfMIME    = errors.New("malformed MIME structure")
	errHeaderLarge = errors.New("a MIME header is too large")
)

// Caps on the header of every MIME entity, checked on the raw bytes
// before go-message parses them: it reads part headers without a limit,
// and every field costs it some hundred bytes of memory (a 10 MB message
// of short header lines took 800 MB).
const (
	maxPartHeaderBytes = 256 << 10
	maxPartHeaderLines = 2000
)

// headersTooLarge reports whether a header block of b — the one at the
// start, or one after a line beginning with "--" (a boundary), up to the
// next empty line — is larger than the caps. It over-approximates (any
// "--" line starts a block), which is safe: it can only refuse.
func headersTooLarge(b []byte) bool {
	inHeader, lines, size := true, 0, 0
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i+1], b[i+1:]
		} else {
			b = nil
		}
		content := bytes.TrimRight(line, "\r\n")
		switch {
		case inHeader && len(content) == 0:
			inHeader = false
		case inHeader:
			lines++
			size += len(line)
			if lines > maxPartHeaderLines || size > maxPartHeaderBytes {
				return true
			}
		case bytes.HasPrefix(content, []byte("--")):
			inHeader, lines, size = true, 0, 0
		}
	}
	return false
}

// walker parses a MIME tree with caps on depth and part count.
type walker struct {
	maxDepth, maxParts, parts int
}

func mediaType(h textproto.Header) (string, map[string]string) {
	v := h.Get("Content-Type")
	if strings.TrimSpace(v) == "" {
		return "text/plain", map[string]string{}
	}
	mt, params, err := mime.ParseMediaType(v)
	if mt == "" || (err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter)) {
		return "application/octet-stream", map[string]string{}
	}
	if params == nil {
		params = map[string]string{}
	}
	return strings.ToLower(mt), params
}

// parse reads the entity whose header is h and whose body is read from
// body, at depth (0 for the message itself).
func (w *walker) parse(h textproto.Header, body io.Reader, depth int) (*node, error) {
	if depth > w.maxDepth {
		return nil, errTooDeep
	}
	n := &node{h: h}
	n.mt, n.params = mediaType(h)
	switch {
	case n.mt == "multipart/signed":
		b, err := io.ReadAll(body)
		if err != nil {
			return nil, errMalfMIME
		}
		var raw bytes.Buffer
		if err := textproto.WriteHeader(&raw, h); err != nil {
			return nil, errMalfMIME
		}
		raw.Write(b)
		n.raw = raw.Bytes()
		return n, nil
	case strings.HasPrefix(n.mt, "multipart/") && n.params["boundary"] != "":
		mr := textproto.NewMultipartReader(body, n.params["boundary"])
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				if len(n.children) > 0 {
					break // a missing final boundary: keep what was read
				}
				return nil, errMalfMIME
			}
			w.parts++
			if w.parts > w.maxParts {
				return nil, errTooMany
			}
			c, err := w.parse(p.Header, p, depth+1)
			if err != nil {
				return nil, err
			}
			n.children = append(n.children, c)
		}
		return n, nil
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, errMalfMIME
	}
	n.body = b
	return n, nil
}

// parseEntity parses a whole entity (header and body).
func (w *walker) parseEntity(b []byte, depth int) (*node, error) {
	if headersTooLarge(b) {
		return nil, errHeaderLarge
	}
	br := bufio.NewReader(bytes.NewReader(b))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return nil, errMalfMIME
	}
	return w.parse(h, br, depth)
}

// decoded returns the leaf's body, transfer-decoded (charset untouched).
func (n *node) decoded() ([]byte, error) {
	var h message.Header
	if cte := n.h.Get("Content-Transfer-Encoding"); cte != "" {
		h.Set("Content-Transfer-Encoding", cte)
	}
	e, err := message.New(h, bytes.NewReader(n.body))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(e.Body)
}

// attachment reports a Content-Disposition of attachment.
func (n *node) attachment() bool {
	d, _, err := mime.ParseMediaType(n.h.Get("Content-Disposition"))
	return err == nil && strings.EqualFold(d, "attachment")
}

func (n *node) filename() string {
	if _, p, err := mime.ParseMediaType(n.h.Get("Content-Disposition")); err == nil && p["filename"] != "" {
		return p["filename"]
	}
	return n.params["name"]
}

// firstText returns the first text/plain leaf that is not an attachment,
// looking into multipart/mixed and multipart/alternative (and other
// multiparts), depth first.
func firstText(n *node) *node {
	if n.mt == "text/plain" && n.children == nil && n.raw == nil && !n.attachment() {
		return n
	}
	for _, c := range n.children {
		if t := firstText(c); t != nil {
			return t
		}
	}
	return nil
}

// toUTF8 converts text in the given charset to UTF-8 with LF line endings.
// Unknown charsets and invalid bytes are replaced, never fatal.
func toUTF8(b []byte, cs string) string {
	cs = strings.ToLower(strings.TrimSpace(cs))
	if cs != "" && cs != "utf-8" && cs != "utf8" && cs != "us-ascii" && cs != "ascii" {
		if r, err := charset.Reader(cs, bytes.NewReader(b)); err == nil {
			if out, err := io.ReadAll(r); err == nil {
				b = out
			}
		}
	}
	s := string(b)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return s
}

// armorBlock returns the first armor block of the given type that starts
// at the beginning of a line, up to and including its END line.
func armorBlock(b []byte, typ string) []byte {
	begin := []byte("-----BEGIN " + typ + "-----")
	end := []byte("-----END " + typ + "-----")
	off := 0
	for {
		i := bytes.Index(b[off:], begin)
		if i < 0 {
			return nil
		}
		i += off
		if i == 0 || b[i-1] == '\n' {
			j := bytes.Index(b[i:], end)
			if j < 0 {
				return nil
			}
			stop := i + j + len(end)
			if k := bytes.IndexByte(b[stop:], '\n'); k >= 0 {
				stop += k + 1
			} else {
				stop = len(b)
			}
			return b[i:stop]
		}
		off = i + len(begin)
	}
}

// inlineKind tells which inline OpenPGP block comes first in text:
// "clearsigned", "message" or "".
func inlineKind(text []byte) string {
	cs := lineIndex(text, "-----BEGIN PGP SIGNED MESSAGE-----")
	msg := lineIndex(text, "-----BEGIN PGP MESSAGE-----")
	switch {
	case cs >= 0 && (msg < 0 || cs < msg):
		return "clearsigned"
	case msg >= 0:
		return "message"
	}
	return ""
}

// lineIndex returns the offset of marker at the start of a line, or -1.
func lineIndex(b []byte, marker string) int {
	m := []byte(marker)
	off := 0
	for {
		i := bytes.Index(b[off:], m)
		if i < 0 {
			return -1
		}
		i += off
		if i == 0 || b[i-1] == '\n' {
			return i
		}
		off = i + len(m)
	}
}
