// Command proptable prints the README's property table from the registered
// kvssink element: go run ./test/inspect/cmd/proptable [plugin dir].
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
	abs, _ := filepath.Abs(dir)
	tmp, err := os.MkdirTemp("", "proptable")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(tmp)
	out, err := inspect.Run("kvssink", abs, filepath.Join(tmp, "registry.bin"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Print(inspect.Markdown(inspect.Parse(out)))
}
