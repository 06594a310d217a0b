package receive

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/dsn"
	"github.com/ccdir/ccdir/pkg/outbox"
)

// bounce handles mail to the bounce address: a delivery status
// notification (package dsn) whose address's tag names a message of the
// outbox marks that message bounced (outbox.Outbox.Bounced), with the
// remote diagnostic. Nothing else happens: a bounce is never answered
// and never changes the directory. Anything else sent there (not a
// report, a delay or success report, a tag that names no message the
// outbox sent) is dropped with one log line and taken (nil: serve
// answers 250, since refusing a report only makes the MTA bounce it
// again); only a failure of ours defers it.
func (r *Receiver) bounce(ctx context.Context, cfg Config, env Envelope, msg io.Reader, e *Entry) error {
	to := ""
	for _, a := range env.To {
		if cfg.Route(a) == Bounce {
			to = a
			break
		}
	}
	from := strconv.QuoteToGraphic(env.From)
	qto := strconv.QuoteToGraphic(to)
	rep, err := dsn.Parse(msg)
	io.Copy(io.Discard, io.LimitReader(msg, 1<<30))
	if err != nil {
		r.logf("dropped mail from %s to the bounce address %s: %v", from, qto, err)
		e.ignore(ReasonReport, "not a delivery status notification")
		return nil
	}
	failed := rep.Failed()
	if len(failed) == 0 {
		var actions []string
		for _, rc := range rep.Recipients {
			actions = append(actions, rc.Action)
		}
		if len(actions) == 0 {
			actions = []string{"no recipient"}
		}
		r.logf("ignored delivery report from %s to %s: %s, not a failure", from, qto, strconv.QuoteToGraphic(strings.Join(actions, ", ")))
		e.ignore(ReasonReport, "not a failure report")
		return nil
	}
	reason := failed[0].Reason()
	r.mu.Lock()
	defer r.mu.Unlock()
	row, err := r.Outbox.Bounced(ctx, cfg.BounceAddress(), to, reason)
	switch {
	case errors.Is(err, outbox.ErrAlreadyBounced):
		r.logf("ignored bounce from %s: message %d (%s %s to %s) bounced already", from, row.ID, row.Kind, row.Ref, strconv.QuoteToGraphic(row.To))
		e.ignore(ReasonBounceTag, "the message bounced already")
		return nil
	case errors.Is(err, outbox.ErrNoTag), errors.Is(err, outbox.ErrBadTag), errors.Is(err, outbox.ErrNoMessage), errors.Is(err, outbox.ErrNotSent):
		r.logf("ignored bounce from %s to %s: %v", from, qto, err)
		e.ignore(ReasonBounceTag, err.Error())
		return nil
	case err != nil:
		prefix := ""
		if directory.Temporary(err) {
			prefix = "deferred "
		}
		r.logf("%sbounce from %s to %s: %v", prefix, from, qto, err)
		return &Deferred{Err: err}
	}
	r.logf("bounce (%s) from %s: message %d (%s %s to %s) bounced: %s", rep.Form, from, row.ID, row.Kind, row.Ref,
		strconv.QuoteToGraphic(row.To), strconv.QuoteToGraphic(reason))
	return nil
}
