package keys

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// zbase32 is the alphabet of z-base-32 (the Web Key Directory's hashes).
const zbase32 = "ybndrfg8ejkmcpqxot1uwisza345h769"

// WKDHash is the Web Key Directory name of the mailbox's local part
// (draft-koch-openpgp-webkey-service, section 3.1): the z-base-32
// encoding of the SHA-1 digest of the local part mapped to lower case
// (ASCII letters only), 32 characters, as `gpg --with-wkd-hash` prints.
func WKDHash(local string) string {
	sum := sha1.Sum([]byte(asciiLower(local)))
	var b strings.Builder
	var acc, bits uint
	for _, c := range sum {
		acc = acc<<8 | uint(c)
		bits += 8
		for bits >= 5 {
			bits -= 5
			b.WriteByte(zbase32[acc>>bits&31])
		}
	}
	if bits > 0 {
		b.WriteByte(zbase32[acc<<(5-bits)&31])
	}
	return b.String()
}

// DANEName is the owner name of the DNS OPENPGPKEY record (RFC 7929,
// section 3) of the address local@domain: the SHA2-256 digest of the
// local part, truncated to 28 octets, in hex, under _openpgpkey.domain,
// with the final dot. The local part is mapped to lower case (ASCII
// letters only) first, as `gpg --export-options export-dane` does, and
// as the directory's addresses are written anyway.
func DANEName(email string) (string, error) {
	local, domain, ok := splitAddress(email)
	if !ok {
		return "", fmt.Errorf("invalid address %q", email)
	}
	sum := sha256.Sum256([]byte(asciiLower(local)))
	return hex.EncodeToString(sum[:28]) + "._openpgpkey." + strings.ToLower(domain) + ".", nil
}

// KeyFor returns the key in binary form with the one valid user ID that
// carries email (compared case-insensitively) and no other, as a Web Key
// Directory file or a DNS OPENPGPKEY record holds it: what is published
// for an address names that address only. It fails if no valid user ID
// carries email. The user ID keeps its certifications by certifiers (the
// directory's earlier keys, as ArmoredWith keeps them).
func (p *Public) KeyFor(email string, certifiers ...*Public) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer resetValidity(p.entity)
	var uid string
	for _, id := range validIdentities(p.entity) {
		if strings.EqualFold(id.UserId.Email, strings.TrimSpace(email)) {
			uid = id.Name
		}
	}
	if uid == "" {
		return nil, fmt.Errorf("key %s has no valid user ID for %s", p.Fingerprint, email)
	}
	var bin bytes.Buffer
	if err := serializeMinimal(&bin, p.entity, []string{uid}, map[string][]*packet.Signature{uid: certifications(p.entity, uid, certifiers)}); err != nil {
		return nil, err
	}
	return bin.Bytes(), nil
}

// splitAddress splits local@domain at its last '@'.
func splitAddress(email string) (local, domain string, ok bool) {
	email = strings.TrimSpace(email)
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || at == len(email)-1 {
		return "", "", false
	}
	return email[:at], email[at+1:], true
}

// asciiLower maps ASCII capitals to lower case and leaves every other
// byte alone (the WKD mapping of a local part).
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
