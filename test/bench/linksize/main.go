// Command linksize shows what a Go binary or shared library is made of: the
// size of its symbols (go tool nm -size), summed by the Go package they
// belong to and grouped into the dependencies a reader cares about (the
// aws-sdk-go-v2 default chain, the AWS clients, crypto, net/http...).
//
//	go run ./test/bench/linksize [-packages N] build/plugin/libgstkvsgo.so
//
// Text, read-only data and data symbols count; the runtime's pclntab (the
// line tables, about as large again as the code) is not a symbol and is
// reported apart, from the section header.
package main

import (
	"bufio"
	"debug/elf"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
)

// groups are matched in order: the first prefix that fits a package wins.
var groups = []struct{ name, prefix string }{
	{"aws-sdk-go-v2 config (default chain: shared files, profiles)", "github.com/aws/aws-sdk-go-v2/config"},
	{"aws-sdk-go-v2 internal/ini", "github.com/aws/aws-sdk-go-v2/internal/ini"},
	{"aws-sdk-go-v2 sso, ssooidc, signin (SSO and login profiles)", "github.com/aws/aws-sdk-go-v2/service/sso"},
	{"aws-sdk-go-v2 sso, ssooidc, signin (SSO and login profiles)", "github.com/aws/aws-sdk-go-v2/service/signin"},
	{"aws-sdk-go-v2 sso, ssooidc, signin (SSO and login profiles)", "github.com/aws/aws-sdk-go-v2/credentials/ssocreds"},
	{"aws-sdk-go-v2 sso, ssooidc, signin (SSO and login profiles)", "github.com/aws/aws-sdk-go-v2/credentials/logincreds"},
	{"aws-sdk-go-v2 imds, ec2rolecreds (instance metadata)", "github.com/aws/aws-sdk-go-v2/feature/ec2/imds"},
	{"aws-sdk-go-v2 imds, ec2rolecreds (instance metadata)", "github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"},
	{"aws-sdk-go-v2 endpointcreds, processcreds", "github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"},
	{"aws-sdk-go-v2 endpointcreds, processcreds", "github.com/aws/aws-sdk-go-v2/credentials/processcreds"},
	{"aws-sdk-go-v2 sts, stscreds", "github.com/aws/aws-sdk-go-v2/service/sts"},
	{"aws-sdk-go-v2 sts, stscreds", "github.com/aws/aws-sdk-go-v2/credentials/stscreds"},
	{"aws-sdk-go-v2 kinesisvideo", "github.com/aws/aws-sdk-go-v2/service/kinesisvideo"},
	{"aws-sdk-go-v2 core (aws, signer, retry, middleware...)", "github.com/aws/aws-sdk-go-v2"},
	{"smithy-go", "github.com/aws/smithy-go"},
	{"go-gst, go-glib", "github.com/go-gst"},
	{"kvsgo", "github.com/kvsgo/kvsgo"},
	{"golang.org/x", "golang.org/x"},
	{"crypto (stdlib)", "crypto"},
	{"crypto (stdlib)", "vendor/golang.org/x/crypto"},
	{"net, net/http (stdlib)", "net"},
	{"net, net/http (stdlib)", "vendor/golang.org/x/net"},
	{"encoding (stdlib)", "encoding"},
	{"runtime (stdlib)", "runtime"},
	{"runtime (stdlib)", "internal"},
	{"other stdlib", ""},
}

func main() {
	npkg := flag.Int("packages", 25, "also list the `N` largest packages")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: linksize [-packages N] binary")
		os.Exit(2)
	}
	bin := flag.Arg(0)
	out, err := exec.Command("go", "tool", "nm", "-size", "-sort", "size", bin).Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "linksize: go tool nm:", err)
		os.Exit(1)
	}
	ef, err := elf.Open(bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "linksize:", err)
		os.Exit(1)
	}
	defer ef.Close()
	byPkg := map[string]int64{}
	var total int64
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// address size type name...
		if len(f) < 4 || !strings.ContainsAny(f[2], "TtRrDdBb") || strings.ContainsAny(f[2], "BbU") {
			continue
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		addr, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil || !inFile(ef, addr) {
			continue // zeroed memory (.bss, .noptrbss): no bytes in the file, no page until written
		}
		name := strings.Join(f[3:], " ")
		byPkg[pkgOf(name)] += size
		total += size
	}
	byGroup := map[string]int64{}
	for p, n := range byPkg {
		byGroup[groupOf(p)] += n
	}
	fmt.Printf("%s: symbols %s", bin, mb(total))
	for _, name := range []string{".text", ".gopclntab", ".rela.dyn", ".data.rel.ro"} {
		if s := ef.Section(name); s != nil {
			fmt.Printf(", %s %s", name, mb(int64(s.Size)))
		}
	}
	fi, err := os.Stat(bin)
	if err == nil {
		fmt.Printf(", file %s", mb(fi.Size()))
	}
	fmt.Println()
	fmt.Println()
	fmt.Println("| dependency | size |")
	fmt.Println("|---|---:|")
	for _, k := range sortedKeys(byGroup) {
		fmt.Printf("| %s | %s |\n", k, mb(byGroup[k]))
	}
	if *npkg > 0 {
		fmt.Println()
		fmt.Println("| package | size |")
		fmt.Println("|---|---:|")
		for i, k := range sortedKeys(byPkg) {
			if i == *npkg {
				break
			}
			fmt.Printf("| %s | %s |\n", k, mb(byPkg[k]))
		}
	}
}

// inFile reports whether addr lies in a section with bytes in the file.
func inFile(f *elf.File, addr uint64) bool {
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC != 0 && addr >= s.Addr && addr < s.Addr+s.Size {
			return s.Type != elf.SHT_NOBITS
		}
	}
	return false
}

func sortedKeys(m map[string]int64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return m[ks[i]] > m[ks[j]] || m[ks[i]] == m[ks[j]] && ks[i] < ks[j] })
	return ks
}

func mb(n int64) string { return fmt.Sprintf("%.2f MB", float64(n)/1e6) }

// pkgOf returns the package path of a symbol: "type:*a/b.T" and
// "go:itab.*a/b.T,c.I" are a/b's; cgo and C symbols are "(C)".
func pkgOf(sym string) string {
	for _, p := range []string{"type:", "go:itab.", "go:string.", "go:"} {
		if strings.HasPrefix(sym, p) {
			sym = sym[len(p):]
			break
		}
	}
	sym = strings.TrimLeft(sym, "*[]0123456789")
	for _, p := range []string{"map.bucket[", "map.group[", "map[", "chan ", "func(", "noalg.", "struct {"} {
		if strings.HasPrefix(sym, p) {
			return "(runtime types)"
		}
	}
	// Cut what follows the symbol's own name: the type arguments of a
	// generic instance ("slices.Sort[...]") and an itab's interface.
	if i := strings.IndexAny(sym, "[,"); i >= 0 {
		sym = sym[:i]
	}
	slash := strings.LastIndexByte(sym, '/')
	dot := strings.IndexByte(sym[slash+1:], '.')
	if dot < 0 {
		if slash < 0 {
			return "(C)"
		}
		return sym
	}
	p := sym[:slash+1+dot]
	if !strings.Contains(p, ".") && slash < 0 && strings.HasPrefix(sym, "_") {
		return "(C)"
	}
	return p
}

func groupOf(pkg string) string {
	if pkg == "(C)" || pkg == "(runtime types)" || pkg == "func" {
		if pkg == "func" {
			return "(function metadata, go:func.*)"
		}
		return pkg
	}
	for _, g := range groups {
		if g.prefix == "" || pkg == g.prefix || strings.HasPrefix(pkg, g.prefix+"/") || strings.HasPrefix(pkg, g.prefix+".") ||
			(strings.HasSuffix(g.prefix, "sso") && strings.HasPrefix(pkg, g.prefix)) {
			return g.name
		}
	}
	return "other stdlib"
}
