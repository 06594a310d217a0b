package relay

import (
	"strings"

	"github.com/ccdir/ccdir/pkg/inbound"
)

// boundToList reports whether the signed content of a names the list: a
// DIRECTORY line of its command block with the list address, or the list
// address in the protected To or Cc of a PGP/MIME post. inbound made that
// check for the address the post was sent to (a.To) and says how it was
// met (a.Binding), so the post is not read again here. A member's command
// mail (bound to the command address) that reaches the relay anyway is
// not relayed to everyone.
func boundToList(a *inbound.Accepted, list string) bool {
	return a.Binding != "" && list != "" && strings.EqualFold(a.To, list)
}
