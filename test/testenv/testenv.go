// Package testenv locates the repository, its fixtures and the tools tests
// depend on. A missing fixture fails the test; a missing tool skips it with
// the Debian package to install, or fails under KVSGO_REQUIRE_TOOLS
// (scripts/test sets it, so a full run never skips).
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// Root returns the repository root (the directory holding go.mod).
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// fixtures maps each shared fixture to the package that owns its one copy
// (that package's testdata/README.md says where the bytes came from and
// under which licence).
var fixtures = map[string]string{
	"official-putmedia.mkv":                 "pkg/mkv/testdata",
	"kvs-getmedia-real.mkv":                 "pkg/mkv/testdata",
	"kvs-getmedia-equal-timecodes.mkv":      "pkg/mkv/testdata",
	"kvs-getmedia-decreasing-timecodes.mkv": "pkg/mkv/testdata",
	"kvs-getmedia-tags-empty-cluster.mkv":   "pkg/mkv/testdata",
	"kvs-getmedia-tags-only.mkv":            "pkg/mkv/testdata",
	"sframe-rfc9605-test-vectors.json":      "pkg/e2ee/testdata",
}

// Fixture returns the path of a fixture kept in the repository. An unknown
// name or a missing file fails the test: a plain clone holds every fixture.
func Fixture(t testing.TB, name string) string {
	t.Helper()
	dir, ok := fixtures[name]
	if !ok {
		t.Fatalf("testenv: no fixture named %q", name)
	}
	p := filepath.Join(Root(), filepath.FromSlash(dir), name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("fixture %s missing from the repository: %v", name, err)
	}
	return p
}

// ReadFixture reads a fixture, failing as Fixture does.
func ReadFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(Fixture(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Tool returns the path of an external program or skips the test, naming
// the Debian package that provides it (scripts/setup installs them all).
func Tool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, fmt.Sprintf("%s not found (Debian package %s); run scripts/setup", name, debianPackage))
	}
	return p
}

// PluginDir returns the directory holding libgstkvsgo.so: $KVSGO_PLUGIN_DIR
// (scripts/test builds it once per run) or build/plugin in the repository,
// built by the first call of the test process (the first build ever
// compiles go-gst: ~3 minutes).
func PluginDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("KVSGO_PLUGIN_DIR"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "libgstkvsgo.so")); err != nil {
			t.Fatalf("KVSGO_PLUGIN_DIR=%s has no libgstkvsgo.so: %v", d, err)
		}
		return d
	}
	d, err := buildPlugin()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// buildPlugin builds build/plugin/libgstkvsgo.so once per test process.
var buildPlugin = sync.OnceValues(func() (string, error) {
	d := filepath.Join(Root(), "build", "plugin")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", filepath.Join(d, "libgstkvsgo.so"), "./plugin")
	cmd.Dir = Root()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the plugin: %v\n%s", err, out)
	}
	return d, nil
})

// BuildGstHost compiles source, a C program against GStreamer, with cc and
// the flags pkg-config gives for gstreamer-1.0, and returns the binary's
// path. It skips as Tool does when cc or pkg-config is missing, and skips
// when the GStreamer development files are absent.
func BuildGstHost(t testing.TB, source string) string {
	t.Helper()
	cc := Tool(t, "cc", "build-essential")
	pc := Tool(t, "pkg-config", "pkg-config")
	flags, err := exec.Command(pc, "--cflags", "--libs", "gstreamer-1.0").Output()
	if err != nil {
		missing(t, fmt.Sprintf("pkg-config gstreamer-1.0: %v (Debian package libgstreamer1.0-dev); run scripts/setup", err))
	}
	dir := t.TempDir()
	src, bin := filepath.Join(dir, "host.c"), filepath.Join(dir, "host")
	if err := os.WriteFile(src, []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-o", bin, src}, strings.Fields(string(flags))...)
	if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Fatalf("cc: %v\n%s", err, out)
	}
	return bin
}

// Missing reports a prerequisite the machine lacks (a tool, a Python
// module): a failure under KVSGO_REQUIRE_TOOLS, else a skip that says what
// to install.
func Missing(t testing.TB, what string) { t.Helper(); missing(t, what) }

func missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("KVSGO_REQUIRE_TOOLS") != "" {
		t.Fatal(what)
	}
	t.Skip(what)
}
