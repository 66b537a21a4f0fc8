// Package arch checks the dependency rules of STYLE.md: nothing under pkg/
// has cgo files or imports GStreamer/glib, only pkg/credentials, pkg/kvs and
// test/kvslocal import the AWS SDK, and dependencies point one way.
package arch

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/kvsgo/kvsgo/test/testenv"
)

type pkg struct {
	ImportPath string
	CgoFiles   []string
	Imports    []string
	Deps       []string
}

func list(t *testing.T, patterns ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, patterns...)...)
	cmd.Dir = testenv.Root()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

const module = "github.com/kvsgo/kvsgo/"

func TestPkgIsPureGo(t *testing.T) {
	for _, p := range list(t, "./pkg/...") {
		if len(p.CgoFiles) > 0 {
			t.Errorf("%s has cgo files %v: only plugin/ may use cgo", p.ImportPath, p.CgoFiles)
		}
		for _, d := range p.Deps {
			if strings.Contains(d, "go-gst") || strings.Contains(d, "go-glib") {
				t.Errorf("%s depends on %s: pkg/ must not import GStreamer or glib", p.ImportPath, d)
			}
		}
	}
}

// allowedInternal lists which project packages each pkg/ package may import
// directly: plugin → sink → {fragment, e2ee, kvs, credentials} → {mkv, codec, clock}.
var allowedInternal = map[string][]string{
	"pkg/mkv":         {},
	"pkg/codec/h264":  {},
	"pkg/codec/h265":  {"pkg/codec/h264"},
	"pkg/clock":       {},
	"pkg/fragment":    {"pkg/mkv", "pkg/codec/"},
	"pkg/httpx":       {},
	"pkg/credentials": {"pkg/clock", "pkg/httpx"},
	"pkg/kvs":         {"pkg/mkv", "pkg/clock", "pkg/httpx"},
	"pkg/e2ee":        {},
	"pkg/journal":     {},
	// The Matroska-level transform of encrypted streams (kvsdecrypt, kvsgo).
	"pkg/e2ee/mkvstream": {"pkg/e2ee", "pkg/mkv"},
	"pkg/source":         {"pkg/kvs", "pkg/mkv", "pkg/clock", "pkg/e2ee", "pkg/e2ee/mkvstream"},
	"pkg/sink":           {"pkg/fragment", "pkg/kvs", "pkg/credentials", "pkg/mkv", "pkg/codec/", "pkg/clock", "pkg/e2ee", "pkg/e2ee/mkvstream", "pkg/journal", "pkg/httpx"},
}

var awsAllowed = []string{"pkg/credentials", "pkg/kvs"}

func TestDependencyDirection(t *testing.T) {
	for _, p := range list(t, "./pkg/...") {
		rel := strings.TrimPrefix(p.ImportPath, module)
		allowed, known := allowedInternal[rel]
		if !known {
			t.Errorf("%s is not in the dependency table of this test: add it with the packages it may import", rel)
			continue
		}
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module+"pkg/") {
				dep := strings.TrimPrefix(imp, module)
				ok := false
				for _, a := range allowed {
					if dep == a || (strings.HasSuffix(a, "/") && strings.HasPrefix(dep, a)) {
						ok = true
					}
				}
				if !ok {
					t.Errorf("%s imports %s, against the dependency direction of STYLE.md", rel, dep)
				}
			}
			if strings.HasPrefix(imp, "github.com/aws/") {
				ok := false
				for _, a := range awsAllowed {
					if rel == a {
						ok = true
					}
				}
				if !ok {
					t.Errorf("%s imports %s: only %v use the AWS SDK directly", rel, imp, awsAllowed)
				}
			}
		}
	}
}
