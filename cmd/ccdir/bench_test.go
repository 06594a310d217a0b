package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/internal/benchmem"
	"github.com/ccdir/ccdir/keys"
)

// initHome runs the real ccdir init into dir.
func initHome(b *testing.B, dir string) {
	b.Helper()
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"--home", dir, "init", "--name", "Bench", "--address", "ccdir@bench.example", "--no-passphrase"},
		strings.NewReader(""), io.Discard, &stderr)
	if code != 0 {
		b.Fatalf("init: %s", stderr.String())
	}
}

// BenchmarkImport1000 imports 1,000 contacts of 250 ccTLDs, each with its
// own Ed25519 key, through the real `ccdir import FILE.csv --keys BUNDLE`:
// parse the CSV and the bundle, check every key, one signed ledger entry
// per member and contact, one transaction.
func BenchmarkImport1000(b *testing.B) {
	const n = 1000
	dir := b.TempDir()
	csvPath, bundlePath := filepath.Join(dir, "contacts.csv"), filepath.Join(dir, "keys.asc")
	writeImportFixture(b, n, csvPath, bundlePath)
	i := 0
	for b.Loop() {
		b.StopTimer()
		home := filepath.Join(dir, fmt.Sprintf("home%d", i))
		i++
		initHome(b, home)
		b.StartTimer()
		var stderr bytes.Buffer
		code := run(context.Background(), []string{"--home", home, "import", csvPath, "--keys", bundlePath},
			strings.NewReader(""), io.Discard, &stderr)
		if code != 0 {
			b.Fatalf("import: %s", stderr.String())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/n, "µs/contact")
}

func writeImportFixture(b *testing.B, n int, csvPath, bundlePath string) {
	var csv, bundle bytes.Buffer
	csv.WriteString("tld,org,name,email,phones,role,languages,timezone,24x7\n")
	all := directory.CCTLDs()
	var ascii []directory.CCTLD
	for _, t := range all {
		if t.Kind != "idn" && len(ascii) < n/4 {
			ascii = append(ascii, t)
		}
	}
	rng := rand.NewChaCha8([32]byte{1})
	now := time.Now().Add(-time.Hour)
	for i := range n {
		t := ascii[i%len(ascii)]
		role := "security"
		if i/len(ascii) >= 3 {
			role = "admin"
		}
		email := fmt.Sprintf("contact%04d@%s.example", i, t.Code)
		fmt.Fprintf(&csv, "%s,Registry of %s,Contact %d,%s,+351 21 %03d %04d,%s,en;pt,Europe/Lisbon,yes\n",
			t.Code, t.Code, i, email, i%1000, i, role)
		sec, err := keys.Generate(fmt.Sprintf("Contact %d", i), email, keys.AlgoEd25519, now, rng)
		if err != nil {
			b.Fatal(err)
		}
		pub, err := sec.Public().Armored()
		if err != nil {
			b.Fatal(err)
		}
		bundle.Write(pub)
	}
	if err := os.WriteFile(csvPath, csv.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(bundlePath, bundle.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkVerify replays ledgers of 1,000 and 10,000 entries through the
// real `ccdir verify` (hash chain, one OpenPGP signature check per entry,
// replay into a fresh database, row-by-row comparison). The state is the
// same size for both (100 contacts, updated over and over), so the
// peak-heap metric shows whether memory grows with the ledger.
func BenchmarkVerify(b *testing.B) {
	for _, entries := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("entries=%d", entries), func(b *testing.B) {
			home := filepath.Join(b.TempDir(), "home")
			initHome(b, home)
			growLedger(b, home, entries)
			var peak uint64
			for b.Loop() {
				var stdout, stderr bytes.Buffer
				var code int
				p := benchmem.PeakHeap(func() {
					code = run(context.Background(), []string{"--home", home, "verify"}, strings.NewReader(""), &stdout, &stderr)
				})
				if code != 0 || !strings.HasPrefix(stdout.String(), fmt.Sprintf("ok serial %d ", entries)) {
					b.Fatalf("verify: %d %s %s", code, stdout.String(), stderr.String())
				}
				peak = max(peak, p)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(entries), "µs/entry")
		})
	}
}

// growLedger brings the home's ledger to n entries: 10 members, 100
// contacts, then phone changes.
func growLedger(b *testing.B, home string, n int) {
	b.Helper()
	ctx := context.Background()
	sec, err := keys.ReadSecretFile(filepath.Join(home, keysDir, secretName), nil)
	if err != nil {
		b.Fatal(err)
	}
	s, err := directory.Open(ctx, filepath.Join(home, dbName), directory.Options{Signer: sec, MaxSecurityContacts: 100, Migrations: migrations()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	tlds := []string{"pt", "br", "nl", "jp", "de", "uk", "fr", "ca", "cl", "mx"}
	_, err = s.Update(ctx, directory.Operator, func(tx *directory.Tx) error {
		serial := 1
		for _, t := range tlds {
			if _, err := tx.AddMember(directory.Member{TLD: t, Org: "Registry " + t}); err != nil {
				return err
			}
			serial++
		}
		for i := 0; i < 100; i++ {
			_, err := tx.AddContact(directory.Contact{Email: fmt.Sprintf("c%d@%s.example", i, tlds[i%10]), Name: fmt.Sprintf("Contact %d", i),
				Phones: []directory.Phone{{Number: "+351212345678"}}, Roles: []directory.Role{{TLD: tlds[i%10], Role: "admin"}}})
			if err != nil {
				return err
			}
			serial++
		}
		for i := 0; serial < n; i++ {
			_, err := tx.UpdateContact(fmt.Sprintf("c%d@%s.example", i%100, tlds[i%10]), func(c *directory.Contact) error {
				c.Phones = []directory.Phone{{Number: fmt.Sprintf("+35121%07d", 2000000+i)}}
				return nil
			})
			if err != nil {
				return err
			}
			serial++
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
