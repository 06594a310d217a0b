// Command ccdir keeps the signed contact directory of a ccTLD incident
// response community and mails it, encrypted, to every member.
//
// Output rules: results go to stdout; errors go to stderr as
// "ccdir: error: …", lowercase and without a final period, followed by
// "ccdir: hint: …" lines where a corrected command helps. Packages never
// print. Exit codes: 0 ok, 1 error, 2 usage, 3 verify found a problem,
// 75 (process only) a temporary failure the MTA should retry.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ccdir/ccdir/directory"
)

// Exit codes.
const (
	exitOK     = 0
	exitError  = 1
	exitUsage  = 2
	exitVerify = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	printError(stderr, err)
	return exitCode(err)
}

// usageError is a command line that does not parse.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return &usageError{fmt.Errorf(format, args...)} }

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
