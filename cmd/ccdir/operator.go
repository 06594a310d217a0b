package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"
	"go.yaml.in/yaml/v3"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/digest"
	"github.com/ccdir/ccdir/pkg/export"
	"github.com/ccdir/ccdir/pkg/fanout"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// operatorKeyName is the file in HOME/keys that holds the operator's
// public key, in the minimal form a contact's key is kept in
// (keys.Public.Armored). Which key it must be is operator.key, a
// fingerprint: config show says which key the directory's mail to the
// operator is encrypted to, and a file swapped in the home is refused,
// not used (as the directory's public key is checked against its secret
// key).
const operatorKeyName = "operator.pub.asc"

// operatorIdentity is the operator's own address and registered key:
// where the directory's mail for the operator goes (ccdir report,
// escalations), always encrypted to Key and signed by the directory key,
// never plain. It is never a contact's nor the directory's own.
type operatorIdentity struct {
	Address string
	Key     *directory.Key // minimal form, as a contact's key is kept
}

// Contact is the operator as a recipient of a personal message: its
// address and key (no roles: the operator is not a contact).
func (o *operatorIdentity) Contact() directory.Contact {
	k := *o.Key
	return directory.Contact{Email: o.Address, Name: "operator", Key: &k}
}

// errNoOperator: operator.address or operator.key is not set.
var errNoOperator = errors.New("the operator has no address and key of their own")

// operatorHint says how to give the operator an address and a key.
const operatorHint = "set them with: ccdir key import --operator --email ADDRESS FILE (FILE: the operator's public key, as gpg --export --armor writes it)"

// operator returns the operator's address and registered key
// (operator.address, operator.key and HOME/keys/operator.pub.asc), or an
// error saying what is missing and how to set it. It refuses an address
// that is one of the directory's (info.OwnAddress), a key that is the
// directory's own or shares a subkey with it, and a key file that holds
// another key than operator.key names.
func (g *globals) operator(info directory.Info) (*operatorIdentity, error) {
	addr, fpr := g.text("operator.address"), g.text("operator.key")
	if addr == "" || fpr == "" {
		missing := "operator.address and operator.key are"
		switch {
		case addr != "":
			missing = "operator.key is"
		case fpr != "":
			missing = "operator.address is"
		}
		return nil, withHint(fmt.Errorf("%w: %s not set", errNoOperator, missing), operatorHint)
	}
	if own := info.OwnAddress(addr); own != "" {
		return nil, withHint(fmt.Errorf("operator.address %s is the directory's own address %s", addr, own),
			"the operator needs a mailbox of their own: ccdir key import --operator --email ADDRESS FILE")
	}
	pub, err := g.operatorKeyFile(fpr)
	if err != nil {
		return nil, err
	}
	if err := checkNotDirectoryKey(pub, info); err != nil {
		return nil, err
	}
	k, err := export.KeyOf(pub)
	if err != nil {
		return nil, err
	}
	return &operatorIdentity{Address: addr, Key: k}, nil
}

// operatorKeyFile reads HOME/keys/operator.pub.asc, which must hold the
// key with fingerprint fpr (operator.key).
func (g *globals) operatorKeyFile(fpr string) (*keys.Public, error) {
	name := g.path(keysDir, operatorKeyName)
	b, err := readCapped(name, maxKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, withHint(fmt.Errorf("operator.key is %s, but %s does not exist", fpr, name), operatorHint)
	}
	if err != nil {
		return nil, fmt.Errorf("operator key: %w", err)
	}
	pub, err := keys.ParsePublicOne(b)
	if err != nil {
		return nil, withHint(fmt.Errorf("operator key %s: %w", name, err), operatorHint)
	}
	if !strings.EqualFold(pub.Fingerprint, fpr) {
		return nil, withHint(fmt.Errorf("%s holds key %s, but operator.key is %s", name, pub.Fingerprint, fpr),
			"someone replaced the file, or operator.key was changed by hand; import the operator's key again: ccdir key import --operator FILE")
	}
	return pub, nil
}

// operatorReserved is the operator's address and key fingerprints as
// far as they are set (directory.Options.Operator): what no contact may
// have. A key file that cannot be read reserves operator.key's
// fingerprint still.
func (g *globals) operatorReserved() directory.Reserved {
	r := directory.Reserved{Email: g.text("operator.address")}
	if fpr := g.text("operator.key"); fpr != "" {
		r.Fingerprints = []string{fpr}
		if pub, err := g.operatorKeyFile(fpr); err == nil {
			r.Fingerprints = pub.Fingerprints()
		}
	}
	return r
}

// checkNotDirectoryKey refuses pub as the operator's key if it is the
// directory's own or shares a key (a subkey) with it.
func checkNotDirectoryKey(pub *keys.Public, info directory.Info) error {
	ours := []string{info.KeyFingerprint}
	if fprs, err := keys.Fingerprints(info.PublicKey); err == nil {
		ours = fprs
	}
	for _, f := range pub.Fingerprints() {
		for _, o := range ours {
			if strings.EqualFold(f, o) {
				return withHint(fmt.Errorf("key %s is the directory's own key (or shares the key %s with it), not the operator's", pub.Fingerprint, f),
					"the operator needs a key of their own; the directory's key signs the ledger and the directory's mail")
			}
		}
	}
	return nil
}

// checkOperatorFree refuses addr and pub as the operator's when a
// contact has that email or a key sharing a key with pub: the operator
// is never a contact (directory.Options.Operator keeps it so).
func checkOperatorFree(addr string, pub *keys.Public, info directory.Info, contacts []directory.Contact) error {
	if own := info.OwnAddress(addr); own != "" {
		return withHint(fmt.Errorf("%s is the directory's own address %s, not the operator's", addr, own), "the operator needs a mailbox of their own")
	}
	if err := checkNotDirectoryKey(pub, info); err != nil {
		return err
	}
	mine := map[string]bool{}
	for _, f := range pub.Fingerprints() {
		mine[strings.ToUpper(f)] = true
	}
	for _, c := range contacts {
		if strings.EqualFold(c.Email, addr) {
			return withHint(fmt.Errorf("%s is the address of contact %s, not the operator's", addr, c.Name), "the operator needs a mailbox of their own, apart from the contacts'")
		}
		if c.Key == nil {
			continue
		}
		theirs := []string{c.Key.Fingerprint}
		if fprs, err := keys.Fingerprints(c.Key.Armored); err == nil {
			theirs = fprs
		}
		for _, f := range theirs {
			if mine[strings.ToUpper(f)] {
				return withHint(fmt.Errorf("key %s is (or shares the key %s with) the key of contact %s, not the operator's", pub.Fingerprint, strings.ToUpper(f), c.Email),
					"the operator needs a key of their own, apart from the contacts'")
			}
		}
	}
	return nil
}

// operatorMail is one message of the directory to the operator: signed by
// the directory key and encrypted to the operator's key in one OpenPGP
// message (fanout.Personal), to operator.address only.
type operatorMail struct {
	Kind, Ref string // the outbox's
	Subject   string // the protected (real) Subject
	Body      string
	MessageID string // local part; the directory's domain is added
}

// message builds m for o. Errors about the operator's key wrap the keys
// sentinels (keys.Unusable): an operator key that expired or was revoked
// gets nothing, and the caller says so.
func (o *operatorIdentity) message(sec *keys.Secret, info directory.Info, outerSubject string, m operatorMail, now time.Time) (outbox.Message, error) {
	pub, err := fanout.NewKeys().Public(o.Key, now)
	if err != nil {
		return outbox.Message{}, fmt.Errorf("the operator's key %s: %w", o.Key.Fingerprint, err)
	}
	if outerSubject == "" {
		outerSubject = digest.DefaultSubject
	}
	_, domain, _ := strings.Cut(info.Address, "@")
	p := &fanout.Personal{Kind: m.Kind, Ref: m.Ref, Envelope: info.Address,
		From:    mail.Address{Name: info.Name, Address: info.Address},
		To:      mail.Address{Address: o.Address},
		Subject: m.Subject, OuterSubject: outerSubject, Date: now, MessageID: m.MessageID + "@" + domain,
		Parts: []pgpmime.Part{{ContentType: "text/plain", Body: []byte(m.Body)}},
		Extra: []pgpmime.Field{{Key: "Auto-Submitted", Value: "auto-generated"}}}
	return p.Message(sec, pub)
}

// configFileWith is the YAML config file path (created if missing) with
// keys (section.name) set to values, keeping its other keys and
// comments, as a write of it (0600; to the file a symlink names). Nothing
// is written: writeFilesAtomic writes it, alone or with other files.
func configFileWith(path string, set [][2]string) (fileWrite, error) {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fileWrite{}, err
	}
	var doc yaml.Node
	if len(bytes.TrimSpace(b)) > 0 {
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return fileWrite{}, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fileWrite{}, fmt.Errorf("config %s is not a mapping of sections", path)
	}
	for _, kv := range set {
		section, name, _ := strings.Cut(kv[0], ".")
		sec := yamlChild(root, section, yaml.MappingNode)
		if sec.Kind != yaml.MappingNode {
			return fileWrite{}, fmt.Errorf("config %s: %s is not a section", path, section)
		}
		v := yamlChild(sec, name, yaml.ScalarNode)
		*v = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: kv[1], HeadComment: v.HeadComment, LineComment: v.LineComment}
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return fileWrite{}, err
	}
	return fileWrite{path: path, data: out, perm: 0o600}, nil
}

// yamlChild is the value of key in the mapping m, added (of kind) if
// missing.
func yamlChild(m *yaml.Node, key string, kind yaml.Kind) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if strings.EqualFold(m.Content[i].Value, key) {
			return m.Content[i+1]
		}
	}
	v := &yaml.Node{Kind: kind}
	if kind == yaml.MappingNode {
		v.Tag = "!!map"
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
	return v
}

// readOperatorKey reads the one public key in file as the operator's
// key for addr: usable now and, unless anyUID, with a user ID for addr
// (export.ContactKey, the check of a contact's key). It returns the key
// and its minimal form; warn says it was taken without such a user ID.
func readOperatorKey(file, addr string, anyUID bool, now time.Time) (pub *keys.Public, k *directory.Key, warn string, err error) {
	b, err := readCapped(file, maxKeyFile)
	if err != nil {
		return nil, nil, "", err
	}
	pubs, err := keys.ParsePublic(b)
	if err != nil {
		return nil, nil, "", fmt.Errorf("%s: %w", file, err)
	}
	if len(pubs) != 1 {
		return nil, nil, "", fmt.Errorf("%s holds %d keys; the operator's key file must hold one", file, len(pubs))
	}
	k, warn, err = contactKey(pubs[0], addr, anyUID, now)
	if err != nil {
		return nil, nil, "", err
	}
	return pubs[0], k, warn, nil
}

// runOperatorKeyImport is key import --operator: the operator's own key
// (and, with --email, address), written to keys/operator.pub.asc and the
// config file.
func runOperatorKeyImport(ctx context.Context, o keyImportOptions, g *globals, file string) error {
	if len(o.replace) > 0 {
		return usagef("--replace names contacts; --operator replaces the operator's key without it")
	}
	oldAddr, oldFpr := g.text("operator.address"), g.text("operator.key")
	addr := oldAddr
	if o.email != "" {
		var err error
		if addr, err = directory.NormalizeEmail(o.email); err != nil {
			return fmt.Errorf("--email: %w", err)
		}
	}
	if addr == "" {
		return &usageError{withHint(errors.New("the operator has no address yet (operator.address)"),
			"give it with: ccdir key import --operator --email ADDRESS %s", file)}
	}
	now := g.now()
	pub, k, warn, err := readOperatorKey(file, addr, o.anyUID, now)
	if err != nil {
		return err
	}
	s, err := g.openRead(ctx)
	if err != nil {
		return err
	}
	snap, err := s.Snapshot(ctx)
	s.Close()
	if err != nil {
		return err
	}
	if err := checkOperatorFree(addr, pub, snap.Info, snap.Contacts); err != nil {
		return err
	}
	if warn != "" {
		g.warnf("%s", warn)
	}
	what := "key " + pub.Fingerprint
	switch {
	case oldFpr == "":
	case !strings.EqualFold(oldFpr, pub.Fingerprint):
		what = fmt.Sprintf("key replaced: %s → %s", oldFpr, pub.Fingerprint)
	default:
		// The same key: a newer copy is merged into the registered one.
		if reg, err := g.operatorKeyFile(oldFpr); err == nil {
			merged, err := reg.Refresh(pub)
			switch {
			case errors.Is(err, keys.ErrNotNewer):
				if addr == oldAddr {
					return g.unchanged(fmt.Sprintf("unchanged: operator %s, key %s", addr, pub.Fingerprint))
				}
				what = "key " + pub.Fingerprint + " (unchanged)"
				k = nil
			case err != nil:
				return fmt.Errorf("%s: %w", file, err)
			default:
				if k, err = export.KeyOf(merged); err != nil {
					return err
				}
				what = "key " + pub.Fingerprint + " refreshed"
			}
		}
	}
	if addr != oldAddr && oldAddr != "" {
		what = fmt.Sprintf("address %s → %s, %s", oldAddr, addr, what)
	}
	// The key file and the config that names its key change together or
	// not at all: a config that cannot be written leaves the key file as
	// it was, never holding a key the config does not name.
	cfg, err := configFileWith(g.configFile, [][2]string{{"operator.address", addr}, {"operator.key", pub.Fingerprint}})
	if err != nil {
		return err
	}
	writes := []fileWrite{cfg}
	if k != nil {
		writes = []fileWrite{{path: g.path(keysDir, operatorKeyName), data: []byte(k.Armored), perm: 0o644}, cfg}
	}
	if err := writeFilesAtomic(writes...); err != nil {
		return err
	}
	for _, key := range []string{"operator.address", "operator.key"} {
		if src := g.config[key].source; src.kind == fromEnv || src.kind == fromFlag {
			g.warnf("%s is set by %s, which wins over %s: unset it, or this import does not count", key, src.name, g.configFile)
		}
	}
	if g.json {
		return g.printJSON(map[string]any{"result": "operator " + addr + ": " + what, "operator_address": addr, "operator_key": pub.Fingerprint, "previous_key": oldFpr})
	}
	g.printf("operator %s: %s (written to %s)\n", addr, what, g.configFile)
	return nil
}

// operatorActor is the actor of the changes made at this CLI: the
// operator named by operator.name (CCDIR_OPERATOR), else by the login
// name; directory.Operator (plain "operator") only when neither gives a
// name that may name one.
func (g *globals) operatorActor() directory.Actor {
	name := g.text("operator.name")
	if name == "" {
		name = loginName()
	}
	if name == "" {
		return directory.Operator
	}
	a, err := directory.OperatorActor(name)
	if err != nil {
		g.warnf("the login name %q cannot name the operator in the ledger (%v); set operator.name or CCDIR_OPERATOR", name, err)
		return directory.Operator
	}
	return a
}

// loginName is the name of the user running ccdir: the system's, else
// LOGNAME or USER.
func loginName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	for _, v := range []string{"LOGNAME", "USER"} {
		if n := os.Getenv(v); n != "" {
			return n
		}
	}
	return ""
}
