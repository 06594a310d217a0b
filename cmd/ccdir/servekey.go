package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

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
// swaps the receiver for the next messages. A key change that does not
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
	rc, done, err := g.receiverWith(ctx, s, sec)
	if err != nil {
		return nil, err
	}
	return &liveReceiver{g: g, t: t, dopts: dopts, rc: rc, done: done, sec: sec, pub: info.PublicKey}, nil
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
	rc, old, pub := l.rc, l.sec, l.pub
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
	l.rc, l.done, l.sec, l.pub = nrc, done, sec, info.PublicKey
	if delivering {
		l.startDelivery()
	}
	l.mu.Unlock()
	if want != old.Fingerprint() {
		lg.Printf("directory key changed by rekey: now %s (was %s)", sec.Fingerprint(), old.Fingerprint())
	} else {
		lg.Printf("directory key %s updated by ccdir key update-uids: reloaded (%s)", sec.Fingerprint(), keyExpiryText(sec.Expires(), l.g.now()))
	}
	return nil
}

// changed reports whether the directory's key, as its state names it,
// is no longer the one loaded (a read error: not known, left to the
// receiver).
func (l *liveReceiver) changed(ctx context.Context) bool {
	l.mu.RLock()
	rc, sec, pub := l.rc, l.sec, l.pub
	l.mu.RUnlock()
	info, err := rc.Store.Info(ctx)
	if err != nil {
		return false
	}
	return !strings.EqualFold(info.KeyFingerprint, sec.Fingerprint()) || info.PublicKey != pub
}
