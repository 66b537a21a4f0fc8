package kvs

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	// Every client built by this package dials loopback addresses only
	// while testing; tests that inject a client build it with the same guard.
	defaultLoopbackOnly = true
	os.Exit(m.Run())
}

// TestNoCgoNoGStreamer keeps the package doc's promise: no cgo files and no
// GStreamer/glib anywhere in the dependencies (the standard library's own cgo
// does not count).
func TestNoCgoNoGStreamer(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is not in PATH: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}} {{len .CgoFiles}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		path, std, cgo := f[0], f[1] == "true", f[2] != "0"
		low := strings.ToLower(path)
		if strings.Contains(low, "gst") || strings.Contains(low, "glib") {
			t.Errorf("pkg/kvs depends on %s (GStreamer/glib)", path)
		}
		if !std && cgo {
			t.Errorf("dependency %s has cgo files", path)
		}
	}
}
