package inbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/emersion/go-message"
	"github.com/emersion/go-message/charset" // also decodes non-UTF-8 headers and text
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// Forms of accepted messages (Accepted.Form).
const (
	FormPGPMIMEEncrypted = "pgpmime-encrypted"  // multipart/encrypted (also repaired Exchange mangling)
	FormPGPMIMESigned    = "pgpmime-signed"     // multipart/signed
	FormInlineClear      = "inline-clearsigned" // text/plain with a clear-signed block
	FormInlineEncrypted  = "inline-encrypted"   // text/plain with an encrypted PGP MESSAGE
	FormInlineSigned     = "inline-signed"      // text/plain with a PGP MESSAGE that is only signed
)

// Envelope is the SMTP envelope of a message.
type Envelope struct {
	From string   // MAIL FROM; "" (or "<>") for a bounce
	To   []string // RCPT TO
}

// Pipeline processes incoming messages. Set the exported fields, then
// share it: Process may be called concurrently. Do not copy a Pipeline
// after first use.
type Pipeline struct {
	Store  *directory.Store
	Secret *keys.Secret
	Config Config
	Now    func() time.Time // nil: time.Now
	// Retired are the directory's earlier keys (ccdir rekey): mail
	// encrypted to one is decrypted during its overlap, and refused
	// after, or at once when the rekey revoked it, saying why.
	Retired []RetiredKey

	mu       sync.Mutex
	retired  map[string]*openpgp.Entity // private copies of Retired's secret keys, by fingerprint
	idx      *keyIndex
	parsed   map[[32]byte]parsedIDs
	ledgerV  *keys.Verifier
	dir      openpgp.EntityList
	pruned   time.Time
	cryptoMu sync.Mutex
}

// Accepted is a message whose signature is good, fresh, unseen, made by an
// active contact's registered key, and bound to this directory.
type Accepted struct {
	Contact  directory.Contact // the signer: never taken from From
	Key      *keys.Public      // the contact's registered key, parsed for this message
	SignedAt time.Time
	// Text is the signed text (the text/plain of the signed content, or
	// the clear-signed text), UTF-8 with LF line endings: the commands.
	Text string
	// Shown are the other texts a reader of the message sees (shownTexts):
	// the other text parts and attachments of the signed content, the
	// HTML alternative, attached messages with their Subject; for an
	// inline signed text, those of the message around it.
	Shown []Shown
	// Block is the command block at the top of Text (ScanBlock), the one
	// the binding check read.
	Block Block
	// Binding says how the signed content names To: BindingDirectoryLine
	// or BindingProtectedHeader.
	Binding string
	// Attachments are the other leaves of the signed MIME entity (e.g. a
	// new key for KEY-ROTATE); transfer-decoded.
	Attachments []pgpmime.Part
	// AttachedKeys are the public keys among Attachments (AttachedKeys),
	// AttachedKeyErrors the attachments that looked like keys and are not.
	AttachedKeys      []*keys.Public
	AttachedKeyErrors []*KeyAttachmentError
	// Signatures are all the signatures of the signed content, in order,
	// each checked on its own against the registered keys and the
	// AttachedKeys: Contact and Key are those of the first that verifies
	// by a registered key; SignedBy says whether another key (a new key
	// attached to KEY-ROTATE) signed too.
	Signatures []Signature
	Encrypted  bool   // the message was encrypted to the directory key
	Form       string // one of the Form* constants
	// MessageID is the protected Message-ID if any, else the outer one,
	// without angle brackets, checked by MessageID; may be "".
	MessageID string
	// MessageIDSigned: MessageID came from the signed (protected)
	// headers; otherwise it is the outer one, which anyone on the way may
	// change, and nothing the directory signs may carry it.
	MessageIDSigned bool
	Subject         string // the protected Subject if any, else the outer one; sanitised
	// SubjectSigned: Subject came from the signed (protected) headers;
	// otherwise it is the outer Subject, which anyone on the way may change.
	SubjectSigned bool
	Raw           []byte // the message as received
	// Evidence is what a ledger entry made by this mail keeps of it: the
	// signed content and the signature, nothing anyone on the way could
	// add (see Evidence, VerifyEvidence).
	Evidence []byte
	Seen     string // replay id (hex SHA-256); see the package comment
	// SeenAlso are the replay ids of the other signatures that verified
	// (Signatures): a mail signed by two registered keys is one
	// statement, used once, whichever signature comes first (anyone can
	// reorder them). MarkSeen records them all.
	SeenAlso []string
	To       string // which of Config.Addresses it was sent to (envelope)
}

func (p *Pipeline) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Process reads one message (at most Config.MaxMessageBytes+1 bytes are
// read), runs every check, and returns the accepted message or a
// *Refusal. Any other error is internal or temporary (a database error,
// a read error): the sender should try again later.
//
// A refusal of a mail whose signature verified against a contact's
// registered key names that contact (Refusal.Signer), unless the
// signature is one the directory has used already or is older than it
// remembers: whether the signer is told is then the refusal's Kind's to
// say (Refusal.Tellable).
func (p *Pipeline) Process(ctx context.Context, env Envelope, r io.Reader) (*Accepted, error) {
	var refs []string
	acc, err := p.process(ctx, env, r, &refs)
	var ref *Refusal
	if errors.As(err, &ref) && ref.res != nil {
		if err := p.identify(ctx, ref); err != nil {
			return nil, err
		}
		if ref.Signer != nil {
			ref.Signer.References = refs
		}
	}
	return acc, err
}

// references returns the Message-IDs hdr's In-Reply-To and References
// name, at most MaxReferences; unreadable fields name none.
func references(hdr mail.Header) []string {
	var out []string
	for _, k := range []string{"In-Reply-To", "References"} {
		ids, _ := hdr.MsgIDList(k)
		for _, id := range ids {
			if len(out) == MaxReferences {
				return out
			}
			if id != "" && len(id) <= 250 {
				out = append(out, id)
			}
		}
	}
	return out
}

// identify names the Signer of a refusal whose signature verified, unless
// the signature is a replay: seen already, or dated before what the
// directory remembers.
func (p *Pipeline) identify(ctx context.Context, ref *Refusal) error {
	res := ref.res
	ref.res = nil
	seen := replayID(res.key.Fingerprint, res.sig, res.content)
	db := p.Store.DB()
	forgotten, err := ForgottenBefore(ctx, db)
	if err != nil {
		return err
	}
	if res.sig.CreationTime.Before(forgotten) {
		ref.silent = RefusedForgotten.Silent()
		return nil
	}
	used, err := IsSeen(ctx, db, seen)
	if err != nil {
		return err
	}
	if used {
		ref.silent = RefusedReplay.Silent()
		return nil
	}
	ref.Signer = &Signer{Contact: res.reg.contact, Key: res.key, SignedAt: res.sig.CreationTime,
		Seen: seen, To: ref.to, Subject: ref.subject}
	return nil
}

func (p *Pipeline) process(ctx context.Context, env Envelope, r io.Reader, refs *[]string) (*Accepted, error) {
	cfg := p.Config.withDefaults()
	if len(cfg.Addresses) == 0 {
		return nil, errors.New("inbound: no directory address configured")
	}
	if p.Store == nil || p.Secret == nil {
		return nil, errors.New("inbound: pipeline without store or directory key")
	}
	now := p.now()

	// 1. Size.
	raw, err := io.ReadAll(io.LimitReader(r, cfg.MaxMessageBytes+1))
	if err != nil {
		return nil, fmt.Errorf("inbound: read message: %w", err)
	}
	if int64(len(raw)) > cfg.MaxMessageBytes {
		return nil, refuse(RefusedSize, 552, enhSize, fmt.Sprintf("message too large (more than %d bytes)", cfg.MaxMessageBytes))
	}

	// Envelope recipient.
	to := cfg.Addresses[0]
	if len(env.To) > 0 {
		to = ""
		for _, rcpt := range env.To {
			if a := cfg.ours(rcpt); a != "" {
				to = a
				break
			}
		}
		if to == "" {
			return nil, refuse(RefusedRecipient, 550, enhRcpt, "no such recipient here")
		}
	}

	// 2. Header.
	ent, err := message.ReadWithOptions(bytes.NewReader(raw), &message.ReadOptions{MaxHeaderBytes: int64(cfg.MaxHeaderBytes)})
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return nil, refuse(RefusedHeader, 550, enhMedia, fmt.Sprintf("malformed or oversized message header (at most %d bytes)", cfg.MaxHeaderBytes)).with(err.Error())
	}
	hdr := mail.Header{Header: ent.Header}
	*refs = references(hdr)

	// 3. Loops.
	if ref := Loop(cfg.Addresses, env, hdr); ref != nil {
		return nil, ref
	}

	// 4. MIME structure.
	w := &walker{maxDepth: cfg.MaxDepth, maxParts: cfg.MaxParts}
	root, err := w.parseEntity(raw, 0)
	if err != nil {
		return nil, mimeRefusal(err, cfg)
	}

	idx, err := p.index(ctx)
	if err != nil {
		return nil, err
	}
	c := &check{p: p, cfg: cfg, now: now, idx: idx}

	// 5, 6. Form, decryption, signature.
	src, ref, err := c.examine(root, false)
	if err != nil {
		return nil, err
	}
	if ref != nil {
		ref.to = to
		return nil, ref
	}
	res := src.res

	// 7. The key must be usable now.
	if err := res.key.Check(now); err != nil {
		return nil, refuse(RefusedKeyUnusable, 550, enhPolicy, "the signing key is not usable now (expired, revoked or invalid); ask the directory operator to register a new key").with(err.Error()).by(res).at(to)
	}

	// 8. Freshness.
	at := res.sig.CreationTime
	if at.After(now.Add(cfg.Skew)) {
		return nil, c.future(res.sig).by(res).at(to)
	}
	if at.Before(now.Add(-cfg.Window)) {
		ref := refuse(RefusedStale, 550, enhPolicy, fmt.Sprintf("the signature is older than %s; sign and send the commands again", fmtDuration(cfg.Window))).
			with("signed at " + at.UTC().Format(time.RFC3339)).by(res).at(to)
		ref.Tell = fmt.Sprintf("the signature is dated %s, older than %s, the most the directory takes "+
			"(a mail that waited that long may no longer say what is meant now): sign the mail again and send it",
			at.UTC().Format("2006-01-02 15:04:05 UTC"), fmtDuration(cfg.Window))
		return nil, ref
	}

	acc := &Accepted{
		Contact:   res.reg.contact,
		Key:       res.key,
		SignedAt:  at,
		Encrypted: src.encrypted,
		Form:      src.form,
		MessageID: MessageID(hdr),
		Raw:       raw,
		To:        to,
	}
	outerSubject, _ := hdr.Subject()
	acc.Subject = sanitizeLine(outerSubject)

	// The signed content: text, attachments, protected headers.
	var protected []string
	if src.entity != nil {
		in, err := c.readSigned(src.entity)
		if err != nil {
			return nil, mimeRefusal(err, cfg).as(RefusedContent).by(res).at(to)
		}
		acc.Text, acc.Attachments, acc.Shown, protected = in.text, in.attachments, in.shown, in.to
		if in.subject != "" {
			acc.Subject = sanitizeLine(in.subject)
			acc.SubjectSigned = true
		}
		if in.messageID != "" {
			acc.MessageID, acc.MessageIDSigned = in.messageID, true
		}
	} else {
		acc.Text = src.text
		// Inline signed: the parts around the signed text are not signed
		// (nor relayed), but the author may have put a label there.
		if acc.Shown, err = shownTexts(root, firstText(root), cfg); err != nil {
			return nil, mimeRefusal(err, cfg).as(RefusedContent).by(res).at(to)
		}
	}
	acc.AttachedKeys, acc.AttachedKeyErrors = AttachedKeys(acc.Attachments)
	c.verifyAttached(src.sigs, res.content, acc.AttachedKeys)
	acc.Signatures = src.sigs
	acc.Evidence = evidence(src.form, res, src.sigs)

	// 9. Binding.
	acc.Block = ScanBlock(acc.Text)
	if acc.Binding = cfg.bound(acc.Block, protected, to); acc.Binding == "" {
		ref := refuse(RefusedUnbound, 550, enhPolicy, "the signed content does not name this directory: "+bindingHint(to)).by(res).at(to)
		if acc.SubjectSigned {
			ref.subject = acc.Subject
		}
		return nil, ref
	}

	// 10. Replay.
	acc.Seen = replayID(res.key.Fingerprint, res.sig, res.content)
	for i := range acc.Signatures {
		if s := &acc.Signatures[i]; s.Verified() && !bytes.Equal(s.raw.bin, res.sigBin) {
			acc.SeenAlso = append(acc.SeenAlso, replayID(s.Fingerprint, s.raw.sig, res.content))
		}
	}
	db := p.Store.DB()
	if err := p.prune(ctx, now, cfg); err != nil {
		return nil, err
	}
	forgotten, err := ForgottenBefore(ctx, db)
	if err != nil {
		return nil, err
	}
	if at.Before(forgotten) {
		return nil, refuse(RefusedForgotten, 550, enhPolicy, "the signature is older than the directory remembers signatures it has used; sign and send the commands again").
			with("signed at " + at.UTC().Format(time.RFC3339) + ", seen signatures forgotten before " + forgotten.UTC().Format(time.RFC3339))
	}
	for _, id := range append([]string{acc.Seen}, acc.SeenAlso...) {
		seen, err := IsSeen(ctx, db, id)
		if err != nil {
			return nil, err
		}
		if seen {
			return nil, refuse(RefusedReplay, 550, enhPolicy, "this signed message was already used; sign and send the commands again")
		}
	}
	return acc, nil
}

// prune prunes the seen signatures at most once an hour, keeping those
// within the window or SeenRetention, whichever is longer, plus the skew.
func (p *Pipeline) prune(ctx context.Context, now time.Time, cfg Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	db := p.Store.DB()
	if now.Sub(p.pruned) >= time.Hour || now.Before(p.pruned) {
		if _, err := Prune(ctx, db, now.Add(-max(cfg.Window, SeenRetention)-cfg.Skew)); err != nil {
			return err
		}
		p.pruned = now
	}
	return nil
}

func mimeRefusal(err error, cfg Config) *Refusal {
	switch {
	case errors.Is(err, errTooDeep):
		return refuse(RefusedMIME, 550, enhMedia, fmt.Sprintf("MIME structure nested deeper than %d levels", cfg.MaxDepth))
	case errors.Is(err, errTooMany):
		return refuse(RefusedMIME, 550, enhMedia, fmt.Sprintf("more than %d MIME parts", cfg.MaxParts))
	case errors.Is(err, errHeaderLarge):
		return refuse(RefusedMIME, 550, enhMedia, fmt.Sprintf("a MIME header has more than %d lines or %d bytes", maxPartHeaderLines, maxPartHeaderBytes))
	}
	return refuse(RefusedMIME, 550, enhMedia, "malformed MIME structure").with(err.Error())
}

// source is what examine found: the form and the verified signature, and
// either the signed MIME entity or the signed text.
type source struct {
	form      string
	encrypted bool
	entity    []byte
	text      string
	sigs      []Signature // every signature, each checked on its own
	res       *sigResult  // the signer's
}

func unsigned() *Refusal {
	return refuse(RefusedUnsigned, 550, enhPolicy, "the message is not signed with OpenPGP (use PGP/MIME or clear-signed text)")
}

// examine finds the signed content of the entity n. decrypted is true
// inside a decrypted entity (no second decryption there).
func (c *check) examine(n *node, decrypted bool) (*source, *Refusal, error) {
	if n.mt == "multipart/signed" {
		return c.pgpmimeSigned(n.raw)
	}
	if payload, ok := encryptedPayload(n); ok {
		if decrypted {
			return nil, refuse(RefusedMIME, 550, enhMedia, "an encrypted message inside an encrypted message is not supported"), nil
		}
		m, ref, err := c.readMessage(payload)
		if ref != nil || err != nil {
			return nil, ref, err
		}
		if m.signed {
			return &source{form: FormPGPMIMEEncrypted, encrypted: m.encrypted, entity: m.plain, sigs: m.sigs, res: m.res}, nil, nil
		}
		w := &walker{maxDepth: c.cfg.MaxDepth, maxParts: c.cfg.MaxParts}
		inner, err := w.parseEntity(m.plain, 0)
		if err != nil {
			return nil, mimeRefusal(err, c.cfg), nil
		}
		src, ref, err := c.examine(inner, true)
		if src != nil {
			src.form, src.encrypted = FormPGPMIMEEncrypted, src.encrypted || m.encrypted
		}
		return src, ref, err
	}
	if w := listWrapped(n); w != nil {
		return c.examine(w, decrypted)
	}
	t := firstText(n)
	if t == nil {
		return nil, unsigned(), nil
	}
	body, err := t.decoded()
	if err != nil {
		return nil, refuse(RefusedMIME, 550, enhMedia, "the text part cannot be decoded").with(err.Error()), nil
	}
	switch inlineKind(body) {
	case "clearsigned":
		return c.clearsigned(body, t.params["charset"], FormInlineClear)
	case "message":
		if decrypted {
			return nil, refuse(RefusedMIME, 550, enhMedia, "an encrypted message inside an encrypted message is not supported"), nil
		}
		blk := armorBlock(body, "PGP MESSAGE")
		if blk == nil {
			return nil, refuse(RefusedCrypto, 550, enhMedia, "the armored OpenPGP message has no END line"), nil
		}
		m, ref, err := c.readMessage(blk)
		if ref != nil || err != nil {
			return nil, ref, err
		}
		form := FormInlineEncrypted
		if !m.encrypted {
			form = FormInlineSigned
		}
		if m.signed {
			return &source{form: form, encrypted: m.encrypted, text: toUTF8(m.plain, "utf-8"), sigs: m.sigs, res: m.res}, nil, nil
		}
		if m.encrypted && inlineKind(m.plain) == "clearsigned" {
			src, ref, err := c.clearsigned(m.plain, "utf-8", FormInlineEncrypted)
			if src != nil {
				src.encrypted = true
			}
			return src, ref, err
		}
		return nil, refuse(RefusedUnsigned, 550, enhPolicy, "the message is encrypted but not signed; sign it as well"), nil
	}
	return nil, unsigned(), nil
}

// encryptedPayload returns the OpenPGP message of a multipart/encrypted
// entity, or of an Exchange-mangled one: multipart/mixed holding an
// application/pgp-encrypted part and a part with the armored message.
func encryptedPayload(n *node) ([]byte, bool) {
	switch n.mt {
	case "multipart/encrypted":
	case "multipart/mixed":
		marker := false
		for _, ch := range n.children {
			marker = marker || ch.mt == "application/pgp-encrypted"
		}
		if !marker {
			return nil, false
		}
	default:
		return nil, false
	}
	for _, ch := range n.children {
		if ch.body == nil || ch.mt == "application/pgp-encrypted" || strings.HasPrefix(ch.mt, "text/") {
			continue
		}
		b, err := ch.decoded()
		if err != nil {
			continue
		}
		if blk := armorBlock(b, "PGP MESSAGE"); blk != nil {
			return blk, true
		}
		if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0]&0x80 != 0 {
			return b, true // binary OpenPGP
		}
	}
	if n.mt == "multipart/encrypted" {
		return []byte{}, true // readMessage refuses it
	}
	return nil, false
}

// pgpmimeSigned checks a multipart/signed entity (RFC 3156 §5).
func (c *check) pgpmimeSigned(raw []byte) (*source, *Refusal, error) {
	signed, sigData, err := splitSigned(raw)
	if err != nil {
		return nil, refuse(RefusedMIME, 550, enhMedia, "malformed multipart/signed message").with(err.Error()), nil
	}
	raws, err := parseSigs(sigData)
	if err != nil {
		return nil, badSignature(err.Error()), nil
	}
	sigs, res, ref := c.verifySigs(signed, raws)
	if ref != nil {
		return nil, ref, nil
	}
	return &source{form: FormPGPMIMESigned, entity: signed, sigs: sigs, res: res}, nil, nil
}

// splitSigned returns the signed part (header and body, CRLF) and the
// signature part's decoded body of a multipart/signed entity.
func splitSigned(raw []byte) (signed, sig []byte, err error) {
	w := &walker{maxDepth: 1, maxParts: 2}
	br := bytes.NewReader(pgpmimeCRLF(raw))
	ent, err := message.Read(br)
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return nil, nil, err
	}
	_, params, _ := ent.Header.ContentType()
	mr := textproto.NewMultipartReader(ent.Body, params["boundary"])
	p1, err := mr.NextPart()
	if err != nil {
		return nil, nil, err
	}
	var sb bytes.Buffer
	if err := textproto.WriteHeader(&sb, p1.Header); err != nil {
		return nil, nil, err
	}
	if _, err := io.Copy(&sb, p1); err != nil {
		return nil, nil, err
	}
	p2, err := mr.NextPart()
	if err != nil {
		return nil, nil, err
	}
	n, err := w.parse(p2.Header, io.LimitReader(p2, 4*keys.MaxSignatureBytes), 1)
	if err != nil {
		return nil, nil, err
	}
	if n.mt != "application/pgp-signature" {
		return nil, nil, fmt.Errorf("second part is %s, not application/pgp-signature", n.mt)
	}
	sig, err = n.decoded()
	return sb.Bytes(), sig, err
}

// pgpmimeCRLF turns bare LF into CRLF, as RFC 3156 requires before
// checking a signature.
func pgpmimeCRLF(b []byte) []byte {
	if !bytes.Contains(b, []byte("\n")) {
		return b
	}
	var out bytes.Buffer
	out.Grow(len(b) + len(b)/32)
	for i, ch := range b {
		if ch == '\n' && (i == 0 || b[i-1] != '\r') {
			out.WriteByte('\r')
		}
		out.WriteByte(ch)
	}
	return out.Bytes()
}

// clearsigned checks the first clear-signed block of text. Only the
// signed text counts; text around the block is ignored.
func (c *check) clearsigned(text []byte, cs, form string) (*source, *Refusal, error) {
	blk := armorBlockClear(text)
	b, _ := clearsign.Decode(blk)
	if b == nil || b.ArmoredSignature == nil {
		return nil, refuse(RefusedMIME, 550, enhMedia, "malformed clear-signed text"), nil
	}
	sigBin, err := io.ReadAll(io.LimitReader(b.ArmoredSignature.Body, keys.MaxSignatureBytes+1))
	if err != nil {
		return nil, badSignature(err.Error()), nil
	}
	if b.ArmoredSignature.Type != openpgp.SignatureType {
		return nil, badSignature("armor type " + b.ArmoredSignature.Type), nil
	}
	raws, err := parseSigs(sigBin)
	if err != nil {
		return nil, badSignature(err.Error()), nil
	}
	sigs, res, ref := c.verifySigs(b.Bytes, raws)
	if ref != nil {
		return nil, ref, nil
	}
	plain, ref := clearText(b.Plaintext, cs)
	if ref != nil {
		return nil, ref.by(res), nil
	}
	return &source{form: form, text: plain, sigs: sigs, res: res}, nil, nil
}

// clearText returns the text of a clear-signed block: its signed bytes
// read as UTF-8. OpenPGP text is UTF-8 (RFC 9580 §7, the Cleartext
// Signature Framework, and §6.2.2.4: the Charset armor header is
// deprecated), and the charset that the MIME header (cs) or an armor
// header declares is outside the signature: anyone on the way can change
// it, and reading the signed bytes in another charset would make the
// signer say what they did not ("João" read as Latin-1 is "JoÃ£o").
// So the signed bytes decide: bytes that are not UTF-8 are refused (their
// meaning would depend on the unsigned label), and so is a declared
// charset that would read them as a text other than their UTF-8 one
// (ASCII text under an ASCII-compatible label such as iso-8859-1 reads
// the same and is taken).
func clearText(signed []byte, cs string) (string, *Refusal) {
	if !utf8.Valid(signed) {
		return "", refuse(RefusedContent, 550, enhMedia, "the clear-signed text is not UTF-8, as OpenPGP text must be; set your mail program to UTF-8, or use PGP/MIME, and sign again")
	}
	if name := strings.ToLower(strings.TrimSpace(cs)); name != "" && name != "utf-8" && name != "utf8" {
		r, err := charset.Reader(name, bytes.NewReader(signed))
		var read []byte
		if err == nil {
			read, err = io.ReadAll(r)
		}
		if err != nil && !isASCII(signed) || err == nil && !bytes.Equal(read, signed) {
			return "", refuse(RefusedContent, 550, enhMedia, "the message declares charset "+charsetName(cs)+", which reads the clear-signed text as another text than the UTF-8 that was signed (the charset was changed on the way, or the mail program mislabels it); send it again as UTF-8, or use PGP/MIME")
		}
	}
	return toUTF8(signed, "utf-8"), nil
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// charsetName is a declared charset fit for a refusal: at most 40 of its
// letters, digits and ".:_-", quoted.
func charsetName(cs string) string {
	s := strings.Map(func(r rune) rune {
		if r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(".:_-", r)) {
			return r
		}
		return -1
	}, cs)
	if len(s) > 40 {
		s = s[:40]
	}
	return strconv.Quote(s)
}

// armorBlockClear returns text from the clear-signed block's BEGIN line
// through the END line of its signature.
func armorBlockClear(text []byte) []byte {
	i := lineIndex(text, "-----BEGIN PGP SIGNED MESSAGE-----")
	if i < 0 {
		return nil
	}
	rest := text[i:]
	j := lineIndex(rest, "-----END PGP SIGNATURE-----")
	if j < 0 {
		return rest
	}
	end := j + len("-----END PGP SIGNATURE-----")
	if k := bytes.IndexByte(rest[end:], '\n'); k >= 0 {
		end += k + 1
	} else {
		end = len(rest)
	}
	return rest[:end]
}
