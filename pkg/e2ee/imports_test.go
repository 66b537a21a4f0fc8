package e2ee

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the dependency direction: pkg/e2ee imports the
// standard library only (no cgo), and its mkvstream sub-package adds only
// pkg/e2ee and pkg/mkv.
func TestImports(t *testing.T) {
	for dir, allowed := range map[string][]string{
		".":         nil,
		"mkvstream": {"github.com/kvsgo/kvsgo/pkg/e2ee", "github.com/kvsgo/kvsgo/pkg/mkv"},
	} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, im := range af.Imports {
				p, _ := strconv.Unquote(im.Path.Value)
				first, _, _ := strings.Cut(p, "/")
				if p == "C" {
					t.Errorf("%s: cgo", f)
				} else if strings.Contains(first, ".") && !contains(allowed, p) {
					t.Errorf("%s imports %s; allowed beyond the standard library: %v", f, p, allowed)
				}
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
