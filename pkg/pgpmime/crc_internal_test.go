package pgpmime

import (
	"math/rand/v2"
	"testing"
)

// crc24Bitwise is RFC 4880 §6.1's reference algorithm.
func crc24Bitwise(crc uint32, data []byte) uint32 {
	for _, b := range data {
		crc ^= uint32(b) << 16
		for range 8 {
			crc <<= 1
			if crc&0x1000000 != 0 {
				crc ^= crc24Poly
			}
		}
	}
	return crc & 0xffffff
}

func TestCRC24(t *testing.T) {
	r := rand.New(rand.NewChaCha8([32]byte{7}))
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	for n := 0; n <= len(data); n += 1 + n/7 {
		if got, want := crc24(crc24Init, data[:n]), crc24Bitwise(crc24Init, data[:n]); got != want {
			t.Fatalf("n=%d: crc24 %06x, want %06x", n, got, want)
		}
	}
	// RFC 4880 test: the CRC of no data is the initial value.
	if got := crc24(crc24Init, nil); got != crc24Init {
		t.Errorf("empty: %06x", got)
	}
}

func TestPrintable(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 12; pos++ {
			b := []byte("AAAAAAAAAAAA")
			b[pos] = byte(c)
			want := c >= ' ' && c <= '~'
			if got := printable(b); got != want {
				t.Fatalf("byte %#x at %d: printable %v, want %v", c, pos, got, want)
			}
		}
	}
}
