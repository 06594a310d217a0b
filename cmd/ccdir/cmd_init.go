package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
)

type initOptions struct {
	name         string
	address      string
	listAddress  string
	algo         string
	noPassphrase bool
	operatorAddr string
	operatorKey  string
}

func newInitCmd(g *globals) *cobra.Command {
	var o initOptions
	cmd := &cobra.Command{
		Use:   "init --name NAME --address ADDR [--list-address ADDR] [--operator-email E --operator-key FILE] [--algo ed25519|rsa3072|rsa4096] [--passphrase-file F | --no-passphrase]",
		Short: "Create a new directory: home folder, directory key, signed ledger",
		Long: `Create a new directory in the home folder (--home, CCDIR_HOME): config.yaml,
the directory's OpenPGP key (keys/, mode 0600) and the database with a signed
genesis entry naming the directory and its key. init never touches an
existing home: the folder must not exist or be empty.

The key has a user ID for each of the directory's addresses, "NAME <ADDR>"
(the primary one) and, with --list-address, "NAME <LIST>", so that mail
clients find it by either address. Without --list-address the directory
has no list, and the key one user ID.

init also writes the key's revocation certificate, keys/directory.rev.asc
(0600): importing it (gpg --import) revokes the key, without the secret key
or its passphrase; it is what members are sent if the key is lost or
stolen. Store it offline and delete it from the host: anyone who reads it
can revoke the directory key.

The key expires key.lifetime (default 2y; 0: never) after it is made;
ccdir report reminds the operator before, and ccdir key update-uids
--renew extends it.

The key is protected by the passphrase in --passphrase-file (CCDIR_PASSPHRASE_FILE),
whose path is recorded in config.yaml, or left unprotected with --no-passphrase.

--operator-email and --operator-key give the operator an address and a key
of their own (operator.address, operator.key; the key is kept in
keys/operator.pub.asc): the directory's mail for the operator (ccdir report)
goes there, encrypted to that key. The key must be usable and have a user
ID with that address. Set or replace them later with ccdir key import
--operator.

EXIT STATUS
  0 created, 1 error (nothing is left behind), 2 usage`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInit(cmd.Context(), o, g)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "name of the directory, e.g. \"TLD-OPS contact directory\" (required)")
	f.StringVar(&o.address, "address", "", "mail address of the directory, for commands (required)")
	f.StringVar(&o.listAddress, "list-address", "", "mail address of the encrypted alert list")
	f.StringVar(&o.algo, "algo", string(keys.AlgoEd25519), "directory key algorithm: ed25519, rsa3072 or rsa4096")
	f.BoolVar(&o.noPassphrase, "no-passphrase", false, "store the directory key without a passphrase")
	f.StringVar(&o.operatorAddr, "operator-email", "", "the operator's own mail address (operator.address), with --operator-key")
	f.StringVar(&o.operatorKey, "operator-key", "", "file holding the operator's public key (operator.key), with --operator-email")
	return cmd
}

// fileConfig is what init writes to config.yaml.
type fileConfig struct {
	Directory struct {
		Name        string `yaml:"name"`
		Address     string `yaml:"address"`
		ListAddress string `yaml:"list_address,omitempty"`
	} `yaml:"directory"`
	Key struct {
		Algo           string `yaml:"algo"`
		PassphraseFile string `yaml:"passphrase_file,omitempty"`
	} `yaml:"key"`
	Limits struct {
		SecurityContacts int `yaml:"security_contacts"`
	} `yaml:"limits"`
	Operator *struct {
		Address string `yaml:"address"`
		Key     string `yaml:"key"`
	} `yaml:"operator,omitempty"`
}

func runInit(ctx context.Context, o initOptions, g *globals) (err error) {
	if o.name == "" || o.address == "" {
		return usagef("init needs --name and --address")
	}
	name, err := directory.NormalizeName(o.name, "name")
	if err != nil {
		return err
	}
	addr, err := directory.NormalizeEmail(o.address)
	if err != nil {
		return err
	}
	var list string
	if o.listAddress != "" {
		if list, err = directory.NormalizeEmail(o.listAddress); err != nil {
			return err
		}
		if list == addr {
			return usagef("--list-address must differ from --address")
		}
	}
	algo, err := keys.ParseAlgo(o.algo)
	if err != nil {
		return &usageError{err}
	}
	var opAddr string
	var opPub *keys.Public
	var opKey *directory.Key
	if (o.operatorAddr == "") != (o.operatorKey == "") {
		return usagef("--operator-email and --operator-key go together")
	}
	if o.operatorAddr != "" {
		if opAddr, err = directory.NormalizeEmail(o.operatorAddr); err != nil {
			return fmt.Errorf("--operator-email: %w", err)
		}
		own := directory.Info{Address: addr, ListAddress: list}
		if a := own.OwnAddress(opAddr); a != "" {
			return withHint(fmt.Errorf("%s is the directory's own address %s, not the operator's", opAddr, a), "the operator needs a mailbox of their own")
		}
		if opPub, opKey, _, err = readOperatorKey(o.operatorKey, opAddr, false, g.now()); err != nil {
			return err
		}
	}
	passFile := g.text("key.passphrase_file")
	var pass []byte
	switch {
	case passFile != "" && o.noPassphrase:
		return usagef("give either --passphrase-file or --no-passphrase, not both")
	case passFile == "" && !o.noPassphrase:
		return &usageError{withHint(errors.New("the directory key needs a passphrase file, or --no-passphrase"),
			"ccdir init --passphrase-file FILE ... (FILE holds the passphrase), or --no-passphrase")}
	case passFile != "":
		if pass, err = readPassphrase(passFile); err != nil {
			return err
		}
		if passFile, err = filepath.Abs(passFile); err != nil {
			return err
		}
	}

	// The home must not exist, or be an empty folder.
	if entries, err := os.ReadDir(g.home); err == nil {
		if len(entries) > 0 {
			return withHint(fmt.Errorf("home %s already exists and is not empty", g.home),
				"ccdir init never touches an existing home; choose another --home")
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return withHint(fmt.Errorf("home %s: %w", g.home, err), "choose another --home")
	}

	// The key first: it is the step most likely to refuse the input.
	// One user ID per address the directory answers on (keyAddresses).
	sec, err := keys.GenerateKey(keys.KeySpec{Name: name, Emails: keyAddresses(directory.Info{Address: addr, ListAddress: list}),
		Algo: algo, Lifetime: g.duration("key.lifetime"), Now: g.now(), Rand: rand.Reader})
	if err != nil {
		return fmt.Errorf("generate the directory key: %w", err)
	}

	// Build everything in a temporary folder beside the home, then rename
	// it into place: a failure leaves nothing behind, not even the parent
	// folders made for it.
	parent := filepath.Dir(g.home)
	made, err := mkdirAll(parent)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil && made != "" {
			os.RemoveAll(made)
		}
	}()
	tmp, err := os.MkdirTemp(parent, ".ccdir-init-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o700); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(tmp, keysDir), 0o700); err != nil {
		return err
	}
	if err := sec.WriteFile(filepath.Join(tmp, keysDir, secretName), pass); err != nil {
		return err
	}
	pub, err := sec.Public().Armored()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(tmp, keysDir, publicName), pub, 0o644); err != nil {
		return err
	}
	// The revocation certificate: the way out if the secret key is lost
	// or stolen with its passphrase, usable without either. It is made
	// now, while the key is at hand, and belongs offline.
	rev, err := sec.RevocationCertificate(g.now())
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(tmp, keysDir, revocationName), rev, 0o600); err != nil {
		return err
	}
	if err := createOutboxKey(filepath.Join(tmp, keysDir, outboxKeyName)); err != nil {
		return err
	}
	if opPub != nil {
		if err := checkNotDirectoryKey(opPub, directory.Info{KeyFingerprint: sec.Fingerprint(), PublicKey: string(pub)}); err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(tmp, keysDir, operatorKeyName), []byte(opKey.Armored), 0o644); err != nil {
			return err
		}
	}
	var cfg fileConfig
	cfg.Directory.Name, cfg.Directory.Address, cfg.Directory.ListAddress = name, addr, list
	cfg.Key.Algo, cfg.Key.PassphraseFile = string(algo), passFile
	cfg.Limits.SecurityContacts = directory.DefaultMaxSecurityContacts
	if opPub != nil {
		cfg.Operator = &struct {
			Address string `yaml:"address"`
			Key     string `yaml:"key"`
		}{opAddr, opPub.Fingerprint}
	}
	y, err := yaml.Marshal(&cfg)
	if err != nil {
		return err
	}
	y = append([]byte("# ccdir configuration: ccdir config show prints every key with its value and source; docs/configuration.md describes them.\n"), y...)
	if err := writeFileAtomic(filepath.Join(tmp, configName), y, 0o600); err != nil {
		return err
	}
	info := directory.Info{Name: name, Address: addr, ListAddress: list, KeyFingerprint: sec.Fingerprint(), PublicKey: string(pub)}
	s, err := directory.Create(ctx, filepath.Join(tmp, dbName), info, directory.Options{Signer: sec, Now: g.now, Migrations: migrations(), Genesis: g.operatorActor()})
	if err != nil {
		return err
	}
	head, err := s.Head(ctx)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// os.Rename refuses to replace a folder, even an empty one: remove
	// the empty home first (Remove fails if something appeared in it).
	if err := os.Remove(g.home); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return withHint(fmt.Errorf("home %s: %w", g.home, err), "ccdir init never touches an existing home; choose another --home")
	}
	if err := os.Rename(tmp, g.home); err != nil {
		return fmt.Errorf("move the new home into place: %w", err)
	}
	revPath := filepath.Join(g.home, keysDir, revocationName)
	if g.json {
		out := map[string]any{"home": g.home, "name": name, "address": addr, "list_address": list,
			"key_fingerprint": sec.Fingerprint(), "algo": algo, "serial": head.Serial, "head": head.Hash,
			"revocation_certificate": revPath, "key_expires": expiresText(sec.Expires(), time.RFC3339)}
		if opPub != nil {
			out["operator_address"], out["operator_key"] = opAddr, opPub.Fingerprint
		}
		return g.printJSON(out)
	}
	g.printf("created directory %s <%s> in %s\n", strconv.Quote(name), addr, g.home) // quoted, then printable: escaped once
	g.printf("directory key %s (%s)%s, %s\n", sec.Fingerprint(), algo, map[bool]string{true: ", passphrase-protected", false: ", no passphrase"}[pass != nil],
		keyExpiryText(sec.Expires(), g.now()))
	if opPub != nil {
		g.printf("operator %s, key %s\n", opAddr, opPub.Fingerprint)
	}
	g.printf("revocation certificate %s: it revokes the directory key without the passphrase;\n", revPath)
	g.printf("  store it offline (a printout, a USB stick in a safe), then delete it from this host\n")
	g.printf("ok %s\n", head)
	return nil
}

// mkdirAll makes dir and its missing parents (0700) and returns the
// topmost folder it made, "" if dir existed.
func mkdirAll(dir string) (string, error) {
	top := ""
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		top = d
		if filepath.Dir(d) == d {
			break
		}
	}
	if top == "" {
		return "", nil
	}
	return top, os.MkdirAll(dir, 0o700)
}
