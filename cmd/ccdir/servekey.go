package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/receive"
)

// liveReceiver is what ccdir serve hands its messages to: the receiver
// for the directory key it loaded, reloaded when that key changes in
// the ledger while serve runs. Before each message it compares the
// directory's key (its fingerprint and public key, as the signed state
// names them) with the one it loaded. When a ccdir rekey that verifies
// moved the chain on from that key (directory.RekeyedError: every rekey
// entry signed by the key before it and the key it names), or ccdir key
// update-uids gave the same key new user IDs or a new expiry, it loads
// keys/directory.sec.asc again (with key.passphrase_file, as at start)
// and the retired keys, checks the whole ledger with the new key, and
// swaps the receiver for the next messages. So it does, with the same
// key, when ccdir key revoke-retired revoked one of the earlier keys
// (a directory.revoke entry): the receiver's retired keys are loaded
// again, and mail encrypted to the revoked one is refused from the next
// message on. A key change that does not
// verify is left to the receiver, which refuses it as tampering; a key
// that cannot be loaded defers the message (the MTA retries it), and is
// tried again at the next one.
type liveReceiver struct {
	g     *globals
	t     outbox.Transport
	dopts outbox.DeliverOptions

	reloadMu sync.Mutex   // one reload at a time
	mu       sync.RWMutex // held for reading while a message is handled
	rc       *receive.Receiver
	done     func()
	sec      *keys.Secret
	pub      string // the directory's public key (directory.public_key) when sec was loaded
	revoked  string // the earlier keys revoked when sec was loaded (revokedKeys)

	// seen is the ledger's serial last found to change nothing of the
	// above: the key chain is read again only when the ledger grew.
	seen atomic.Int64

	stopDelivery context.CancelFunc
	delivered    chan struct{}
}

func newLiveReceiver(ctx context.Context, g *globals, t outbox.Transport, dopts outbox.DeliverOptions) (*liveReceiver, error) {
	s, sec, err := g.openWriteKey(ctx)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		s.Close()
		return nil, err
	}
	revoked, err := revokedKeys(ctx, s)
	if err != nil {
		s.Close()
		return nil, err
	}
	rc, done, err := g.receiverWith(ctx, s, sec)
	if err != nil {
		return nil, err
	}
	return &liveReceiver{g: g, t: t, dopts: dopts, rc: rc, done: done, sec: sec, pub: info.PublicKey, revoked: revoked}, nil
}

// revokedKeys names the directory's earlier keys revoked in its key
// chain (by a rekey --revoke-old or a directory.revoke entry), in
// chain order.
func revokedKeys(ctx context.Context, s *directory.Store) (string, error) {
	chain, err := s.KeyChain(ctx)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, k := range chain {
		if k.Revoked {
			b.WriteString(k.Fingerprint)
			b.WriteByte(' ')
		}
	}
	return b.String(), nil
}

// receiver is the receiver for the key loaded now.
func (l *liveReceiver) receiver() *receive.Receiver {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.rc
}

// startDelivery runs the receiver's DeliverLoop in the background;
// l.mu is held for writing, or not yet shared.
func (l *liveReceiver) startDelivery() {
	ctx, cancel := context.WithCancel(context.Background())
	l.stopDelivery, l.delivered = cancel, make(chan struct{})
	rc, delivered := l.rc, l.delivered
	go func() {
		defer close(delivered)
		rc.DeliverLoop(ctx, l.t, l.dopts)
	}()
}

// close stops the delivery and closes the directory.
func (l *liveReceiver) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopDelivery != nil {
		l.stopDelivery()
		<-l.delivered
		l.stopDelivery = nil
	}
	l.done()
}

// Receive handles one message with the receiver for the directory's
// key now (receive.Receiver.Receive).
func (l *liveReceiver) Receive(ctx context.Context, env receive.Envelope, r io.Reader) error {
	if err := l.refresh(ctx); err != nil {
		io.Copy(io.Discard, io.LimitReader(r, 1<<30))
		return err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.rc.Receive(ctx, env, r)
}

// refresh reloads the directory key when the directory's key is no
// longer the one loaded (see liveReceiver). It returns a
// *receive.Deferred when the new key cannot be loaded yet; whatever
// else goes wrong is left to the receiver, which checks the directory
// at every message.
func (l *liveReceiver) refresh(ctx context.Context) error {
	if !l.changed(ctx) {
		return nil
	}
	l.reloadMu.Lock()
	defer l.reloadMu.Unlock()
	if !l.changed(ctx) { // reloaded by another message meanwhile
		return nil
	}
	l.mu.RLock()
	rc, old, pub, revoked := l.rc, l.sec, l.pub, l.revoked
	l.mu.RUnlock()
	lg := rc.Log
	// What moved the key on: a rekey that verifies from the loaded key,
	// or an update of the same key; anything else (tampering) the
	// receiver finds and reports as it does without a reload.
	v, err := old.Public().NewVerifier(l.g.now())
	if err != nil {
		return nil
	}
	want, what := old.Fingerprint(), "updated by ccdir key update-uids"
	snap, err := rc.Store.Checked(ctx, old.Fingerprint(), v.Verify)
	var rk *directory.RekeyedError
	switch {
	case errors.As(err, &rk):
		want, what = rk.New, "changed by rekey"
	case err != nil:
		return nil
	case strings.EqualFold(snap.Info.KeyFingerprint, old.Fingerprint()) && snap.Info.PublicKey == pub &&
		revokedChanged(ctx, rc.Store, revoked):
		what = "kept, an earlier key revoked by ccdir key revoke-retired,"
	case strings.EqualFold(snap.Info.KeyFingerprint, old.Fingerprint()) && snap.Info.PublicKey == pub:
		// The signed ledger still names the loaded key as it was: the
		// table says otherwise behind its back.
		info, _ := rc.Store.Info(ctx)
		err := &directory.TamperError{Finding: fmt.Errorf("table directory names key %s, but the signed ledger names %s, as serve loaded it", info.KeyFingerprint, old.Fingerprint())}
		lg.Print(err)
		return &receive.Deferred{Err: err}
	}
	defer_ := func(format string, args ...any) error {
		err := fmt.Errorf("the directory key was %s to %s, but serve cannot sign with it yet: %s; the message is deferred (the MTA retries it) and the key is loaded again at the next one",
			what, want, fmt.Sprintf(format, args...))
		lg.Print(err)
		return &receive.Deferred{Err: err}
	}
	sec, err := l.g.secretKey()
	if err != nil {
		return defer_("%v", err)
	}
	if !strings.EqualFold(sec.Fingerprint(), want) {
		return defer_("%s holds key %s (a ccdir rekey still installing it finishes in a moment, or run ccdir rekey again; otherwise run ccdir verify)",
			l.g.path(keysDir, secretName), sec.Fingerprint())
	}
	if err := usableDirectoryKey(sec, l.g.now()); err != nil {
		return defer_("%v", err)
	}
	s, err := l.g.openWriteWith(ctx, sec)
	if err != nil {
		return defer_("%v", err)
	}
	// The whole ledger, with the new key: the chain from the genesis
	// through every rekey to it, and the entries signed by it.
	nv, err := sec.Public().NewVerifier(l.g.now())
	if err == nil {
		_, err = s.Checked(ctx, sec.Fingerprint(), nv.Verify)
	}
	if err != nil {
		s.Close()
		lg.Printf("the directory key in the ledger is now %s, but the ledger does not verify with it: %v", want, err)
		return nil // the receiver refuses the message, naming it
	}
	info, err := s.Info(ctx)
	if err == nil {
		revoked, err = revokedKeys(ctx, s)
	}
	if err != nil {
		s.Close()
		return defer_("%v", err)
	}
	nrc, done, err := l.g.receiverWith(ctx, s, sec)
	if err != nil {
		return defer_("%v", err)
	}
	l.mu.Lock()
	delivering := l.stopDelivery != nil
	if delivering {
		l.stopDelivery()
		<-l.delivered
		l.stopDelivery = nil
	}
	l.done()
	l.rc, l.done, l.sec, l.pub, l.revoked = nrc, done, sec, info.PublicKey, revoked
	l.seen.Store(0)
	if delivering {
		l.startDelivery()
	}
	l.mu.Unlock()
	switch {
	case want != old.Fingerprint():
		lg.Printf("directory key changed by rekey: now %s (was %s)", sec.Fingerprint(), old.Fingerprint())
	case strings.HasPrefix(what, "kept"):
		lg.Printf("directory key %s kept, its earlier keys reloaded: revoked now %s; mail encrypted to a revoked one is refused", sec.Fingerprint(), strings.TrimSpace(revoked))
	default:
		lg.Printf("directory key %s updated by ccdir key update-uids: reloaded (%s)", sec.Fingerprint(), keyExpiryText(sec.Expires(), l.g.now()))
	}
	return nil
}

// changed reports whether the directory's key, as its state names it,
// is no longer the one loaded, or an earlier key was revoked since (a
// read error: not known, left to the receiver).
func (l *liveReceiver) changed(ctx context.Context) bool {
	l.mu.RLock()
	rc, sec, pub, revoked := l.rc, l.sec, l.pub, l.revoked
	l.mu.RUnlock()
	info, err := rc.Store.Info(ctx)
	if err != nil {
		return false
	}
	if !strings.EqualFold(info.KeyFingerprint, sec.Fingerprint()) || info.PublicKey != pub {
		return true
	}
	h, err := rc.Store.Head(ctx)
	if err != nil || h.Serial == l.seen.Load() {
		return false
	}
	if revokedChanged(ctx, rc.Store, revoked) {
		return true
	}
	l.seen.Store(h.Serial)
	return false
}

// revokedChanged reports whether the earlier keys revoked in the key
// chain are no longer those loaded (a read error: not known).
func revokedChanged(ctx context.Context, s *directory.Store, loaded string) bool {
	now, err := revokedKeys(ctx, s)
	return err == nil && now != loaded
}
