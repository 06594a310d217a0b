package inbound

import "time"

// Defaults for Config fields left zero.
const (
	DefaultWindow            = 72 * time.Hour
	DefaultSkew              = 10 * time.Minute
	DefaultMaxMessageBytes   = 10 << 20
	DefaultMaxDecryptedBytes = 16 << 20
	DefaultMaxHeaderBytes    = 256 << 10
	DefaultMaxDepth          = 20
	DefaultMaxParts          = 100
)

// Config are the limits and identity of a Pipeline. Zero values mean the
// defaults above; Addresses is required.
type Config struct {
	// Addresses are the directory's own addresses (commands; later also
	// the list address). The first is the main one. They are compared
	// case-insensitively.
	Addresses []string
	// Window is how old a signature may be (DefaultWindow).
	Window time.Duration
	// Skew is how far in the future a signature may be dated (DefaultSkew).
	Skew time.Duration
	// MaxMessageBytes caps the message as received (DefaultMaxMessageBytes).
	MaxMessageBytes int64
	// MaxDecryptedBytes caps the decrypted, decompressed content
	// (DefaultMaxDecryptedBytes); it is also go-crypto's
	// MaxDecompressedMessageSize.
	MaxDecryptedBytes int64
	// MaxHeaderBytes caps the top-level header (DefaultMaxHeaderBytes).
	MaxHeaderBytes int
	// MaxDepth caps MIME nesting (DefaultMaxDepth).
	MaxDepth int
	// MaxParts caps the number of MIME parts in the message, and again in
	// the decrypted entity (DefaultMaxParts).
	MaxParts int
}

func (c Config) withDefaults() Config {
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.Skew <= 0 {
		c.Skew = DefaultSkew
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxDecryptedBytes <= 0 {
		c.MaxDecryptedBytes = DefaultMaxDecryptedBytes
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.MaxDepth <= 0 {
		c.MaxDepth = DefaultMaxDepth
	}
	if c.MaxParts <= 0 {
		c.MaxParts = DefaultMaxParts
	}
	return c
}

// ours returns the configured address equal to addr (case-insensitive),
// or "".
func (c Config) ours(addr string) string {
	addr = trimAddr(addr)
	for _, a := range c.Addresses {
		if addr != "" && equalFoldASCII(a, addr) {
			return a
		}
	}
	return ""
}
