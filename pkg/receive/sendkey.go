package receive

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/net/publicsuffix"

	"github.com/ccdir/ccdir/directory"
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
// limited (keyLimit): once a day per address, per domain and in all.
func (r *Receiver) sendKey(ctx context.Context, cfg Config, env Envelope, msg io.Reader, e *Entry) error {
	from := strconv.QuoteToGraphic(env.From)
	h, err := textproto.ReadHeader(bufio.NewReader(io.LimitReader(msg, maxKeyRequestHeader)))
	io.Copy(io.Discard, msg)
	if err != nil {
		r.logf("refused key request from %s: %s", from, errMalformed.Reason)
		return errMalformed
	}
	hdr := gomail.Header{Header: message.Header{Header: h}}
	loop := ""
	if ref := inbound.Loop(cfg.Addresses(), inbound.Envelope{From: env.From}, hdr); ref != nil {
		loop = ref.Reason
	} else if cfg.Route(env.From) != NotOurs {
		loop = "mail from the directory's own address: not answered" // the bounce address with a tag
	}
	if loop != "" {
		r.logf("dropped key request from %s: %s", from, loop)
		e.ignore(ReasonLoop, loop)
		return nil
	}
	// The sender as the directory spells addresses (directory.NormalizeEmail:
	// lower case, the domain as A-labels), before the limits and the
	// contact lookup: one rate limit per mailbox, however it is spelt, and
	// an answer the outgoing header can carry. An address it refuses is
	// not answered; it is not a failure for the MTA to retry.
	to, err := mail.ParseAddress(env.From)
	var rcpt string
	if err == nil {
		rcpt, err = directory.NormalizeEmail(to.Address)
	}
	if err != nil || outbox.CheckAddress(rcpt) != nil {
		r.logf("dropped key request from %s: not a valid sender address", from)
		e.ignore(ReasonSender, "not a valid sender address")
		return nil
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	why, err := r.keyLimit(ctx, cfg, rcpt, now)
	if err != nil {
		return r.settle(ctx, "key request", from, nil, err)
	}
	if why != "" {
		r.logf("key request from %s not answered: rate limit (%s)", rcpt, why)
		e.ignore(ReasonKeyLimit, "rate limit")
		return nil
	}
	data, err := r.keyMail(cfg, rcpt, inbound.MessageID(hdr), now)
	if err != nil {
		return r.settle(ctx, "key request", from, nil, err)
	}
	ref := strconv.FormatInt(now.UnixNano(), 36)
	m := outbox.Message{Kind: KindSendKey, Ref: ref, From: cfg.Directory.Address, To: rcpt, Data: data}
	if _, err := r.Outbox.Enqueue(ctx, m); err != nil {
		return r.settle(ctx, "key request", from, nil, err)
	}
	r.logf("sent the directory key to %s", rcpt)
	r.queued()
	return nil
}

// keyLimit says which limit an answer to rcpt would break, or "". The
// requests are not authenticated (anyone can forge the sender), so the
// answers are what is limited, in tiers that keep the community's own
// people answered when strangers flood the address:
//
//   - one answer to an address a day (KeyAnswerWindow), to anyone;
//   - a registered contact's address has no other limit;
//   - at most SendKeyPerDomain answers an hour to one domain (its
//     registrable domain: subdomains count with it), so that forged
//     senders at one domain do not turn the address against it;
//   - an address at a contact's domain has no other limit;
//   - at most SendKeyPerHour answers an hour in all.
func (r *Receiver) keyLimit(ctx context.Context, cfg Config, rcpt string, now time.Time) (string, error) {
	db := r.Store.DB()
	n, err := outbox.CountSince(ctx, db, KindSendKey, rcpt, now.Add(-KeyAnswerWindow))
	if err != nil || n > 0 {
		return "one answer to an address a day", err
	}
	if _, err := r.Store.Contact(ctx, rcpt); err == nil {
		return "", nil
	} else if !errors.Is(err, directory.ErrNotFound) {
		return "", err
	}
	recent, err := outbox.RecipientsSince(ctx, db, KindSendKey, now.Add(-time.Hour))
	if err != nil {
		return "", err
	}
	site := siteOf(rcpt)
	same := 0
	for _, a := range recent {
		if siteOf(a) == site {
			same++
		}
	}
	if same >= cfg.SendKeyPerDomain {
		return fmt.Sprintf("%d answers an hour to %s", cfg.SendKeyPerDomain, site), nil
	}
	if len(recent) < cfg.SendKeyPerHour {
		return "", nil
	}
	contacts, err := r.Store.Contacts(ctx, "")
	if err != nil {
		return "", err
	}
	for _, c := range contacts {
		if siteOf(c.Email) == site {
			return "", nil
		}
	}
	return fmt.Sprintf("%d answers an hour in all", cfg.SendKeyPerHour), nil
}

// siteOf is the registrable domain of addr's domain (dns.pt for
// ana@mx.dns.pt, by the Public Suffix List), or the domain itself when it
// has none.
func siteOf(addr string) string {
	domain := strings.ToLower(addr[strings.LastIndexByte(addr, '@')+1:])
	if site, err := publicsuffix.EffectiveTLDPlusOne(domain); err == nil {
		return site
	}
	return domain
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
