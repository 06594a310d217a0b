package receive

import (
	"context"
	"errors"
	"io"
	"log"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/fanout"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/mailcmd"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/relay"
)

// Defaults for Config fields left zero.
const (
	DefaultSendKeyPerDomain = 5  // answers to one (registrable) domain per hour
	DefaultSendKeyPerHour   = 60 // answers in all per hour
)

// KeyAnswerWindow is how long after an answer to a key request the same
// address gets none: never more than one a day.
const KeyAnswerWindow = 24 * time.Hour

// Config is the identity and the limits of a Receiver. Zero values mean
// the defaults above; Directory.Address is required.
type Config struct {
	// Directory is the directory as Store.Info returns it: Address (mail
	// commands), ListAddress (the list; "" for none), and Name,
	// KeyFingerprint and PublicKey for the answers to key requests.
	Directory directory.Info
	// SendKeyPerDomain caps the key answers to the addresses of one
	// domain in an hour (DefaultSendKeyPerDomain); registered contacts
	// do not count against it.
	SendKeyPerDomain int
	// SendKeyPerHour caps the key answers in an hour to addresses
	// outside the domains of registered contacts (DefaultSendKeyPerHour).
	// One address gets one answer a day at most (KeyAnswerWindow).
	SendKeyPerHour int
	// Bounces is the bounce address (bounces.address): the envelope
	// sender of every message the outbox queues is a +tag of it, and the
	// delivery status notifications sent to it mark messages bounced.
	// "" means Directory.BounceAddress().
	Bounces string
	// RepliesPerHour caps the answers to refused mail one contact gets
	// in an hour (fanout.DefaultAnswersPerHour; ccdir sets
	// commands.replies_per_hour), counted with the relay's (one outbox
	// kind, fanout.KindRefused).
	RepliesPerHour int
}

func (c Config) withDefaults() Config {
	if c.SendKeyPerDomain <= 0 {
		c.SendKeyPerDomain = DefaultSendKeyPerDomain
	}
	if c.SendKeyPerHour <= 0 {
		c.SendKeyPerHour = DefaultSendKeyPerHour
	}
	if c.Bounces == "" {
		c.Bounces = c.Directory.BounceAddress()
	}
	if c.RepliesPerHour <= 0 {
		c.RepliesPerHour = fanout.DefaultAnswersPerHour
	}
	return c
}

// BounceAddress is the bounce address: Bounces, else the directory's
// LOCAL-bounces@DOMAIN.
func (c Config) BounceAddress() string { return c.withDefaults().Bounces }

// SendKeyAddress is LOCAL-sendkey@DOMAIN for the directory address
// LOCAL@DOMAIN (directory.Info.SendKeyAddress).
func (c Config) SendKeyAddress() string { return c.Directory.SendKeyAddress() }

// Addresses are every address mail is taken for, as a server accepts them
// at RCPT: the -sendkey address, the directory's, the bounce address and
// the list's (directory.Info.Addresses, and Bounces when it is another).
// The bounce address is also taken with any +tag (IsBounceAddress).
func (c Config) Addresses() []string {
	addrs := c.Directory.Addresses()
	if b := c.BounceAddress(); !slices.ContainsFunc(addrs, func(a string) bool { return strings.EqualFold(a, b) }) {
		addrs = append(addrs, b)
	}
	return addrs
}

// Route is what mail for one address is for.
type Route int

// Routes.
const (
	NotOurs  Route = iota // dropped: not an address of this directory
	Commands              // the directory's address: mail commands
	List                  // the list address: a post to the list
	SendKey               // the -sendkey address: a key request
	Bounce                // the bounce address, or a +tag of it: a delivery status notification
)

func (r Route) String() string {
	switch r {
	case Commands:
		return "commands"
	case List:
		return "list"
	case SendKey:
		return "sendkey"
	case Bounce:
		return "bounce"
	}
	return "not ours"
}

// Route says what mail for addr is for (compared case-insensitively).
func (c Config) Route(addr string) Route {
	addr = strings.TrimSpace(addr)
	switch {
	case addr == "":
		return NotOurs
	case strings.EqualFold(addr, c.Directory.Address):
		return Commands
	case c.Directory.ListAddress != "" && strings.EqualFold(addr, c.Directory.ListAddress):
		return List
	case strings.EqualFold(addr, c.SendKeyAddress()):
		return SendKey
	case outbox.IsBounceAddress(c.BounceAddress(), addr):
		return Bounce
	}
	return NotOurs
}

// Envelope is the SMTP envelope of a message.
type Envelope struct {
	From string   // MAIL FROM; "" for a bounce
	To   []string // RCPT TO; none means the directory's address
}

// Receiver routes incoming messages. Set the exported fields, then share
// it: Receive may be called concurrently (messages are checked in
// parallel; what changes the directory or signs with its key runs one
// message at a time). Do not copy a Receiver after first use.
type Receiver struct {
	Config   Config
	Store    *directory.Store  // the rate limits of key requests read the outbox through it
	Secret   *keys.Secret      // signs the answers to key requests
	Pipeline *inbound.Pipeline // checks command mail and list posts
	Commands *mailcmd.Handler  // runs the commands of accepted mail
	Relay    *relay.Relay      // relays accepted list posts; required with a list address
	Outbox   *outbox.Outbox    // queues the answers to key requests; DeliverLoop delivers it
	Now      func() time.Time  // nil: time.Now
	Log      *log.Logger       // one line per message; nil: discard

	mu       sync.Mutex   // one mail at a time: one writer, one signing key
	keyCache *fanout.Keys // contacts' keys, for the answers to refused mail (mu)
	kickOnce sync.Once
	kickCh   chan struct{} // something was queued
}

func (r *Receiver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Receiver) logf(format string, args ...any) {
	if r.Log != nil {
		r.Log.Printf(format, args...)
	}
}

func (r *Receiver) kick() chan struct{} {
	r.kickOnce.Do(func() { r.kickCh = make(chan struct{}, 1) })
	return r.kickCh
}

// queued wakes DeliverLoop.
func (r *Receiver) queued() {
	select {
	case r.kick() <- struct{}{}:
	default:
	}
}

// Receive handles one message for its envelope. It reads msg to its end,
// except that the pipeline stops one byte past its size limit (and
// refuses the message); a server drains the rest. It returns nil when the message was taken: handled, or dropped (a loop,
// a bounce, an address not ours). Otherwise it returns an
// *inbound.Refusal (refused, or Temporary) or a *Deferred (a failure of
// ours, to be retried): see the package comment, and ExitCode.
//
// Every message leaves one row in the inbound log (Entry), written once
// its verdict is known; a failure to write it is logged and changes
// nothing else.
func (r *Receiver) Receive(ctx context.Context, env Envelope, msg io.Reader) error {
	cfg := r.Config.withDefaults()
	e := Entry{At: r.now(), Sender: env.From, Recipient: cfg.Directory.Address, Route: Commands.String()}
	route, mixed := Commands, false
	if len(env.To) > 0 {
		route = NotOurs
		e.Recipient, e.Route = env.To[0], NotOurs.String()
		for _, to := range env.To {
			rt := cfg.Route(to)
			switch {
			case rt == NotOurs:
			case route == NotOurs:
				route = rt
				e.Recipient, e.Route = to, rt.String()
			case (rt == Bounce) != (route == Bounce):
				mixed = true
			}
		}
	}
	var err error
	if mixed {
		// A report and mail for people in one message: which one it is
		// is not the first recipient's to decide. smtpd keeps them
		// apart at RCPT (452); this is process's, and the last word.
		io.Copy(io.Discard, io.LimitReader(msg, 1<<30))
		err = r.settle(ctx, "mail", strconv.QuoteToGraphic(env.From), nil, errMixed)
	} else {
		err = r.receive(ctx, cfg, route, env, msg, &e)
	}
	e.settle(err)
	r.record(ctx, e)
	return err
}

// receive is Receive for a message whose route is known; it sets what e
// learns on the way (the signer, a verdict that err does not tell).
func (r *Receiver) receive(ctx context.Context, cfg Config, route Route, env Envelope, msg io.Reader, e *Entry) error {
	switch {
	case route == NotOurs:
		r.logf("dropped mail for %s: not an address of this directory", strconv.QuoteToGraphic(env.To[0]))
		e.ignore(ReasonRecipient, "not an address of this directory")
		io.Copy(io.Discard, io.LimitReader(msg, 1<<30))
		return nil
	case route == Bounce:
		return r.bounce(ctx, cfg, env, msg, e)
	case len(env.To) == 1 && route == SendKey:
		return r.sendKey(ctx, cfg, env, msg, e)
	case cfg.Route(env.From) != NotOurs:
		// From one of our own addresses (the bounce address with any
		// tag too, which the pipeline's loop check does not know): our
		// own mail come back, or a forgery of it; never answered.
		r.logf("dropped mail from %s: mail from the directory's own address: not answered", strconv.QuoteToGraphic(env.From))
		e.ignore(ReasonLoop, "mail from the directory's own address")
		io.Copy(io.Discard, io.LimitReader(msg, 1<<30))
		return nil
	}
	from := strconv.QuoteToGraphic(env.From)
	acc, err := r.Pipeline.Process(ctx, inbound.Envelope{From: env.From, To: env.To}, msg)
	var ref *inbound.Refusal
	if acc != nil {
		e.Signer = acc.Key.Fingerprint
	} else if errors.As(err, &ref) && ref.Drop {
		e.ignore(ReasonLoop, ref.Reason)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		return r.settle(ctx, "mail", from, nil, err)
	}
	if cfg.Route(acc.To) == List {
		res, err := r.Relay.Handle(ctx, acc)
		if err != nil {
			return r.settle(ctx, "list post", from, acc, err)
		}
		r.logf("list post from %s (key %s): %s", acc.Contact.Email, acc.Key.Fingerprint, res.Summary())
		r.queued()
		return nil
	}
	res, err := r.Commands.Handle(ctx, acc)
	if err != nil {
		return r.settle(ctx, "mail", from, acc, err)
	}
	r.logf("command mail from %s (key %s): %s", acc.Contact.Email, acc.Key.Fingerprint, res.Summary())
	r.queued()
	return nil
}

// Refusals made here for what the services report.
var (
	errReplayed = &inbound.Refusal{Code: 550, Enhanced: [3]int{5, 7, 1}, Reason: "this signed message was already used"}
	errSigner   = &inbound.Refusal{Code: 550, Enhanced: [3]int{5, 7, 1}, Reason: inbound.SignatureRefused}
	// errMixed refuses a message for the bounce address and another
	// address of ours at once (5.5.3: send it again in parts).
	errMixed = &inbound.Refusal{Kind: inbound.RefusedRecipient, Code: 550, Enhanced: [3]int{5, 5, 3},
		Reason: "the bounce address takes mail of its own: send this message again without it, or to it alone"}
)

// settle is the one place that turns what went wrong with a message into
// Receive's result, with its log line. what names the message ("mail",
// "list post"), from is the quoted envelope sender, acc what the pipeline
// accepted (nil if it did not). The signer of a refusal that is to be
// told (inbound.Refusal.Tellable) is answered here (tell), and the log
// line says so, or why not.
func (r *Receiver) settle(ctx context.Context, what, from string, acc *inbound.Accepted, err error) error {
	signer := ""
	if acc != nil {
		signer = acc.Key.Fingerprint
	}
	var ref *inbound.Refusal
	switch {
	case errors.As(err, &ref) && ref.Drop:
		r.logf("dropped %s from %s: %s", what, from, ref.Reason)
		return nil
	case errors.As(err, &ref) && ref.Temporary:
		r.logf("deferred %s from %s: %s", what, from, ref.Reason)
		return ref
	case errors.As(err, &ref):
		detail := ""
		if ref.Detail != "" {
			detail = " (" + strconv.QuoteToGraphic(ref.Detail) + ")"
		}
		told, terr := r.tell(ctx, ref)
		if terr != nil {
			// The answer could not be queued: the mail is retried, so
			// that the member is told then, never left without it.
			prefix := ""
			if directory.Temporary(terr) {
				prefix = "deferred "
			}
			r.logf("%srefused %s from %s: %s%s; answer not queued: %v", prefix, what, from, ref.Reason, detail, terr)
			return &Deferred{Err: terr}
		}
		r.logf("refused %s from %s: %s%s; %s", what, from, ref.Reason, detail, told)
		return ref
	case errors.Is(err, inbound.ErrReplay):
		r.logf("refused %s from %s signed by %s: replay", what, from, signer)
		return errReplayed
	case errors.Is(err, mailcmd.ErrUnknownSender), errors.Is(err, relay.ErrUnknownSender):
		r.logf("refused %s from %s: signer %s is no longer registered", what, from, signer)
		return errSigner
	}
	// A failure of ours: the storage failing for now (the database locked
	// past the busy timeout, a full disk: directory.Temporary) is said to
	// be deferred; anything else is logged as it is. Both are retried.
	prefix := ""
	if directory.Temporary(err) {
		prefix = "deferred "
	}
	if acc != nil {
		r.logf("%s%s from %s signed by %s: %v", prefix, what, from, signer, err)
	} else {
		r.logf("%s%s from %s: %v", prefix, what, from, err)
	}
	return &Deferred{Err: err}
}

// Deferred is a message not taken for a failure of ours (a database
// error, a read error): the sender should try again later. The peer
// learns nothing of the cause; the log does.
type Deferred struct{ Err error }

func (d *Deferred) Error() string { return d.Err.Error() }
func (d *Deferred) Unwrap() error { return d.Err }

// SMTPStatus is 451 4.3.0: try again later.
func (d *Deferred) SMTPStatus() (code int, enhanced [3]int, text string) {
	return 451, [3]int{4, 3, 0}, "temporary failure, try again later"
}

// ExitCode is 75 (EX_TEMPFAIL): the MTA retries.
func (d *Deferred) ExitCode() int { return inbound.ExitTempFail }

// Answered reports whether Receive's result is a refusal whose signer
// was told (an answer was queued): something to deliver.
func Answered(err error) bool {
	var ref *inbound.Refusal
	return errors.As(err, &ref) && ref.Told != ""
}

// ExitCode is the exit status of ccdir process for Receive's result: 0
// for a message taken or refused (an MTA must not bounce a refusal to a
// possibly forged sender), 75 (EX_TEMPFAIL) for one to be retried,
// including any error that does not say otherwise.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return inbound.ExitTempFail
}
