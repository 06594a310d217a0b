package inbound

import "fmt"

// Refusal says why a message was not accepted, in one line fit for an
// SMTP reply or a log line. Reason never discloses directory data (who is
// a member, which keys are registered); Detail may, and is for the local
// log only.
type Refusal struct {
	Code     int    // SMTP reply code: 5xx, 4xx if Temporary, 250 if Drop
	Enhanced [3]int // RFC 3463 enhanced status code
	Reason   string // one line, no directory data
	// Drop: a mail loop (bounce, auto-reply, bulk, our own mail). Accept
	// it and discard it silently; never reply.
	Drop bool
	// Temporary: the sender should try again later (4xx, exit 75).
	Temporary bool
	// Detail is for the operator's log only (never sent): a key ID, an
	// error from the crypto library.
	Detail string
	// Kind is what the refusal is about; with Signer it decides whether
	// the signer is told (Tellable).
	Kind Kind
	// Signer is the contact whose registered key made the mail's
	// verified signature, if it did and the signature is not one the
	// directory has used; nil otherwise.
	Signer *Signer
	// Tell is what the signer is told, when more can be said to them
	// than to the peer (TellText); "" means Reason.
	Tell string
	// Told is the registered address the signer was answered at, set by
	// whoever queued the answer (package receive); "" if not told.
	Told string

	res     *sigResult // the verified signature, until Process names the Signer
	subject string     // the signed Subject, if read
	silent  string     // why no Signer was named, for the log
	to      string     // which of the addresses the mail was sent to
}

// Error returns "code x.y.z reason".
func (r *Refusal) Error() string {
	return fmt.Sprintf("%d %d.%d.%d %s", r.Code, r.Enhanced[0], r.Enhanced[1], r.Enhanced[2], r.Reason)
}

// SMTPStatus is the reply to the peer: Code, Enhanced and Reason (never
// Detail).
func (r *Refusal) SMTPStatus() (code int, enhanced [3]int, text string) {
	return r.Code, r.Enhanced, r.Reason
}

// ExitCode is the exit status of an MTA pipe (ccdir process) for the
// refusal: 75 (EX_TEMPFAIL) if Temporary, so that the MTA retries, else 0:
// a refused message is dropped, never bounced to a possibly forged sender.
func (r *Refusal) ExitCode() int {
	if r.Temporary {
		return ExitTempFail
	}
	return 0
}

// ExitTempFail is sysexits' EX_TEMPFAIL: an MTA pipe retries later.
const ExitTempFail = 75

func refuse(kind Kind, code int, enh [3]int, reason string) *Refusal {
	return &Refusal{Kind: kind, Code: code, Enhanced: enh, Reason: reason}
}

func (r *Refusal) with(detail string) *Refusal {
	r.Detail = detail
	return r
}

// by records the verified signature res of the refused mail; Process
// names its Signer from it, unless the signature was used already.
func (r *Refusal) by(res *sigResult) *Refusal {
	r.res = res
	return r
}

// at records which of the directory's addresses the mail was sent to.
func (r *Refusal) at(to string) *Refusal {
	r.to = to
	return r
}

// as sets the refusal's kind: a MIME refusal inside verified signed
// content is RefusedContent.
func (r *Refusal) as(kind Kind) *Refusal {
	r.Kind = kind
	return r
}

func drop(reason string) *Refusal {
	return &Refusal{Kind: RefusedLoop, Code: 250, Enhanced: [3]int{2, 6, 0}, Reason: reason, Drop: true}
}

var (
	enhPolicy    = [3]int{5, 7, 1} // delivery not authorized
	enhIntegrity = [3]int{5, 7, 7} // message integrity failure
	enhCrypto    = [3]int{5, 7, 5} // cryptographic failure
	enhSize      = [3]int{5, 3, 4} // message too big for system
	enhMedia     = [3]int{5, 6, 0} // other media error
	enhRcpt      = [3]int{5, 1, 1} // bad destination mailbox
)

// bindingHint tells a member how to bind a command mail to this directory.
func bindingHint(addr string) string {
	return "the signed text must contain the line DIRECTORY " + addr + " among the commands"
}
