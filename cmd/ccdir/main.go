// Command ccdir keeps the signed contact directory of a ccTLD incident
// response community and mails it, encrypted, to every member.
//
// Output rules: results go to stdout; errors go to stderr as
// "ccdir: error: …", lowercase and without a final period, followed by
// "ccdir: hint: …" lines where a corrected command helps. Packages never
// print. Exit codes: 0 ok, 1 error, 2 usage, 3 verify found a problem,
// 4 done, but something needs attention (ping status), 75 (process only)
// a temporary failure the MTA should retry.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
)

// Exit codes.
const (
	exitOK     = 0
	exitError  = 1
	exitUsage  = 2
	exitVerify = 3
	// exitAttention: done, but something needs the operator's attention
	// (ping status: a contact is stale or unreachable).
	exitAttention = 4
)

func main() {
	ctx, stop := interruptContext()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// interruptContext is cancelled by the first SIGINT or SIGTERM, which
// asks the command to stop cleanly; the handler is then removed, so a
// second one kills a command that does not stop (one blocked in a read).
func interruptContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(args)
	// The pipe line of an MTA: process, or a line that names it but
	// cobra cannot parse as far (an unknown flag before it).
	if c, _, err := root.Find(args); err == nil && (c.CommandPath() == "ccdir process" || c == root && slices.Contains(args, "process")) {
		return runProcessLine(ctx, root, c, stdin, stderr)
	}
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ae *attentionError
	if errors.As(err, &ae) {
		fmt.Fprintf(stderr, "ccdir: attention: %s\n", printable(ae.Error()))
		return exitAttention
	}
	printError(stderr, err)
	return exitCode(err)
}

// runProcessLine runs the command line of an MTA pipe (ccdir process),
// which exits 75 on every failure that is not the message's, so that the
// MTA keeps the mail instead of bouncing it: a usage error (the pipe line
// is the operator's to fix), --help with the mail on standard input
// (nothing handled it), and a panic, logged with its stack but not its
// value, which may hold the mail's text (a runtime error's is shown).
func runProcessLine(ctx context.Context, root, process *cobra.Command, stdin io.Reader, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			what := fmt.Sprintf("a panic of type %T", r)
			if re, ok := r.(runtime.Error); ok {
				what = re.Error()
			}
			fmt.Fprintf(stderr, "ccdir: panic while handling a message: %s; the MTA keeps the mail\n%s", what, debug.Stack())
			code = exitTempFail
		}
	}()
	err := root.ExecuteContext(ctx)
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		printError(stderr, withHint(err, "the MTA keeps the mail (exit 75): fix the pipe command line (see ccdir process --help)"))
		return exitTempFail
	case err != nil:
		printError(stderr, err)
		return exitCode(err)
	}
	if h := process.Flags().Lookup("help"); h != nil && h.Changed && !isTerminal(stdin) {
		printError(stderr, errors.New("process --help handles no message: the mail on standard input is left to the MTA"))
		return exitTempFail
	}
	return exitOK
}

// isTerminal reports whether r is a terminal (or another character
// device, such as /dev/null): no MTA's pipe.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// usageError is a command line that does not parse.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return &usageError{fmt.Errorf(format, args...)} }

// attentionError ends a command that did its work but found something
// that needs the operator (exit 4): it is told on stderr as
// "ccdir: attention: …", not as an error.
type attentionError struct{ msg string }

func (e *attentionError) Error() string { return e.msg }

// hintError adds a hint to an error.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

func withHint(err error, format string, args ...any) error {
	return &hintError{err: err, hint: fmt.Sprintf(format, args...)}
}

func exitCode(err error) int {
	var ue *usageError
	var tf *tempFailError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &tf):
		return exitTempFail
	case directory.IsVerifyError(err):
		return exitVerify
	}
	return exitError
}

func printError(w io.Writer, err error) {
	fmt.Fprintf(w, "ccdir: error: %s\n", printable(err.Error()))
	var he *hintError
	var de *directory.Error
	var ue *usageError
	switch {
	case errors.As(err, &he):
		fmt.Fprintf(w, "ccdir: hint: %s\n", printable(he.hint))
	case errors.As(err, &de) && de.Hint != "":
		fmt.Fprintf(w, "ccdir: hint: %s\n", printable(de.Hint))
	case errors.As(err, &ue):
		fmt.Fprintf(w, "ccdir: hint: see ccdir --help, or ccdir COMMAND --help\n")
	}
}
