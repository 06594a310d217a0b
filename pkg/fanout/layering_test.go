package fanout

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayering: fanout knows nothing of digests, lists, commands or
// mail routing, not even through another package.
func TestLayering(t *testing.T) {
	const module = "github.com/ccdir/ccdir"
	out, err := exec.Command("go", "list", "-deps", module+"/pkg/fanout").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 2 {
		t.Fatalf("go list found only %q", deps)
	}
	for _, dep := range deps {
		for _, bad := range []string{"digest", "relay", "mailcmd", "receive", "inbound", "export", "smtpd"} {
			if dep == module+"/pkg/"+bad {
				t.Errorf("pkg/fanout depends on %s", dep)
			}
		}
		if strings.HasPrefix(dep, module+"/cmd/") {
			t.Errorf("pkg/fanout depends on %s", dep)
		}
	}
}
