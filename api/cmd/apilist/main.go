// Command apilist writes the listing of this module's exported API,
// api/exported.txt, or compares it with the code.
//
// Usage, from anywhere in the module:
//
//	go run ./api/cmd/apilist       # print the differences; exit 1 if any
//	go run ./api/cmd/apilist -w    # rewrite api/exported.txt
//
// go generate ./api runs the second.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/drlimit/drl/internal/apilist"
)

func main() {
	write := flag.Bool("w", false, "rewrite api/exported.txt instead of comparing")
	flag.Parse()
	if err := run(*write); err != nil {
		fmt.Fprintln(os.Stderr, "apilist:", err)
		os.Exit(1)
	}
}

func run(write bool) error {
	out, err := goEnv("GOMOD")
	if err != nil || out == "" || out == os.DevNull {
		return fmt.Errorf("not inside the module (go env GOMOD: %q, %v)", out, err)
	}
	root := filepath.Dir(out)
	file := filepath.Join(root, "api", "exported.txt")
	current, err := apilist.Module(root)
	if err != nil {
		return err
	}
	if write {
		return os.WriteFile(file, []byte(strings.Join(current, "\n")+"\n"), 0o644)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	committed, err := apilist.Parse(bytes.NewReader(data))
	if err != nil {
		return err
	}
	if err := apilist.Diff(committed, current); err != nil {
		return fmt.Errorf("the exported API differs from api/exported.txt (+ in the code only, - in the file only):\n%v", err)
	}
	return nil
}

func goEnv(name string) (string, error) {
	out, err := exec.Command("go", "env", name).Output()
	return strings.TrimSpace(string(out)), err
}
