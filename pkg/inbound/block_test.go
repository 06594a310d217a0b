package inbound

import (
	"slices"
	"strings"
	"testing"
)

func TestScanBlock(t *testing.T) {
	cases := []struct {
		name  string
		text  string
		lines []string // Line.Text
		dirs  []string
	}{
		{"empty", "", nil, nil},
		{"blank only", "\n \n\t\n", nil, nil},
		{"leading blanks skipped", "\n\n  SHOW pt  \nWHOAMI\n", []string{"SHOW pt", "WHOAMI"}, nil},
		{"ends at a blank line", "SHOW pt\n\nDIRECTORY a@x\n", []string{"SHOW pt"}, nil},
		{"ends at a white-space line", "SHOW pt\n \t\nDIRECTORY a@x\n", []string{"SHOW pt"}, nil},
		{"ends at a quoted line", "SHOW pt\n> quoted\nDIRECTORY a@x\n", []string{"SHOW pt"}, nil},
		{"ends at an indented quoted line", "SHOW pt\n  >quoted\nDIRECTORY a@x\n", []string{"SHOW pt"}, nil},
		{"a quote first: no block", "> DIRECTORY a@x\nSHOW pt\n", nil, nil},
		{"ends at the signature delimiter", "SHOW pt\n-- \nDIRECTORY a@x\n", []string{"SHOW pt"}, nil},
		{"delimiter without space", "SHOW pt\n--\nDIRECTORY a@x\n", []string{"SHOW pt"}, nil},
		{"delimiter with CRLF", "SHOW pt\r\n-- \r\nDIRECTORY a@x\r\n", []string{"SHOW pt"}, nil},
		{"an indented delimiter is a line", "SHOW pt\n --\n", []string{"SHOW pt", "--"}, nil},
		{"CRLF", "DIRECTORY a@x\r\nSHOW pt\r\n\r\nx\r\n", []string{"DIRECTORY a@x", "SHOW pt"}, []string{"a@x"}},
		{"case", "directory a@x\nDiReCtOrY <b@x>\n", []string{"directory a@x", "DiReCtOrY <b@x>"}, []string{"a@x", "<b@x>"}},
		{"tab separated", "DIRECTORY\ta@x\n", []string{"DIRECTORY\ta@x"}, []string{"a@x"}},
		{"DIRECTORY without one address", "DIRECTORY\nDIRECTORY a@x b@x\n", []string{"DIRECTORY", "DIRECTORY a@x b@x"}, nil},
		{"not the verb", "DIRECTORYa@x\nX DIRECTORY a@x\n", []string{"DIRECTORYa@x", "X DIRECTORY a@x"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := ScanBlock(tc.text)
			var got []string
			for _, l := range b.Lines {
				got = append(got, l.Text)
			}
			if !slices.Equal(got, tc.lines) {
				t.Errorf("lines %q, want %q", got, tc.lines)
			}
			if !slices.Equal(b.Directories, tc.dirs) {
				t.Errorf("directories %q, want %q", b.Directories, tc.dirs)
			}
			if b.TooMany != 0 {
				t.Errorf("TooMany = %d", b.TooMany)
			}
		})
	}
}

func TestScanBlockLineNumbersAndSeq(t *testing.T) {
	b := ScanBlock("\n\nDRY-RUN\nDIRECTORY a@x\nSHOW pt\n")
	want := []Line{
		{No: 3, Text: "DRY-RUN", Seq: 1},
		{No: 4, Text: "DIRECTORY a@x", Directory: true},
		{No: 5, Text: "SHOW pt", Seq: 2},
	}
	if !slices.Equal(b.Lines, want) {
		t.Fatalf("lines %+v, want %+v", b.Lines, want)
	}
}

func TestScanBlockCaps(t *testing.T) {
	// MaxCommands command lines, DIRECTORY lines not counted: no cap.
	text := "DIRECTORY a@x\n" + strings.Repeat("HELP\n", MaxCommands) + "DIRECTORY b@x\n"
	b := ScanBlock(text)
	if b.TooMany != 0 || len(b.Lines) != MaxCommands+2 || !slices.Equal(b.Directories, []string{"a@x", "b@x"}) {
		t.Fatalf("at the cap: TooMany %d, %d lines, directories %q", b.TooMany, len(b.Lines), b.Directories)
	}
	// One more: Lines ends with it; a DIRECTORY line after it still binds,
	// up to the end of the block.
	b = ScanBlock(strings.Repeat("HELP\n", MaxCommands+1) + "DIRECTORY a@x\nHELP\n\nDIRECTORY b@x\n")
	if b.TooMany != MaxCommands+1 || len(b.Lines) != MaxCommands+1 || !slices.Equal(b.Directories, []string{"a@x"}) {
		t.Fatalf("past the cap: TooMany %d, %d lines, directories %q", b.TooMany, len(b.Lines), b.Directories)
	}
	// A line longer than MaxLineBytes is a command line, never a binding.
	long := "DIRECTORY a@x" + strings.Repeat(" ", MaxLineBytes) + "x"
	b = ScanBlock(long + "\nSHOW pt\n")
	if len(b.Lines) != 2 || !b.Lines[0].TooLong || b.Lines[0].Directory || b.Lines[0].Seq != 1 || b.Directories != nil {
		t.Fatalf("long line: %+v, directories %q", b.Lines, b.Directories)
	}
	ok := "SHOW " + strings.Repeat("x", MaxLineBytes-5)
	if b = ScanBlock(ok); len(b.Lines) != 1 || b.Lines[0].TooLong {
		t.Fatalf("a line of exactly MaxLineBytes: %+v", b.Lines)
	}
}

func TestIsDirectoryLine(t *testing.T) {
	for line, want := range map[string]string{
		"DIRECTORY a@x":     "a@x",
		"  directory a@x  ": "a@x",
		"DIRECTORY":         "",
		"DIRECTORY a b":     "",
		"TLP:RED":           "",
		"":                  "",
	} {
		if got, ok := IsDirectoryLine(line); got != want || ok != (want != "") {
			t.Errorf("IsDirectoryLine(%q) = %q, %v; want %q", line, got, ok, want)
		}
	}
}
