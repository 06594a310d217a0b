package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/mail"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/mailcmd"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/pgpmime"
	"github.com/ccdir/ccdir/pkg/relay"
	"github.com/ccdir/ccdir/pkg/smtpd"
)

// exitTempFail is sysexits' EX_TEMPFAIL: an MTA pipe retries later.
const exitTempFail = 75

// tempFailError makes process exit 75.
type tempFailError struct{ err error }

func (e *tempFailError) Error() string { return e.err.Error() }
func (e *tempFailError) Unwrap() error { return e.err }

// Kinds of outbox messages made here.
const kindSendKey = "sendkey"

// Rate limits of the -sendkey address.
const (
	sendKeyPerSender = 1  // per envelope sender and hour
	sendKeyPerHour   = 60 // in all, per hour
)

// receiver takes incoming mail: the inbound pipeline, then the command
// handler; and the -sendkey address.
type receiver struct {
	g        *globals
	store    *directory.Store
	secret   *keys.Secret
	pipeline *inbound.Pipeline
	handler  *mailcmd.Handler
	relay    *relay.Relay
	outbox   *outbox.Outbox
	info     directory.Info
	sendKey  string // the -sendkey address
	log      *log.Logger

	mu   sync.Mutex    // one mail at a time: one writer, one signing key
	kick chan struct{} // something was queued
}

func (g *globals) receiver(ctx context.Context) (*receiver, func(), error) {
	s, sec, err := g.openWriteKey(ctx)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*receiver, func(), error) { s.Close(); return nil, nil, err }
	info, err := s.Info(ctx)
	if err != nil {
		return fail(err)
	}
	ob, err := outbox.Open(ctx, s.DB())
	if err != nil {
		return fail(err)
	}
	ob.Now = g.now
	if err := inbound.InitSchema(ctx, s.DB()); err != nil {
		return fail(err)
	}
	dcfg := g.digestConfig()
	addrs := []string{info.Address}
	if info.ListAddress != "" {
		addrs = append(addrs, info.ListAddress)
	}
	local, domain, _ := strings.Cut(info.Address, "@")
	rc := &receiver{
		g: g, store: s, secret: sec, outbox: ob, info: info,
		sendKey: local + "-sendkey@" + domain,
		log:     log.New(g.stderr, "ccdir: ", 0),
		kick:    make(chan struct{}, 1),
	}
	rc.pipeline = &inbound.Pipeline{Store: s, Secret: sec, Now: g.now, Config: inbound.Config{
		Addresses: addrs, Window: g.duration("commands.window"), Skew: g.duration("commands.skew"),
		MaxMessageBytes: int64(g.number("serve.max_message_bytes")),
	}}
	rc.handler = &mailcmd.Handler{Store: s, Secret: sec, Outbox: ob, Now: g.now, Config: mailcmd.Config{
		Address: info.Address, RepliesPerHour: g.number("commands.replies_per_hour"), Digest: dcfg,
	}}
	rc.relay = &relay.Relay{Store: s, Secret: sec, Outbox: ob, Now: g.now, Config: relay.Config{
		ListAddress:    info.ListAddress,
		Tag:            g.text("list.tag"),
		DefaultTLP:     g.text("list.default_tlp"),
		NoCopyToSender: !g.boolean("list.copy_to_sender"),
		KeepMessageID:  g.boolean("list.keep_message_id"),
		Archive:        g.boolean("list.archive"),
	}}
	return rc, func() { s.Close() }, nil
}

// receive handles one message for its envelope. It returns nil when the
// message was taken (handled, or dropped as a loop), an *smtpd.Reject
// when it is refused, and any other error for a temporary failure.
func (rc *receiver) receive(ctx context.Context, env smtpd.Envelope, r io.Reader) error {
	from := strconv.QuoteToGraphic(env.From)
	if len(env.To) == 1 && strings.EqualFold(env.To[0], rc.sendKey) {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return rc.sendPublicKey(ctx, env, r)
	}
	// Checking a message runs in parallel; what changes the directory or
	// signs with its key runs one message at a time.
	acc, err := rc.pipeline.Process(ctx, inbound.Envelope{From: env.From, To: env.To}, r)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var ref *inbound.Refusal
	switch {
	case errors.As(err, &ref) && ref.Drop:
		rc.log.Printf("dropped mail from %s: %s", from, ref.Reason)
		return nil
	case errors.As(err, &ref) && ref.Temporary:
		rc.log.Printf("deferred mail from %s: %s", from, ref.Reason)
		return err
	case errors.As(err, &ref):
		detail := ""
		if ref.Detail != "" {
			detail = " (" + strconv.QuoteToGraphic(ref.Detail) + ")"
		}
		rc.log.Printf("refused mail from %s: %s%s", from, ref.Reason, detail)
		return &smtpd.Reject{Code: ref.Code, Enhanced: ref.Enhanced, Message: ref.Reason}
	case err != nil:
		rc.log.Printf("mail from %s: %v", from, err)
		return err
	}
	if rc.info.ListAddress != "" && strings.EqualFold(acc.To, rc.info.ListAddress) {
		return rc.post(ctx, from, acc)
	}
	res, err := rc.handler.Handle(ctx, acc)
	switch {
	case errors.Is(err, inbound.ErrReplay):
		rc.log.Printf("refused mail from %s signed by %s: replay", from, acc.Key.Fingerprint)
		return &smtpd.Reject{Code: 550, Enhanced: [3]int{5, 7, 1}, Message: "this signed message was already used"}
	case errors.Is(err, mailcmd.ErrUnknownSender):
		rc.log.Printf("refused mail from %s: signer %s is no longer registered", from, acc.Key.Fingerprint)
		return &smtpd.Reject{Code: 550, Enhanced: [3]int{5, 7, 1}, Message: inbound.SignatureRefused}
	case err != nil:
		rc.log.Printf("mail from %s signed by %s: %v", from, acc.Key.Fingerprint, err)
		return err
	}
	rc.log.Printf("command mail from %s (key %s): %s", acc.Contact.Email, acc.Key.Fingerprint, res.Summary())
	rc.poke()
	return nil
}

// post relays a member's post to the encrypted list.
func (rc *receiver) post(ctx context.Context, from string, acc *inbound.Accepted) error {
	res, err := rc.relay.Handle(ctx, acc)
	switch {
	case errors.Is(err, inbound.ErrReplay):
		rc.log.Printf("refused list post from %s signed by %s: replay", from, acc.Key.Fingerprint)
		return &smtpd.Reject{Code: 550, Enhanced: [3]int{5, 7, 1}, Message: "this signed message was already used"}
	case errors.Is(err, relay.ErrUnknownSender):
		rc.log.Printf("refused list post from %s: signer %s is no longer registered", from, acc.Key.Fingerprint)
		return &smtpd.Reject{Code: 550, Enhanced: [3]int{5, 7, 1}, Message: inbound.SignatureRefused}
	case err != nil:
		rc.log.Printf("list post from %s signed by %s: %v", from, acc.Key.Fingerprint, err)
		return err
	}
	rc.log.Printf("list post from %s (key %s): %s", acc.Contact.Email, acc.Key.Fingerprint, res.Summary())
	rc.poke()
	return nil
}

func (rc *receiver) poke() {
	select {
	case rc.kick <- struct{}{}:
	default:
	}
}

// sendPublicKey answers anyone who writes to the -sendkey address with
// the directory's public key, in a mail signed by it; bounces and
// auto-replies get nothing, and answers are rate limited per sender and
// in all.
func (rc *receiver) sendPublicKey(ctx context.Context, env smtpd.Envelope, r io.Reader) error {
	h, err := readHeader(r, 64<<10)
	if err != nil {
		return &smtpd.Reject{Code: 550, Enhanced: [3]int{5, 6, 0}, Message: "malformed message"}
	}
	to, err := mail.ParseAddress(env.From)
	switch {
	case env.From == "" || err != nil || outbox.CheckAddress(to.Address) != nil,
		!strings.EqualFold(h.Get("Auto-Submitted"), "") && !strings.EqualFold(h.Get("Auto-Submitted"), "no"),
		strings.Contains(strings.ToLower(h.Get("Precedence")), "bulk"),
		strings.Contains(strings.ToLower(h.Get("Precedence")), "list"),
		strings.Contains(strings.ToLower(h.Get("Precedence")), "junk"):
		rc.log.Printf("dropped key request from %s", strconv.QuoteToGraphic(env.From))
		return nil
	}
	to.Address = strings.ToLower(to.Address) // one rate limit per mailbox, however it is spelt
	now := rc.g.now()
	n, err := outbox.CountSince(ctx, rc.store.DB(), kindSendKey, to.Address, now.Add(-time.Hour))
	if err != nil {
		return err
	}
	var all int
	if err := rc.store.DB().QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE kind = ? AND created >= ?`,
		kindSendKey, now.Add(-time.Hour).UnixMilli()).Scan(&all); err != nil {
		return err
	}
	if n >= sendKeyPerSender || all >= sendKeyPerHour {
		rc.log.Printf("key request from %s not answered: rate limit", to.Address)
		return nil
	}
	msg, err := rc.publicKeyMail(to.Address, h.Get("Message-Id"), now)
	if err != nil {
		return err
	}
	ref := strconv.FormatInt(now.UnixNano(), 36)
	if _, err := rc.outbox.Enqueue(ctx, outbox.Message{Kind: kindSendKey, Ref: ref, From: rc.info.Address, To: to.Address, Data: msg}); err != nil {
		return err
	}
	rc.log.Printf("sent the directory key to %s", to.Address)
	rc.poke()
	return nil
}

// publicKeyMail is a signed (not encrypted) mail with the directory's
// public key attached: nothing in it is contact data.
func (rc *receiver) publicKeyMail(to, inReplyTo string, now time.Time) ([]byte, error) {
	info := rc.info
	text := fmt.Sprintf("This is the OpenPGP key of %s <%s>.\n\nFingerprint: %s\n\n"+
		"Check the fingerprint with the community's secretariat, or in a digest you\n"+
		"received earlier, before you trust it.\n", info.Name, info.Address, groupHex(info.KeyFingerprint))
	inner, err := pgpmime.BuildInner(pgpmime.Protected{
		From: mail.Address{Name: info.Name, Address: info.Address}, To: []mail.Address{{Address: to}},
		Subject: "OpenPGP key of " + info.Name, Date: now,
	}, []pgpmime.Part{
		{ContentType: "text/plain", Body: []byte(text)},
		{ContentType: "application/pgp-keys", Filename: "directory-key.asc", Body: []byte(info.PublicKey)},
	})
	if err != nil {
		return nil, err
	}
	signed, err := pgpmime.Sign(inner, rc.secret)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("From", (&mail.Address{Name: info.Name, Address: info.Address}).String())
	hdr("To", "<"+to+">")
	hdr("Subject", "OpenPGP key of the directory")
	hdr("Date", now.Format(time.RFC1123Z))
	hdr("Message-Id", fmt.Sprintf("<sendkey-%d@%s>", now.UnixNano(), info.Address[strings.LastIndexByte(info.Address, '@')+1:]))
	if id := strings.TrimSpace(inReplyTo); id != "" && len(id) < 250 && !strings.ContainsAny(id, "\r\n") {
		hdr("In-Reply-To", id)
	}
	hdr("Auto-Submitted", "auto-replied")
	hdr("MIME-Version", "1.0")
	b.Write(signed.Bytes())
	return b.Bytes(), nil
}

// readHeader reads a message's header, at most max bytes, and drains the rest.
func readHeader(r io.Reader, max int64) (mail.Header, error) {
	defer io.Copy(io.Discard, r)
	m, err := mail.ReadMessage(io.LimitReader(r, max))
	if err != nil {
		return nil, err
	}
	return m.Header, nil
}

// deliverLoop delivers the outbox whenever something was queued, and every
// minute for retries, until ctx ends.
func (rc *receiver) deliverLoop(ctx context.Context, t outbox.Transport, opts outbox.DeliverOptions) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		sum, err := rc.outbox.Deliver(ctx, t, outbox.Filter{}, opts)
		if err != nil && ctx.Err() == nil {
			rc.log.Printf("delivery to %s: %v", t, err)
		} else if sum.Sent+sum.Deferred+sum.Failed > 0 {
			rc.log.Printf("delivered to %s: %d sent, %d deferred, %d failed", t, sum.Sent, sum.Deferred, sum.Failed)
		}
		select {
		case <-ctx.Done():
			return
		case <-rc.kick:
		case <-tick.C:
		}
	}
}

func newServeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve [--smtp ADDR] [--lmtp ADDR|unix:PATH]",
		Short: "Answer signed command mail over SMTP and/or LMTP, and deliver the outbox",
		Long: `Listen for mail to the directory's address over SMTP (a TCP address) and/or
LMTP (a TCP address or unix:PATH, mode 0660), check every message (signed
by a registered contact's key, fresh, unseen, meant for this directory),
run its commands and queue the encrypted, signed reply; deliver the outbox
in the background. Refused mail is rejected at the end of DATA with one
line saying why: ccdir never sends a bounce. The address
LOCAL-sendkey@DOMAIN answers anyone with the directory's public key.
SIGTERM stops accepting and finishes the messages in flight.

Mail to the list address (directory.list_address) is a post to the
encrypted alert list: relayed, encrypted, to every member.

Config: serve.smtp, serve.lmtp, serve.max_message_bytes (10 MiB),
serve.tls_cert and serve.tls_key (STARTTLS), commands.window (72h),
commands.skew (10m), commands.replies_per_hour (20), list.tag ([NAME]),
list.default_tlp (AMBER), list.copy_to_sender (true), list.keep_message_id
(false), list.archive (false: no alert content is kept).

EXIT STATUS
  0 stopped by a signal, 1 error, 2 usage`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd.Context(), g)
		},
	}
	cmd.Flags().String("smtp", "", "SMTP address to listen on, e.g. 127.0.0.1:2525 (config serve.smtp)")
	cmd.Flags().String("lmtp", "", "LMTP address: host:port or unix:PATH (config serve.lmtp)")
	return cmd
}

func runServe(ctx context.Context, g *globals) error {
	smtpAddr, lmtpAddr := g.text("serve.smtp"), g.text("serve.lmtp")
	if smtpAddr == "" && lmtpAddr == "" {
		return usagef("serve needs --smtp ADDR and/or --lmtp ADDR (or serve.smtp / serve.lmtp in the config)")
	}
	var tlsCfg *tls.Config
	if cert, key := g.text("serve.tls_cert"), g.text("serve.tls_key"); cert != "" || key != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return withHint(fmt.Errorf("serve.tls_cert/serve.tls_key: %w", err), "give both files, PEM-encoded")
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	t, err := g.transport()
	if err != nil {
		return err
	}
	dcfg := g.digestConfig()
	rc, done, err := g.receiver(ctx)
	if err != nil {
		return err
	}
	defer done()
	maxBytes := rc.pipeline.Config.MaxMessageBytes
	srv := smtpd.New(smtpd.Config{
		Domain:          rc.info.Address[strings.LastIndexByte(rc.info.Address, '@')+1:],
		Addresses:       append([]string{rc.sendKey}, rc.pipeline.Config.Addresses...),
		MaxMessageBytes: maxBytes,
		TLSConfig:       tlsCfg,
		ErrorLog:        rc.log,
	}, rc.receive)

	var listeners []net.Listener
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
	}
	errs := make(chan error, 2)
	if smtpAddr != "" {
		l, err := net.Listen("tcp", smtpAddr)
		if err != nil {
			return fmt.Errorf("serve.smtp: %w", err)
		}
		listeners = append(listeners, l)
		rc.log.Printf("SMTP on %s for %s", l.Addr(), strings.Join(append([]string{rc.sendKey}, rc.pipeline.Config.Addresses...), ", "))
		go func() { errs <- srv.ServeSMTP(l) }()
	}
	if lmtpAddr != "" {
		l, err := listenLMTP(lmtpAddr)
		if err != nil {
			closeAll()
			return fmt.Errorf("serve.lmtp: %w", err)
		}
		listeners = append(listeners, l)
		rc.log.Printf("LMTP on %s", lmtpAddr)
		go func() { errs <- srv.ServeLMTP(l) }()
	}
	dctx, stopDelivery := context.WithCancel(context.Background())
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		rc.deliverLoop(dctx, t, outbox.DeliverOptions{Connections: dcfg.Connections, RetryFor: dcfg.RetryFor, Now: g.now})
	}()

	var serveErr error
	select {
	case <-ctx.Done():
		rc.log.Printf("stopping: finishing the messages in flight")
	case serveErr = <-errs:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && serveErr == nil {
		serveErr = err
	}
	stopDelivery()
	<-delivered
	return serveErr
}

// listenLMTP listens on host:port or on unix:PATH (mode 0660; a stale
// socket left by a crash is removed first, anything else is refused).
func listenLMTP(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		return net.Listen("tcp", addr)
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s is in use by another server", path)
		}
		os.Remove(path)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func newProcessCmd(g *globals) *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use:   "process [--from SENDER] [--to ADDR] < message.eml",
		Short: "Handle one message from an MTA pipe (Postfix pipe, procmail)",
		Long: `Read one message on standard input and handle it as serve would: check it,
run its commands, queue the reply and try to deliver it (what cannot go out
now waits for ccdir outbox flush, which the cron example runs).
--from is the envelope sender (default: $SENDER, as Postfix's pipe sets it),
--to the recipient (default: $RECIPIENT, else the directory's address).

A refused message is dropped with one log line and exit 0: an MTA would
otherwise bounce it to a possibly forged sender.

EXIT STATUS
  0 handled or dropped, 1 error in the command line or the home,
  75 temporary failure (the MTA retries later)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("from") {
				from = os.Getenv("SENDER")
			}
			if !cmd.Flags().Changed("to") {
				to = os.Getenv("RECIPIENT")
			}
			return runProcess(cmd.Context(), g, from, to)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "envelope sender (default $SENDER)")
	cmd.Flags().StringVar(&to, "to", "", "envelope recipient (default $RECIPIENT, else the directory's address)")
	return cmd
}

func runProcess(ctx context.Context, g *globals, from, to string) error {
	rc, done, err := g.receiver(ctx)
	if err != nil {
		return err
	}
	defer done()
	if to == "" {
		to = rc.info.Address
	}
	if !strings.EqualFold(to, rc.info.Address) && !strings.EqualFold(to, rc.sendKey) &&
		(rc.info.ListAddress == "" || !strings.EqualFold(to, rc.info.ListAddress)) {
		rc.log.Printf("dropped mail for %s: not an address of this directory", strconv.QuoteToGraphic(to))
		io.Copy(io.Discard, io.LimitReader(g.stdin, 1<<30))
		return nil
	}
	err = rc.receive(ctx, smtpd.Envelope{From: from, To: []string{strings.ToLower(to)}}, g.stdin)
	var rej *smtpd.Reject
	switch {
	case errors.As(err, &rej):
		return nil // logged by receive; no bounce
	case err != nil:
		return &tempFailError{err}
	}
	// Deliver what was queued now; what fails waits for outbox flush.
	t, err := g.transport()
	if err != nil {
		rc.log.Printf("reply queued, not delivered: %v", err)
		return nil
	}
	dcfg := g.digestConfig()
	dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := rc.outbox.Deliver(dctx, t, outbox.Filter{}, outbox.DeliverOptions{Connections: dcfg.Connections, RetryFor: dcfg.RetryFor, Now: g.now}); err != nil {
		rc.log.Printf("reply queued, not delivered yet (%v); ccdir outbox flush will retry", err)
	}
	return nil
}
