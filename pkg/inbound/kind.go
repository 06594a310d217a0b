package inbound

import (
	"strconv"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
)

// Kind is what a refusal is about. Whether its signer is told, in an
// encrypted, signed answer to the registered address, is decided for
// every kind in one table (kinds), and nowhere else: a refusal is told
// when its kind is and it names its Signer (Refusal.Tellable).
//
// The rule of the table: the signer is told when the signature verified
// against the registered, usable key of a contact, so the answer reaches
// nobody but the member who signed, and says only what that member wrote
// wrong. Nothing is told about unsigned mail, unknown signers and bad
// signatures (no oracle for who is registered, no backscatter to forged
// senders), about a key that is not usable (nothing can be said to it in
// private), nor about a replay (Signer is never set for a signature the
// directory has used, nor for one older than it remembers).
type Kind int

// Kinds of refusal. The pipeline's come first; RefusedPost,
// RefusedPostLimit and RefusedCommands are the services' (the relay's
// and the mail commands'), which answer them themselves.
const (
	RefusedOther       Kind = iota // not classified (a service's own refusal)
	RefusedSize                    // the message is over the size limit
	RefusedRecipient               // sent to no address of the directory
	RefusedHeader                  // the header is malformed or too large
	RefusedLoop                    // a bounce, an automatic or bulk message, our own mail (Drop)
	RefusedMIME                    // the MIME structure, outside any verified signature
	RefusedUnsigned                // no OpenPGP signature (also encrypted, not signed)
	RefusedCrypto                  // not encrypted to the directory key, or cannot be read
	RefusedSignature               // no good signature by a registered key (SignatureRefused)
	RefusedKeyUnusable             // the registered key is expired, revoked or invalid now
	RefusedForgotten               // older than the directory remembers: possibly a replay
	RefusedReplay                  // the signature was used already
	RefusedFuture                  // a good signature dated more than the skew ahead
	RefusedStale                   // a good signature older than the window
	RefusedContent                 // the signed content is malformed (MIME limits, charset)
	RefusedUnbound                 // the signed content does not name the address it was sent to
	RefusedWeakHash                // signed with a hash refused (SHA-1): told to everyone, answered to a registered signer
	RefusedPost                    // the relay: a post it cannot relay as asked (labels, TLP:RED, TO:)
	RefusedPostLimit               // the relay: over the per-author post limits
	RefusedCommands                // mailcmd: malformed commands, over the change limit (its reply)
	numKinds
)

// kinds is the one decision per kind: its name, and why its signer is
// not told ("" when told).
var kinds = [numKinds]struct {
	name   string
	silent string
}{
	RefusedOther:       {"other", "not a refusal of a registered signer"},
	RefusedSize:        {"size", "refused before its signature was read"},
	RefusedRecipient:   {"recipient", "refused before its signature was read"},
	RefusedHeader:      {"header", "refused before its signature was read"},
	RefusedLoop:        {"loop", "a bounce, automatic or own mail is never answered"},
	RefusedMIME:        {"mime", "refused before its signature was read"},
	RefusedUnsigned:    {"unsigned", "not signed"},
	RefusedCrypto:      {"crypto", "not readable, so not known to be signed"},
	RefusedSignature:   {"signature", "no good signature by a registered key"},
	RefusedKeyUnusable: {"key-unusable", "the signing key is not usable: nothing can be said in private"},
	RefusedForgotten:   {"forgotten", "signed before what the directory remembers: possibly a replay"},
	RefusedReplay:      {"replay", "a replay"},
	RefusedFuture:      {"future", ""},
	RefusedStale:       {"stale", ""},
	RefusedContent:     {"content", ""},
	RefusedUnbound:     {"unbound", ""},
	RefusedWeakHash:    {"weak-hash", ""},
	RefusedPost:        {"post", ""},
	RefusedPostLimit:   {"post-limit", ""},
	RefusedCommands:    {"commands", ""},
}

// Kinds returns every kind, in order.
func Kinds() []Kind {
	out := make([]Kind, numKinds)
	for i := range out {
		out[i] = Kind(i)
	}
	return out
}

func (k Kind) known() bool { return k >= 0 && k < numKinds }

// String is the kind's name, as the log shows it.
func (k Kind) String() string {
	if !k.known() {
		return "Kind(" + strconv.Itoa(int(k)) + ")"
	}
	return kinds[k].name
}

// Tellable reports whether a refusal of kind k is answered to its
// signer (when it has one: see Refusal.Tellable).
func (k Kind) Tellable() bool { return k.known() && kinds[k].silent == "" }

// Silent says why the signer of a refusal of kind k is not told, for the
// log; "" if it is.
func (k Kind) Silent() string {
	if !k.known() {
		return "not a known kind of refusal"
	}
	return kinds[k].silent
}

// Signer is who made the verified signature of a refused mail: the
// contact whose registered key it is, and what an answer needs. The
// pipeline sets it only for a signature that verified against that key
// and that the directory has not used (nor forgotten).
type Signer struct {
	Contact  directory.Contact
	Key      *keys.Public
	SignedAt time.Time
	// Seen is the signature's replay id (as Accepted.Seen): an answer's
	// outbox ref is made from it, so one signed mail is answered once.
	Seen string
	// To is which of the directory's addresses the mail was sent to.
	To string
	// Subject is the signed (protected) Subject, sanitised; "" if the
	// mail has none or it was not read before the refusal. An answer
	// never echoes an outer Subject.
	Subject string
	// References are the Message-IDs (without angle brackets) the mail's
	// In-Reply-To and References fields name, at most MaxReferences: an
	// answer to one of the directory's own answers is an auto-responder's,
	// and answering it would loop.
	References []string
}

// MaxReferences caps Signer.References.
const MaxReferences = 32

// Tellable reports whether the signer of the refused mail is told why:
// its kind is one to tell, and it has a Signer. A temporary refusal and
// a dropped mail never are.
func (r *Refusal) Tellable() bool {
	return r.Signer != nil && !r.Temporary && !r.Drop && r.Kind.Tellable()
}

// NotTold says, for the log, why the signer is not told; "" if it is.
func (r *Refusal) NotTold() string {
	switch {
	case r.Temporary:
		return "temporary"
	case r.Drop:
		return RefusedLoop.Silent()
	case !r.Kind.Tellable():
		return r.Kind.Silent()
	case r.Signer == nil && r.silent != "":
		return r.silent
	case r.Signer == nil:
		return "no verified signature by a registered key"
	}
	return ""
}

// TellText is what the signer is told: Tell if set, else Reason.
func (r *Refusal) TellText() string {
	if r.Tell != "" {
		return r.Tell
	}
	return r.Reason
}
