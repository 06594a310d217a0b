package inbound

import (
	"errors"
	"fmt"
	"time"

	"github.com/ccdir/ccdir/directory"
)

// VerifyEvidence checks that evidence, kept with a ledger entry made by a
// member's signed mail at time at, is a statement signed by armoredKey,
// the key registered for the member then. It is a directory.EvidenceFunc,
// what `ccdir verify` re-verifies member-made entries with.
//
// Evidence kept whole by an older ccdir is the mail as received; it is
// read again as Process reads a mail (every form, the same limits), with
// only armoredKey registered and the clock at at. A mail that was
// encrypted to the directory key cannot be opened without the secret key,
// which verify does not hold: of such entries only the actor is checked
// (directory.Store.Verify checks that the key was registered).
func VerifyEvidence(evidence []byte, armoredKey string, at time.Time) error {
	return verifyMail(evidence, armoredKey, at)
}

var _ directory.EvidenceFunc = VerifyEvidence

// verifyMail reads a whole mail as Process does, with one key registered.
func verifyMail(raw []byte, armoredKey string, at time.Time) error {
	cfg := Config{}.withDefaults()
	w := &walker{maxDepth: cfg.MaxDepth, maxParts: cfg.MaxParts}
	root, err := w.parseEntity(raw, 0)
	if err != nil {
		return fmt.Errorf("not a readable mail: %v", mimeRefusal(err, cfg))
	}
	reg := &registered{armored: armoredKey}
	ids := keyIDs(armoredKey)
	if len(ids.ids) == 0 {
		return errors.New("the registered key cannot be read")
	}
	idx := &keyIndex{byID: map[uint64][]*registered{}, byFpr: map[string][]*registered{}}
	for _, id := range ids.ids {
		idx.byID[id] = append(idx.byID[id], reg)
	}
	for _, f := range ids.fprs {
		idx.byFpr[f] = append(idx.byFpr[f], reg)
	}
	c := &check{p: &Pipeline{}, cfg: cfg, now: at, idx: idx}
	_, ref, err := c.examine(root, false)
	switch {
	case errors.Is(err, errNoDirectoryKey):
		return nil // encrypted to the directory key: see above
	case err != nil:
		return err
	case ref != nil:
		return fmt.Errorf("%s (%s)", ref.Reason, ref.Detail)
	}
	return nil
}
