package receive

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// KindSendKey is the outbox kind of the answers to key requests.
const KindSendKey = "sendkey"

// maxKeyRequestHeader caps the header of a key request; the body is read
// and discarded.
const maxKeyRequestHeader = 64 << 10

var errMalformed = &inbound.Refusal{Code: 550, Enhanced: [3]int{5, 6, 0}, Reason: "malformed message"}

// sendKey answers anyone who writes to the -sendkey address with the
// directory's public key, in a mail signed by it. Mail that must never be
// answered (inbound.Loop: bounces, auto-replies, bulk mail, our own, a
// loop) and mail from an invalid sender get nothing; answers are rate
// limited per sender and in all.
func (r *Receiver) sendKey(ctx context.Context, cfg Config, env Envelope, msg io.Reader) error {
	from := strconv.QuoteToGraphic(env.From)
	h, err := textproto.ReadHeader(bufio.NewReader(io.LimitReader(msg, maxKeyRequestHeader)))
	io.Copy(io.Discard, msg)
	if err != nil {
		r.logf("refused key request from %s: %s", from, errMalformed.Reason)
		return errMalformed
	}
	hdr := gomail.Header{Header: message.Header{Header: h}}
	if ref := inbound.Loop(cfg.Addresses(), inbound.Envelope{From: env.From}, hdr); ref != nil {
		r.logf("dropped key request from %s: %s", from, ref.Reason)
		return nil
	}
	to, err := mail.ParseAddress(env.From)
	if err != nil || outbox.CheckAddress(to.Address) != nil {
		r.logf("dropped key request from %s: not a valid sender address", from)
		return nil
	}
	rcpt := strings.ToLower(to.Address) // one rate limit per mailbox, however it is spelt

	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	hourAgo := now.Add(-time.Hour)
	n, err := outbox.CountSince(ctx, r.Store.DB(), KindSendKey, rcpt, hourAgo)
	if err != nil {
		return r.settle("key request", from, nil, err)
	}
	all, err := outbox.CountKindSince(ctx, r.Store.DB(), KindSendKey, hourAgo)
	if err != nil {
		return r.settle("key request", from, nil, err)
	}
	if n >= cfg.SendKeyPerSender || all >= cfg.SendKeyPerHour {
		r.logf("key request from %s not answered: rate limit", rcpt)
		return nil
	}
	data, err := r.keyMail(cfg, rcpt, inbound.MessageID(hdr), now)
	if err != nil {
		return r.settle("key request", from, nil, err)
	}
	ref := strconv.FormatInt(now.UnixNano(), 36)
	m := outbox.Message{Kind: KindSendKey, Ref: ref, From: cfg.Directory.Address, To: rcpt, Data: data}
	if _, err := r.Outbox.Enqueue(ctx, m); err != nil {
		return r.settle("key request", from, nil, err)
	}
	r.logf("sent the directory key to %s", rcpt)
	r.queued()
	return nil
}

// keyMail is a signed (not encrypted) mail to rcpt with the directory's
// public key attached: nothing in it is contact data. inReplyTo is the
// request's Message-ID as inbound.MessageID checked it, or "".
func (r *Receiver) keyMail(cfg Config, rcpt, inReplyTo string, now time.Time) ([]byte, error) {
	info := cfg.Directory
	text := fmt.Sprintf("This is the OpenPGP key of %s <%s>.\n\nFingerprint: %s\n\n"+
		"Check the fingerprint with the community's secretariat, or in a digest you\n"+
		"received earlier, before you trust it.\n", info.Name, info.Address, keys.GroupFingerprint(info.KeyFingerprint))
	dir := mail.Address{Name: info.Name, Address: info.Address}
	inner, err := pgpmime.BuildInner(pgpmime.Protected{
		From: dir, To: []mail.Address{{Address: rcpt}},
		Subject: "OpenPGP key of " + info.Name, Date: now,
	}, []pgpmime.Part{
		{ContentType: "text/plain", Body: []byte(text)},
		{ContentType: "application/pgp-keys", Filename: "directory-key.asc", Body: []byte(info.PublicKey)},
	})
	if err != nil {
		return nil, err
	}
	signed, err := pgpmime.Sign(inner, r.Secret)
	if err != nil {
		return nil, err
	}
	// The signed entity's own header (Content-Type: multipart/signed)
	// becomes the message header, with the outer fields added on top.
	br := bufio.NewReader(bytes.NewReader(signed.Bytes()))
	eh, err := textproto.ReadHeader(br)
	if err != nil {
		return nil, fmt.Errorf("receive: signed key mail: %w", err)
	}
	h := gomail.Header{Header: message.Header{Header: eh}}
	// Set puts a field on top: the last set comes first.
	h.Set("MIME-Version", "1.0")
	h.Set("Auto-Submitted", "auto-replied")
	if inReplyTo != "" {
		h.SetMsgIDList("In-Reply-To", []string{inReplyTo})
	}
	_, domain, _ := strings.Cut(info.Address, "@")
	h.SetMessageID(fmt.Sprintf("sendkey-%d@%s", now.UnixNano(), domain))
	h.SetDate(now)
	h.SetSubject("OpenPGP key of the directory")
	h.SetAddressList("To", []*gomail.Address{{Address: rcpt}})
	h.SetAddressList("From", []*gomail.Address{(*gomail.Address)(&dir)})
	var b bytes.Buffer
	if err := textproto.WriteHeader(&b, h.Header.Header); err != nil {
		return nil, fmt.Errorf("receive: key mail header: %w", err)
	}
	if _, err := br.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
