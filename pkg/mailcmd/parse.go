package mailcmd

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/relay"
)

// Limits of the command language.
const (
	// MaxCommands is the most commands one mail may hold; a mail with more
	// is refused whole (the cap of inbound.ScanBlock).
	MaxCommands = inbound.MaxCommands
	// MaxLineBytes is the longest command line accepted
	// (inbound.MaxLineBytes).
	MaxLineBytes = inbound.MaxLineBytes
	// maxEcho caps how much of a line the reply quotes back.
	maxEcho = 120
	// maxErrEcho caps what the reply says of why a command failed (the
	// refusals quote what was sent, and name ids, keys and addresses).
	maxErrEcho = 400
	// minSearch is the shortest SEARCH text.
	minSearch = 2
	// maxSearch is the longest SEARCH text.
	maxSearch = 100
	// maxPhones is the most numbers SET PHONE takes.
	maxPhones = 8
)

// Verbs. SET commands have the field in the verb ("SET NAME").
const (
	VerbHelp          = "HELP"
	VerbList          = "LIST"
	VerbShow          = "SHOW"
	VerbSearch        = "SEARCH"
	VerbKey           = "KEY"
	VerbCall          = "CALL"
	VerbDigest        = "DIGEST"
	VerbWhoami        = "WHOAMI"
	VerbSetName       = "SET NAME"
	VerbSetPhone      = "SET PHONE"
	VerbSetEmergency  = "SET EMERGENCY-PHONE"
	VerbSetLanguages  = "SET LANGUAGES"
	VerbSetTimeZone   = "SET TIMEZONE"
	VerbSet24x7       = "SET 24X7"
	VerbSetEmail      = "SET EMAIL" // a pending change, never at once (Config.ChangeDelay)
	VerbKeyRotate     = "KEY-ROTATE"
	VerbKeyRefresh    = "KEY-REFRESH" // a newer copy of the registered key
	VerbAddContact    = "ADD-CONTACT"
	VerbRemoveContact = "REMOVE-CONTACT"
	VerbDryRun        = "DRY-RUN"
	VerbAck           = "ACK"                // acknowledge a list alert
	VerbAcks          = "ACKS"               // who acknowledged one's own alert
	VerbPong          = liveness.PongVerb    // answer a reachability check
	VerbVeto          = "VETO"               // stop a pending key or email change
	VerbConfirm       = liveness.ConfirmVerb // prove the new key of a pending KEY-ROTATE
	verbDirectory     = inbound.DirectoryVerb
	setVerbPrefix     = "SET "
)

// Command is one parsed command line. Only the fields its verb uses are
// set; values are in the directory's canonical form.
type Command struct {
	Line int    // 1-based line number in the signed text
	Text string // the line as written, cleaned for quoting (see Echo)
	Verb string // one of the Verb constants

	TLD         string   // SHOW, CALL, ADD-CONTACT, REMOVE-CONTACT: the A-label
	Email       string   // KEY, ADD-CONTACT, REMOVE-CONTACT
	Fingerprint string   // KEY by fingerprint, upper-case hex
	Query       string   // SEARCH
	Name        string   // SET NAME, ADD-CONTACT
	Phones      []string // SET PHONE (empty: none), SET EMERGENCY-PHONE (empty: none), ADD-CONTACT
	Languages   []string // SET LANGUAGES (empty: none)
	TimeZone    string   // SET TIMEZONE ("" : none)
	Yes         bool     // SET 24X7
	Alert       string   // ACK, ACKS: the alert id
	Token       string   // PONG, CONFIRM: the token, as written (case matters)
	Change      string   // VETO, CONFIRM: the id of a pending change
}

// Changes reports whether the command changes the directory.
func (c *Command) Changes() bool {
	return strings.HasPrefix(c.Verb, setVerbPrefix) || c.Verb == VerbKeyRotate || c.Verb == VerbKeyRefresh ||
		c.Verb == VerbAddContact || c.Verb == VerbRemoveContact
}

// String returns the command in canonical form; Parse reads it back as
// the same command.
func (c *Command) String() string {
	switch c.Verb {
	case VerbShow, VerbCall:
		return c.Verb + " " + c.TLD
	case VerbSearch:
		return c.Verb + " " + c.Query
	case VerbAck, VerbAcks:
		return c.Verb + " " + c.Alert
	case VerbPong:
		return c.Verb + " " + c.Token
	case VerbVeto:
		return c.Verb + " " + c.Change
	case VerbConfirm:
		return c.Verb + " " + c.Change + " " + c.Token
	case VerbSetEmail:
		return c.Verb + " " + c.Email
	case VerbKey:
		if c.Fingerprint != "" {
			return c.Verb + " " + c.Fingerprint
		}
		return c.Verb + " " + c.Email
	case VerbSetName:
		return c.Verb + " " + c.Name
	case VerbSetPhone, VerbSetEmergency:
		return c.Verb + " " + orNone(strings.Join(c.Phones, ", "))
	case VerbSetLanguages:
		return c.Verb + " " + orNone(strings.Join(c.Languages, ", "))
	case VerbSetTimeZone:
		return c.Verb + " " + orNone(c.TimeZone)
	case VerbSet24x7:
		if c.Yes {
			return c.Verb + " yes"
		}
		return c.Verb + " no"
	case VerbAddContact:
		return fmt.Sprintf("%s %s %s %s %s", c.Verb, c.TLD, c.Email, c.Phones[0], c.Name)
	case VerbRemoveContact:
		return c.Verb + " " + c.TLD + " " + c.Email
	}
	return c.Verb
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// Script is the parsed command block of a mail.
type Script struct {
	DryRun   bool      // DRY-RUN came first
	Commands []Command // in order, without DRY-RUN and DIRECTORY lines
	// Directories are the arguments of DIRECTORY lines (the binding that
	// inbound checks).
	Directories []string
}

// String returns the script in canonical form, one command per line.
func (s *Script) String() string {
	var b strings.Builder
	if s.DryRun {
		b.WriteString(VerbDryRun + "\n")
	}
	for _, d := range s.Directories {
		b.WriteString(verbDirectory + " " + d + "\n")
	}
	for i := range s.Commands {
		b.WriteString(s.Commands[i].String() + "\n")
	}
	return b.String()
}

// LineError is a command line that cannot run.
type LineError struct {
	Line int    // 1-based line number in the signed text
	Text string // the line, cleaned for quoting
	Msg  string // what is wrong, lowercase
}

func (e *LineError) Error() string {
	if e.Text == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("line %d: %q: %s", e.Line, e.Text, e.Msg)
}

// Parse reads the command block at the top of the signed text, as
// inbound.ScanBlock finds it (the block inbound's binding check read):
// leading blank lines are skipped, then one command per line until a
// blank line, a signature delimiter ("-- ") or a quoted line ("> ...").
// Verbs are case-insensitive. Every line that is not a valid command is
// reported; if any is, the caller must run none of the commands. The
// script holds the valid commands either way. Parse never fails on any
// input.
func Parse(text string) (*Script, []*LineError) {
	b := inbound.ScanBlock(text)
	s := &Script{Directories: b.Directories}
	var errs []*LineError
	for _, l := range b.Lines {
		echo := Echo(l.Text)
		if l.TooLong {
			errs = append(errs, &LineError{Line: l.No, Text: echo, Msg: fmt.Sprintf("line longer than %d bytes", MaxLineBytes)})
		}
		if l.No == b.TooMany {
			errs = append(errs, &LineError{Line: l.No, Msg: fmt.Sprintf("more than %d commands in one mail: none was run; split them over several mails", MaxCommands)})
			break
		}
		if l.TooLong {
			continue
		}
		if l.Directory {
			if _, ok := inbound.IsDirectoryLine(l.Text); !ok {
				errs = append(errs, &LineError{Line: l.No, Text: echo, Msg: "DIRECTORY takes the directory's address"})
			}
			continue
		}
		cmd, err := parseLine(l.Text)
		if err != nil {
			errs = append(errs, &LineError{Line: l.No, Text: echo, Msg: err.Error()})
			continue
		}
		cmd.Line, cmd.Text = l.No, echo
		if cmd.Verb == VerbDryRun {
			if l.Seq != 1 {
				errs = append(errs, &LineError{Line: l.No, Text: echo, Msg: "DRY-RUN must be the first command"})
				continue
			}
			s.DryRun = true
			continue
		}
		s.Commands = append(s.Commands, cmd)
	}
	return s, errs
}

// Echo returns a line as the reply may quote it: control and format
// characters replaced, cut to a bounded length.
func Echo(s string) string { return echo(s, maxEcho) }

// echo is Echo with a cap of max characters.
func echo(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			b.WriteString("…")
			break
		}
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' {
			r = '?'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// parseLine parses one non-blank, trimmed line.
func parseLine(line string) (Command, error) {
	fields := strings.Fields(line)
	verb := strings.ToUpper(fields[0])
	args := fields[1:]
	rest := strings.Join(args, " ")
	c := Command{Verb: verb}
	noArgs := func() (Command, error) {
		if len(args) > 0 {
			return c, fmt.Errorf("%s takes no argument", verb)
		}
		return c, nil
	}
	switch verb {
	case VerbHelp, VerbList, VerbDigest, VerbWhoami, VerbKeyRotate, VerbKeyRefresh, VerbDryRun:
		return noArgs()
	case VerbShow, VerbCall:
		if len(args) != 1 {
			return c, fmt.Errorf("%s takes one ccTLD, such as: %s pt", verb, verb)
		}
		t, err := directory.LookupCCTLD(args[0])
		if err != nil {
			return c, err
		}
		c.TLD = t.Code
		return c, nil
	case VerbAck, VerbAcks:
		if len(args) != 1 || relay.NormalizeID(args[0]) == "" {
			return c, fmt.Errorf("%s takes an alert id of 8 letters and digits, as shown in the alert's subject", verb)
		}
		c.Alert = relay.NormalizeID(args[0])
		return c, nil
	case VerbPong:
		if len(args) != 1 || !liveness.ValidToken(args[0]) {
			return c, fmt.Errorf("PONG takes the token of a reachability check (letters, digits, - and _), as its line in the check says: copy that line")
		}
		c.Token = args[0]
		return c, nil
	case VerbVeto:
		if len(args) != 1 || !liveness.ValidChangeID(strings.ToLower(args[0])) {
			return c, fmt.Errorf("VETO takes the id of a pending change, as its notice says (VETO chg-...)")
		}
		c.Change = strings.ToLower(args[0])
		return c, nil
	case VerbConfirm:
		if len(args) != 2 || !liveness.ValidChangeID(strings.ToLower(args[0])) || !liveness.ValidToken(args[1]) {
			return c, fmt.Errorf("CONFIRM takes the id of a pending key change and its token, as the line in the challenge sent to the new key says: copy that line")
		}
		c.Change, c.Token = strings.ToLower(args[0]), args[1]
		return c, nil
	case VerbSearch:
		n := utf8.RuneCountInString(rest)
		if n < minSearch || n > maxSearch {
			return c, fmt.Errorf("SEARCH takes a text of %d to %d characters", minSearch, maxSearch)
		}
		if !cleanText(rest) {
			return c, fmt.Errorf("SEARCH text contains control characters")
		}
		c.Query = rest
		return c, nil
	case VerbKey:
		if len(args) == 0 {
			return c, fmt.Errorf("KEY takes an email address or a key fingerprint")
		}
		if len(args) == 1 && strings.Contains(args[0], "@") {
			e, err := directory.NormalizeEmail(args[0])
			if err != nil {
				return c, err
			}
			c.Email = e
			return c, nil
		}
		fpr, ok := parseFingerprint(strings.Join(args, ""))
		if !ok {
			return c, fmt.Errorf("KEY takes an email address or a fingerprint of 40 or 64 hex digits")
		}
		c.Fingerprint = fpr
		return c, nil
	case "SET":
		if len(args) == 0 {
			return c, fmt.Errorf("SET takes a field (NAME, PHONE, EMERGENCY-PHONE, LANGUAGES, TIMEZONE, 24X7, EMAIL) and a value")
		}
		return parseSet(strings.ToUpper(args[0]), strings.Join(args[1:], " "))
	case VerbAddContact:
		// ADD-CONTACT <tld> <email> <phone> <name…>
		if len(args) < 4 {
			return c, fmt.Errorf("ADD-CONTACT takes a ccTLD, an email address, a phone number (+ and digits, no spaces) and a name")
		}
		t, err := directory.LookupCCTLD(args[0])
		if err != nil {
			return c, err
		}
		e, err := directory.NormalizeEmail(args[1])
		if err != nil {
			return c, err
		}
		p, err := directory.NormalizePhone(args[2])
		if err != nil {
			return c, err
		}
		name, err := directory.NormalizeName(strings.Join(args[3:], " "), "name")
		if err != nil {
			return c, err
		}
		c.TLD, c.Email, c.Phones, c.Name = t.Code, e, []string{p}, name
		return c, nil
	case VerbRemoveContact:
		if len(args) != 2 {
			return c, fmt.Errorf("REMOVE-CONTACT takes a ccTLD and an email address")
		}
		t, err := directory.LookupCCTLD(args[0])
		if err != nil {
			return c, err
		}
		e, err := directory.NormalizeEmail(args[1])
		if err != nil {
			return c, err
		}
		c.TLD, c.Email = t.Code, e
		return c, nil
	}
	return c, fmt.Errorf("unknown command %s; send HELP for the list", Echo(fields[0]))
}

func parseSet(field, value string) (Command, error) {
	c := Command{Verb: setVerbPrefix + field}
	none := strings.EqualFold(value, "none")
	if value == "" {
		return c, fmt.Errorf("SET %s takes a value", Echo(field))
	}
	var err error
	switch c.Verb {
	case VerbSetName:
		c.Name, err = directory.NormalizeName(value, "name")
	case VerbSetPhone, VerbSetEmergency:
		if none {
			return c, nil
		}
		list := strings.Split(value, ",")
		if len(list) > maxPhones {
			return c, fmt.Errorf("SET PHONE takes at most %d numbers", maxPhones)
		}
		for _, p := range list {
			n, err := directory.NormalizePhone(p)
			if err != nil {
				return c, err
			}
			if !contains(c.Phones, n) {
				c.Phones = append(c.Phones, n)
			}
		}
		if c.Verb == VerbSetEmergency && len(c.Phones) > 1 {
			return c, fmt.Errorf("SET EMERGENCY-PHONE takes one number")
		}
	case VerbSetLanguages:
		if none {
			return c, nil
		}
		c.Languages, err = directory.NormalizeLanguages(strings.FieldsFunc(value, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }))
	case VerbSetTimeZone:
		if none {
			return c, nil
		}
		c.TimeZone, err = directory.NormalizeTimeZone(value)
	case VerbSetEmail:
		c.Email, err = directory.NormalizeEmail(value)
	case VerbSet24x7:
		switch strings.ToLower(value) {
		case "yes", "on", "true":
			c.Yes = true
		case "no", "off", "false":
		default:
			return c, fmt.Errorf("SET 24X7 takes yes or no")
		}
	default:
		return c, fmt.Errorf("unknown field SET %s; the fields are NAME, PHONE, EMERGENCY-PHONE, LANGUAGES, TIMEZONE, 24X7, EMAIL", Echo(field))
	}
	return c, err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func cleanText(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return false
		}
	}
	return true
}

// parseFingerprint accepts 40 or 64 hex digits, with an optional 0x prefix.
func parseFingerprint(s string) (string, bool) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if len(s) != 40 && len(s) != 64 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return "", false
		}
	}
	return strings.ToUpper(s), true
}
