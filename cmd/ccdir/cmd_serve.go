package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/mailcmd"
	"github.com/ccdir/ccdir/pkg/receive"
	"github.com/ccdir/ccdir/pkg/relay"
	"github.com/ccdir/ccdir/pkg/smtpd"
)

// exitTempFail is sysexits' EX_TEMPFAIL: an MTA pipe retries later.
const exitTempFail = inbound.ExitTempFail

// tempFailError makes process exit 75.
type tempFailError struct{ err error }

func (e *tempFailError) Error() string { return e.err.Error() }
func (e *tempFailError) Unwrap() error { return e.err }

// receiver builds what serve and process hand incoming mail to: the
// inbound pipeline, the command handler and the list relay behind one
// receive.Receiver, from the configuration.
func (g *globals) receiver(ctx context.Context) (*receive.Receiver, func(), error) {
	s, sec, err := g.openWriteKey(ctx)
	if err != nil {
		return nil, nil, err
	}
	return g.receiverWith(ctx, s, sec)
}

// receiverWith is receiver for the directory s opened for changes signed
// by sec (openWriteWith); the receiver closes s when done.
func (g *globals) receiverWith(ctx context.Context, s *directory.Store, sec *keys.Secret) (*receive.Receiver, func(), error) {
	var err error
	fail := func(err error) (*receive.Receiver, func(), error) { s.Close(); return nil, nil, err }
	info, err := s.Info(ctx)
	if err != nil {
		return fail(err)
	}
	ob, err := g.openOutboxIn(ctx, s)
	if err != nil {
		return fail(err)
	}
	ob.Now = g.now
	retired, err := g.retiredKeys(ctx, s)
	if err != nil {
		return fail(err)
	}
	dcfg := g.digestConfig()
	if dcfg.KeyChange, err = g.keyChange(ctx, s); err != nil {
		return fail(err)
	}
	addrs := []string{info.Address}
	if info.ListAddress != "" {
		addrs = append(addrs, info.ListAddress)
	}
	rc := &receive.Receiver{
		Config: receive.Config{Directory: info, Bounces: g.bounceAddress(info), RepliesPerHour: g.number("commands.replies_per_hour")},
		Store:  s, Secret: sec, Outbox: ob, Now: g.now,
		Log: g.logger(),
		Pipeline: &inbound.Pipeline{Store: s, Secret: sec, Now: g.now, Retired: retired, Config: inbound.Config{
			Addresses: addrs, Window: g.duration("commands.window"), Skew: g.duration("commands.skew"),
			MaxMessageBytes: int64(g.number("serve.max_message_bytes")),
		}},
		Commands: &mailcmd.Handler{Store: s, Secret: sec, Outbox: ob, Now: g.now, Decisions: g.decisions(ob.Key), Config: mailcmd.Config{
			Address: info.Address, RepliesPerHour: g.number("commands.replies_per_hour"), Digest: dcfg,
			ChangesPerDay: g.number("commands.changes_per_day"), MaxEvidence: g.number("commands.max_evidence"),
			PingInterval: g.duration("ping.interval"), ChangeDelay: g.duration("changes.delay"),
		}},
		Relay: &relay.Relay{Store: s, Secret: sec, Outbox: ob, Now: g.now, Config: relay.Config{
			ListAddress:    info.ListAddress,
			Tag:            g.text("list.tag"),
			DefaultTLP:     g.text("list.default_tlp"),
			NoCopyToSender: !g.boolean("list.copy_to_sender"),
			KeepMessageID:  g.boolean("list.keep_message_id"),
			Archive:        g.boolean("list.archive"),
			PostsPerMinute: g.number("list.posts_per_minute"),
			PostsPerHour:   g.number("list.posts_per_hour"),
			RepliesPerHour: g.number("commands.replies_per_hour"),
		}},
	}
	return rc, func() { s.Close() }, nil
}

func newServeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve [--smtp ADDR] [--lmtp ADDR|unix:PATH|systemd:NAME]",
		Short: "Answer signed command mail over SMTP and/or LMTP, and deliver the outbox",
		Long: `Listen for mail to the directory's address over SMTP (a TCP address) and/or
LMTP (a TCP address or unix:PATH, mode 0660), check every message (signed
by a registered contact's key, fresh, unseen, meant for this directory),
run its commands and queue the encrypted, signed reply; deliver the outbox
in the background. On SMTP, refused mail is rejected at the end of DATA
with one line saying why: ccdir never sends a bounce. On LMTP the MTA has
accepted the mail already and would bounce a 5xx to a sender who may be
forged, so nothing gets a 5xx there: refused mail (and mail for an address
that is not ours) is answered 250 with the reason, and logged (one line,
one inbound_log row); temporary failures stay 4xx. The address
LOCAL-sendkey@DOMAIN answers anyone with the directory's public key.
SIGTERM stops accepting and finishes the messages in flight.

Socket activation: --lmtp systemd:NAME (or --smtp) takes the listening
socket systemd passed with FileDescriptorName=NAME (LISTEN_FDS), whose
owner and mode the .socket unit sets (scripts/examples/ccdir-lmtp.socket).

Mail to the list address (directory.list_address) is a post to the
encrypted alert list: relayed, encrypted, to every member.

` + configHelp("serve.", "commands.", "list.") + `

EXIT STATUS
  0 stopped by a signal, 1 error, 2 usage`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd.Context(), g)
		},
	}
	cmd.Flags().String("smtp", "", "SMTP address to listen on, e.g. 127.0.0.1:2525, or systemd:NAME (config serve.smtp)")
	cmd.Flags().String("lmtp", "", "LMTP address: host:port, unix:PATH or systemd:NAME (config serve.lmtp)")
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
	requireTLS := g.boolean("serve.require_tls")
	if requireTLS && tlsCfg == nil && !g.isDefault("serve.require_tls") {
		return withHint(usagef("serve.require_tls is true but no certificate is set"), "set serve.tls_cert and serve.tls_key, or serve.require_tls to false")
	}
	t, err := g.transport()
	if err != nil {
		return err
	}
	dopts := g.deliveryOptions()
	live, err := newLiveReceiver(ctx, g, t, dopts)
	if err != nil {
		return err
	}
	defer live.close()
	rc := live.receiver()
	addrs := rc.Config.Addresses()
	_, domain, _ := strings.Cut(rc.Config.Directory.Address, "@")
	var mta []netip.Prefix
	for _, p := range g.list("serve.mta") {
		mta = append(mta, netip.MustParsePrefix(p)) // checked by the config table
	}
	srv := smtpd.New(smtpd.Config{
		Domain:              domain,
		Addresses:           addrs,
		Tagged:              []string{rc.Config.BounceAddress()},
		MaxMessageBytes:     rc.Pipeline.Config.MaxMessageBytes,
		MaxConnections:      g.number("serve.max_connections"),
		MaxConnectionsPerIP: g.number("serve.max_connections_per_ip"),
		Unlimited:           mta,
		SessionTimeout:      g.duration("serve.session_timeout"),
		MemoryBudget:        int64(g.number("serve.memory_budget")),
		TLSConfig:           tlsCfg,
		RequireTLS:          requireTLS && tlsCfg != nil,
		ErrorLog:            rc.Log,
	}, func(ctx context.Context, env smtpd.Envelope, r io.Reader) error {
		return live.Receive(ctx, receive.Envelope{From: env.From, To: env.To}, r)
	})

	var listeners []net.Listener
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
	}
	errs := make(chan error, 2)
	if smtpAddr != "" {
		l, err := listenSMTP(smtpAddr)
		if err != nil {
			return fmt.Errorf("serve.smtp: %w", err)
		}
		listeners = append(listeners, l)
		rc.Log.Printf("SMTP on %s for %s", l.Addr(), strings.Join(addrs, ", "))
		go func() { errs <- srv.ServeSMTP(l) }()
	}
	if lmtpAddr != "" {
		l, err := listenLMTP(lmtpAddr)
		if err != nil {
			closeAll()
			return fmt.Errorf("serve.lmtp: %w", err)
		}
		listeners = append(listeners, l)
		rc.Log.Printf("LMTP on %s", lmtpAddr)
		go func() { errs <- srv.ServeLMTP(l) }()
	}
	live.mu.Lock()
	live.startDelivery()
	live.mu.Unlock()

	var serveErr error
	select {
	case <-ctx.Done():
		rc.Log.Printf("stopping: finishing the messages in flight")
	case serveErr = <-errs:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && serveErr == nil {
		serveErr = err
	}
	return serveErr
}

// listenSMTP listens on host:port, or takes the socket systemd passed
// (systemd:NAME).
func listenSMTP(addr string) (net.Listener, error) {
	if name, ok := strings.CutPrefix(addr, systemdPrefix); ok {
		return systemdListener(name)
	}
	return net.Listen("tcp", addr)
}

// listenLMTP listens on host:port or on unix:PATH (mode 0660; a stale
// socket left by a crash is removed first, anything else is refused), or
// takes the socket systemd passed (systemd:NAME: the .socket unit sets
// its owner and mode).
func listenLMTP(addr string) (net.Listener, error) {
	if name, ok := strings.CutPrefix(addr, systemdPrefix); ok {
		return systemdListener(name)
	}
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
	return listenUnix(path, 0o660)
}

// umaskMu serializes the changes of the process's umask.
var umaskMu sync.Mutex

// listenUnix listens on a unix socket at path, created with mode perm: the
// umask is narrowed while it is made (a chmod after would leave it open to
// anyone the umask lets in for a moment).
func listenUnix(path string, perm os.FileMode) (net.Listener, error) {
	umaskMu.Lock()
	old := syscall.Umask(int(^perm & 0o777))
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	umaskMu.Unlock()
	return l, err
}
