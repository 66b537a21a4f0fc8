// Command proptable prints a README property table from the registered
// element (kvssink by default, or kvssrc):
// go run ./test/inspect/cmd/proptable [plugin dir [element]].
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kvsgo/kvsgo/test/inspect"
)

func main() {
	dir := "build/plugin"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	element := "kvssink"
	if len(os.Args) > 2 {
		element = os.Args[2]
	}
	abs, _ := filepath.Abs(dir)
	tmp, err := os.MkdirTemp("", "proptable")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(tmp)
	out, err := inspect.Run(element, abs, filepath.Join(tmp, "registry.bin"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Print(inspect.Markdown(inspect.Parse(out)))
}
