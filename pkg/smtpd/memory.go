package smtpd

import (
	"errors"
	"io"
	"net/netip"
	"sync"

	"github.com/emersion/go-smtp"
)

// The handler holds a message in memory while it checks it (package
// inbound reads it whole, then parses it). What the messages in flight
// may hold at a time is one budget for the whole server, over all its
// listeners: connection limits alone do not bound it, since 64 clients
// from 64 addresses may each send a message of the largest size at once.
//
// A message takes of the budget only the bytes that have arrived, so a
// client that declares a large SIZE and then sends nothing (or a byte
// now and then, with BDAT) holds nothing. One source (an IPv4 address or
// IPv6 /64, as for the connection limits; not the MTA, nor LMTP) holds
// at most a quarter of the budget, or one message of the largest size
// if that is more. And a reserve is kept for small messages (command
// mails are a few kilobytes): a message's bytes past smallMessage are
// never taken from it.

// Reserve of the budget for small messages.
const (
	smallMessage  = 64 << 10 // a message this small may take from the reserve
	budgetReserve = 1 << 20  // kept from messages larger than smallMessage
)

// budget is a number of bytes shared by the messages in flight.
type budget struct {
	size     int64 // the whole budget, reserve included
	share    int64 // the most one source may hold
	mu       sync.Mutex
	used     int64
	bySource map[netip.Prefix]int64
}

func newBudget(size, maxMessage int64) *budget {
	return &budget{size: size, share: max(size/4, maxMessage+1), bySource: map[netip.Prefix]int64{}}
}

// room says whether n more bytes fit for a message from src (invalid:
// no per-source limit) that would then hold total bytes.
func (b *budget) room(src netip.Prefix, n, total int64) bool {
	held := b.bySource[src]
	if src.IsValid() && held+n > b.share {
		return false
	}
	if b.used+n <= b.size-budgetReserve {
		return true
	}
	// Only the reserve is left: for small messages, a quarter of it
	// for one source.
	return b.used+n <= b.size && total <= smallMessage && (!src.IsValid() || held+n <= budgetReserve/4)
}

// fits says whether a message of size bytes from src fits now.
func (b *budget) fits(src netip.Prefix, size int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.room(src, size, size)
}

// take reserves n more bytes for a message from src that then holds
// total bytes, if there is room.
func (b *budget) take(src netip.Prefix, n, total int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.room(src, n, total) {
		return false
	}
	b.used += n
	if src.IsValid() {
		b.bySource[src] += n
	}
	return true
}

func (b *budget) give(src netip.Prefix, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if src.IsValid() {
		if b.bySource[src] -= n; b.bySource[src] <= 0 {
			delete(b.bySource, src)
		}
	}
}

func (b *budget) free() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.size - b.used
}

// errNoMemory answers a message the budget has no room for: the sender
// tries again later (RFC 5321 §4.2.2: insufficient system storage).
var errNoMemory = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "Too much mail in progress, try again later"}

// errBudget is what a budgetReader returns once the budget is spent.
var errBudget = errors.New("smtpd: memory budget for messages in flight spent")

// budgetReader reads a message, taking of the budget what each read
// brings. When the budget has no room, it fails with errBudget and the
// message is answered with errNoMemory; release gives back what it took.
type budgetReader struct {
	r     io.Reader
	b     *budget
	src   netip.Prefix
	read  int64 // taken of the budget
	spent bool  // a take failed
}

func (br *budgetReader) Read(p []byte) (int, error) {
	if br.spent {
		return 0, errBudget
	}
	n, err := br.r.Read(p)
	if n > 0 {
		if !br.b.take(br.src, int64(n), br.read+int64(n)) {
			br.spent = true
			return 0, errBudget
		}
		br.read += int64(n)
	}
	return n, err
}

func (br *budgetReader) release() {
	br.b.give(br.src, br.read)
	br.read = 0
}
