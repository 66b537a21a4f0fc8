package inspect

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kvsgo/kvsgo/test/testenv"
)

var (
	messageCall = regexp.MustCompile(`message\("(kvs-[a-z0-9-]+)"`)
	fieldArg    = regexp.MustCompile(`(?:str|u64|i32|i64|boolean)\("([a-z-]+)"`)
)

// TestEveryMessageInREADME: every kvs-* element message the plugin posts
// is in a README table row that names each of its fields.
func TestEveryMessageInREADME(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(testenv.Root(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, l := range strings.Split(string(readme), "\n") {
		if m := regexp.MustCompile("^\\| `(kvs-[a-z0-9-]+)` \\|").FindStringSubmatch(l); m != nil {
			rows[m[1]] += l
		}
	}
	files, err := filepath.Glob(filepath.Join(testenv.Root(), "plugin", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src := string(b)
		for _, loc := range messageCall.FindAllStringSubmatchIndex(src, -1) {
			name := src[loc[2]:loc[3]]
			call := src[loc[0]:callEnd(src, loc[0]+len("message"))]
			seen++
			row, ok := rows[name]
			if !ok {
				t.Errorf("%s posts %s, which the README's tables do not list", filepath.Base(f), name)
				continue
			}
			for _, fm := range fieldArg.FindAllStringSubmatch(call, -1) {
				if !strings.Contains(row, "`"+fm[1]+"`") {
					t.Errorf("the README's row of %s does not name its field %s", name, fm[1])
				}
			}
		}
	}
	if seen < 10 {
		t.Fatalf("found %d message calls in plugin/*.go; the pattern no longer matches the code", seen)
	}
}

// callEnd returns the index just after the parenthesis that closes the
// call whose opening parenthesis is at open.
func callEnd(src string, open int) int {
	depth := 0
	for i := open; i < len(src); i++ {
		switch src[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return len(src)
}
