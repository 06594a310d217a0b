package smtpd

import (
	"errors"
	"io"
	"sync"

	"github.com/emersion/go-smtp"
)

// The handler holds a message in memory while it checks it (package
// inbound reads it whole, then parses it). What the messages in flight
// may hold at a time is one budget for the whole server, over all its
// listeners, taken as a message's bytes are read: connection limits
// alone do not bound it, since 64 clients from 64 addresses may each
// send a message of the largest size at once.

// budget is a number of bytes shared by the messages in flight.
type budget struct {
	mu         sync.Mutex
	used, size int64
}

// take reserves n bytes, if they are free.
func (b *budget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.size {
		return false
	}
	b.used += n
	return true
}

func (b *budget) give(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
}

func (b *budget) free() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.size - b.used
}

// firstReservation is what a message takes of the budget before its
// first byte is read; a reservation then doubles as the message grows.
// Most command mails fit in the first.
const firstReservation = 64 << 10

// errNoMemory answers a message the budget has no room for: the sender
// tries again later (RFC 5321 §4.2.2: insufficient system storage).
var errNoMemory = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "Too much mail in progress, try again later"}

// errBudget is what a budgetReader returns once the budget is spent.
var errBudget = errors.New("smtpd: memory budget for messages in flight spent")

// budgetReader reads a message, reserving budget ahead of what it
// reads: first Server.reservation (the declared SIZE and
// firstReservation), then twice its reservation each time it runs out,
// up to limit. When the budget has no
// room, it fails with errBudget and the message is answered with
// errNoMemory; its reservation is given back by release.
type budgetReader struct {
	r        io.Reader
	b        *budget
	limit    int64 // the most ever reserved: the handler reads at most max+1 bytes
	read     int64
	reserved int64
	spent    bool // a reservation failed
}

func (br *budgetReader) Read(p []byte) (int, error) {
	if br.spent {
		return 0, errBudget
	}
	if br.read+int64(len(p)) > br.reserved && br.reserved < br.limit {
		want := min(max(2*br.reserved, br.read+int64(len(p))), br.limit)
		if !br.b.take(want - br.reserved) {
			br.spent = true
			return 0, errBudget
		}
		br.reserved = want
	}
	if room := br.reserved - br.read; int64(len(p)) > room {
		// At the limit: what is left is past the size limit, which the
		// handler and go-smtp refuse; read it a little at a time.
		p = p[:max(room, 1)]
	}
	n, err := br.r.Read(p)
	br.read += int64(n)
	return n, err
}

func (br *budgetReader) release() {
	br.b.give(br.reserved)
	br.reserved = 0
}
