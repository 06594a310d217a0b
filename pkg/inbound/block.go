package inbound

import (
	"strings"
	"unicode"
)

// Limits of the command block.
const (
	// MaxCommands is the most command lines one block may hold (DIRECTORY
	// lines are not counted); the block ends at the line past it
	// (Block.TooMany).
	MaxCommands = 50
	// MaxLineBytes is the longest command line that is read as a command
	// (Line.TooLong).
	MaxLineBytes = 1000
)

// DirectoryVerb starts the line that binds a signed text to one of the
// directory's addresses: "DIRECTORY <address>".
const DirectoryVerb = "DIRECTORY"

// signatureDelimiter is the line before a mail signature ("-- ").
const signatureDelimiter = "--"

// Line is one line of a command block.
type Line struct {
	No   int    // 1-based line number in the signed text
	Text string // the line without leading and trailing white space
	// TooLong: Text is longer than MaxLineBytes; it is neither a command
	// nor a DIRECTORY line.
	TooLong bool
	// Directory: the line's first word is DIRECTORY (in any case).
	Directory bool
	// Seq is the line's 1-based position among the block's command lines
	// (every line that is not a DIRECTORY line); 0 for a DIRECTORY line.
	Seq int
}

// Block is the command block at the top of a signed text.
type Block struct {
	Lines []Line
	// Directories are the addresses of the DIRECTORY lines that have
	// exactly one argument, as written (possibly in angle brackets).
	Directories []string
	// TooMany is the line number of the command line past MaxCommands, or
	// 0. Lines ends with that line; Directories holds the DIRECTORY lines
	// of the whole block.
	TooMany int
}

// ScanBlock returns the command block of text: leading blank lines are
// skipped; then every line belongs to the block until a blank line, a
// signature delimiter ("-- ", trailing white space ignored) or a quoted
// line (starting with ">" after leading white space), none of which is
// part of it. Lines holds the block up to the line past MaxCommands
// command lines; DIRECTORY lines after that still count in Directories.
// Line
// endings may be LF or CRLF. This is the only reading of where the
// commands of a mail are: the binding check (a DIRECTORY line naming the
// address the mail was sent to), the mail commands and the list all use
// it.
func ScanBlock(text string) Block {
	var b Block
	n := 0 // command lines
	lineNo := 0
	for len(text) > 0 {
		var raw string
		raw, text, _ = strings.Cut(text, "\n")
		lineNo++
		raw = strings.TrimSuffix(raw, "\r")
		if strings.TrimRight(raw, " \t\r") == signatureDelimiter {
			break
		}
		line := strings.TrimFunc(raw, unicode.IsSpace)
		if line == "" {
			if len(b.Lines) > 0 {
				break
			}
			continue
		}
		if strings.HasPrefix(line, ">") {
			break
		}
		l := Line{No: lineNo, Text: line, TooLong: len(line) > MaxLineBytes}
		if b.TooMany != 0 {
			// Past the cap the block's lines are not kept, but its
			// DIRECTORY lines still bind it, so that the sender is
			// answered (too many commands) rather than refused as if the
			// mail named no directory.
			if addr, ok, _ := directoryLine(line); ok && !l.TooLong {
				b.Directories = append(b.Directories, addr)
			}
			continue
		}
		if !l.TooLong {
			if addr, ok, isDir := directoryLine(line); isDir {
				l.Directory = true
				if ok {
					b.Directories = append(b.Directories, addr)
				}
			}
		}
		if !l.Directory {
			n++
			l.Seq = n
		}
		b.Lines = append(b.Lines, l)
		if n > MaxCommands {
			b.TooMany = lineNo
		}
	}
	return b
}

// IsDirectoryLine reports whether a line (of any text) is a DIRECTORY
// line by the rule ScanBlock applies, and returns its address if it has
// exactly one.
func IsDirectoryLine(line string) (addr string, ok bool) {
	addr, ok, isDir := directoryLine(strings.TrimFunc(line, unicode.IsSpace))
	return addr, ok && isDir
}

// directoryLine: isDir if the first word of the trimmed line is
// DIRECTORY (ASCII case-insensitive); ok and addr if it has exactly one
// argument.
func directoryLine(line string) (addr string, ok, isDir bool) {
	f := strings.Fields(line)
	if len(f) == 0 || !strings.EqualFold(f[0], DirectoryVerb) {
		return "", false, false
	}
	if len(f) != 2 {
		return "", false, true
	}
	return f[1], true, true
}
