package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/outbox"
)

// outboxKeyName is the file, in keys/, of the outbox key: the secret with
// which every outbox row is authenticated (outbox.Outbox.Key), so that
// someone who can write directory.db but not keys/ cannot make the
// directory send their mail. It is a file of its own, not derived from
// the directory key, so that outbox flush needs no passphrase.
const outboxKeyName = "outbox.key"

// outboxKey reads the home's outbox key, making it first if the home has
// none (init makes it; a home made before outbox keys gets one at its
// first command that queues or delivers). A key file that group or others
// may access is refused (keys.OpenPrivateFile).
func (g *globals) outboxKey() ([]byte, error) {
	path := g.path(keysDir, outboxKeyName)
	k, err := readOutboxKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createOutboxKey(path); err != nil {
			return nil, err
		}
		k, err = readOutboxKey(path)
	}
	return k, err
}

// readOutboxKey reads an outbox key file: the key in hex, on one line.
func readOutboxKey(path string) ([]byte, error) {
	f, err := keys.OpenPrivateFile(path)
	if err != nil {
		return nil, fmt.Errorf("outbox key: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4*outbox.KeySize))
	if err != nil {
		return nil, fmt.Errorf("outbox key %s: %w", path, err)
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) != outbox.KeySize {
		return nil, withHint(fmt.Errorf("outbox key %s is damaged: want %d bytes in hex", path, outbox.KeySize),
			"restore it from a backup; failing that, remove it (a new one is made: the messages queued with the old one are refused, every waiting pending change then reads as tampered and must be discarded with ccdir pending cancel ID --tampered and asked again, and keys/%s, whose lines no longer authenticate, is to be moved aside)", decidedName)
	}
	return k, nil
}

// createOutboxKey writes a new outbox key to path, which must not exist:
// the key is written whole to a temporary file beside it, then linked into
// place, which fails if another ccdir made one meanwhile (its key is then
// used). An existing key is never replaced.
func createOutboxKey(path string) error {
	t, err := newAtomicFile(path, 0o600)
	if err != nil {
		return fmt.Errorf("outbox key: %w", err)
	}
	defer os.Remove(t.Name())
	k := outbox.NewKey()
	_, err = t.WriteString(hex.EncodeToString(k) + "\n")
	clear(k)
	if err == nil {
		err = t.Sync()
	}
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("outbox key: %w", err)
	}
	if err := os.Link(t.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("outbox key: %w", err)
	}
	// Outbox rows made with the key may be committed at once: its name
	// must not be lost to a power cut, or they would all be refused.
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("outbox key: %w", err)
	}
	return nil
}
