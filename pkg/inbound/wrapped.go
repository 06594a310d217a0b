package inbound

import "strings"

// listWrapped returns the PGP/MIME signed or encrypted entity a mailing
// list or a disclaimer gateway wrapped intact in n, or nil: n is a
// multipart/mixed whose first part is a multipart/signed or
// multipart/encrypted entity and whose other parts are only footers
// (text leaves, or a multipart/alternative of text leaves), as Mailman
// (its decorate handler: the original entity, then the footer) and
// disclaimer gateways add them. The commands are then read from that
// entity only: the footers are never signed content, never read for
// commands, the binding or labels. Anything else (the signed part not
// first, an attachment beside it, two signed parts) is not a wrapping,
// and the message is read as it is.
func listWrapped(n *node) *node {
	if n.mt != "multipart/mixed" || len(n.children) < 2 {
		return nil
	}
	first := n.children[0]
	switch {
	case first.mt == "multipart/signed":
	case first.mt == "multipart/encrypted" && strings.EqualFold(first.params["protocol"], "application/pgp-encrypted"):
	default:
		return nil
	}
	for _, c := range n.children[1:] {
		if !footer(c, 0) {
			return nil
		}
	}
	return first
}

// footer reports whether n is text a list or gateway adds: a text/plain
// or text/html leaf that is not an attachment, or a multipart/alternative
// of such leaves.
func footer(n *node, depth int) bool {
	switch {
	case n.children == nil && n.raw == nil:
		return (n.mt == "text/plain" || n.mt == "text/html") && !n.attachment()
	case n.mt == "multipart/alternative" && depth == 0:
		for _, c := range n.children {
			if !footer(c, depth+1) {
				return false
			}
		}
		return len(n.children) > 0
	}
	return false
}
