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

// TestCRC24Combine: the checksum of a‖b made from the parts is the one
// computed over the whole, for every split and lengths around the 8-byte
// steps and the powers of two.
func TestCRC24Combine(t *testing.T) {
	r := rand.New(rand.NewChaCha8([32]byte{8}))
	data := make([]byte, 5000)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	for _, n := range []int{0, 1, 2, 3, 7, 8, 9, 64, 255, 256, 257, 1000, 4096, 5000} {
		whole := data[:n]
		for _, split := range []int{0, 1, n / 3, n / 2, n - 1, n} {
			if split < 0 || split > n {
				continue
			}
			a, b := whole[:split], whole[split:]
			got := crc24Combine(crc24(crc24Init, a), crc24(0, b), crc24XPow8(len(b)))
			if want := crc24Bitwise(crc24Init, whole); got != want {
				t.Fatalf("n=%d split=%d: combined %06x, want %06x", n, split, got, want)
			}
		}
	}
}
