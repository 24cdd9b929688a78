package readme_test

import (
	"bytes"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drlimit/drl/bucket"
)

const root = "../.."

// block is one fenced code block of the README.
type block struct {
	lang, text string // text: the lines between the fences, each ending in \n
	line       int    // of the opening fence
}

func readmeBlocks(t *testing.T) []block {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []block
	var cur *block
	for i, l := range strings.SplitAfter(string(b), "\n") {
		switch {
		case cur == nil && strings.HasPrefix(l, "```"):
			cur = &block{lang: strings.TrimSpace(strings.TrimPrefix(l, "```")), line: i + 1}
		case cur != nil && strings.TrimSpace(l) == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += l
		}
	}
	if cur != nil {
		t.Fatalf("README.md:%d: a code block is never closed", cur.line)
	}
	return blocks
}

// examples returns the bodies of this package's Example functions, one tab
// of indentation removed, by name.
func examples(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	out := map[string]string{}
	files, _ := filepath.Glob("*_test.go")
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || !strings.HasPrefix(fn.Name.Name, "Example") {
				continue
			}
			body := string(src[fset.Position(fn.Body.Lbrace).Offset+1 : fset.Position(fn.Body.Rbrace).Offset])
			body = strings.TrimPrefix(body, "\n")
			lines := strings.SplitAfter(body, "\n")
			for i, l := range lines {
				lines[i] = strings.TrimPrefix(l, "\t")
			}
			out[fn.Name.Name] = strings.Join(lines, "")
		}
	}
	return out
}

// Every Go snippet of the README is, character for character, the body of
// an Example here, which go test compiles and runs and whose output it
// checks; and every Example here is in the README.
func TestGoSnippetsAreExamples(t *testing.T) {
	ex := examples(t)
	used := map[string]bool{}
	n := 0
	for _, b := range readmeBlocks(t) {
		if b.lang != "go" {
			continue
		}
		n++
		found := ""
		for name, body := range ex {
			if body == b.text {
				found = name
			}
		}
		if found == "" {
			t.Errorf("README.md:%d: this Go snippet is not the body of an Example in examples/readme; make it one:\n%s", b.line, b.text)
			continue
		}
		used[found] = true
	}
	for name := range ex {
		if !used[name] {
			t.Errorf("examples/readme: %s is not in the README; paste its body there or drop it", name)
		}
	}
	if n < 2 {
		t.Errorf("found %d Go snippets in the README, want at least 2", n)
	}
}

// notRecipes are the README's shell blocks that no script runs verbatim:
// the quickstart starts a node in the foreground and runs the whole test
// suite. scripts/readme-quickstart.sh starts the same node (built, so
// that it can be stopped) and runs the quickstart's next block.
var notRecipes = []string{
	"go run ./cmd/node ",
}

// recipeBlocks returns each script's README block: the lines between
// "# --- README: <section> ---" and "# --- end ---".
func recipeBlocks(t *testing.T) map[string]string {
	t.Helper()
	scripts, _ := filepath.Glob(filepath.Join(root, "scripts", "readme-*.sh"))
	out := map[string]string{}
	re := regexp.MustCompile(`(?s)\n# --- README: [^\n]* ---\n(.*?)# --- end ---\n`)
	for _, s := range scripts {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			out[filepath.Base(s)] = m[1]
		}
	}
	return out
}

// Every shell block of the README (but the quickstart's first) is a
// scripts/readme-*.sh block, character for character, and every script's
// block is in the README: what CI runs is what the README says.
func TestShellBlocksAreRecipes(t *testing.T) {
	recipes := recipeBlocks(t)
	if len(recipes) < 3 {
		t.Fatalf("found the README blocks of %d scripts, want 3 or more: %v", len(recipes), recipes)
	}
	inReadme := map[string]bool{}
	exempt := 0
	for _, b := range readmeBlocks(t) {
		switch b.lang {
		case "go":
			continue
		case "sh", "bash", "shell", "console":
		default:
			t.Errorf("README.md:%d: a block in %q; the tests know go and sh", b.line, b.lang)
			continue
		}
		if slices.ContainsFunc(notRecipes, func(p string) bool { return strings.HasPrefix(b.text, p) }) {
			exempt++
			continue
		}
		found := false
		for name, r := range recipes {
			if r == b.text {
				inReadme[name], found = true, true
			}
		}
		if !found {
			t.Errorf("README.md:%d: no scripts/readme-*.sh runs this block verbatim; put it in one between "+
				"\"# --- README: <section> ---\" and \"# --- end ---\":\n%s", b.line, b.text)
		}
		if strings.Contains(b.text, "go run ./cmd/node &") || regexp.MustCompile(`\\ +#`).MatchString(b.text) {
			t.Errorf("README.md:%d: a backgrounded go run, or a comment after a line continuation:\n%s", b.line, b.text)
		}
	}
	if exempt != len(notRecipes) {
		t.Errorf("found %d of the %d blocks no script runs; update notRecipes", exempt, len(notRecipes))
	}
	for name := range recipes {
		if !inReadme[name] {
			t.Errorf("scripts/%s runs a block that is not in the README any more:\n%s", name, recipes[name])
		}
	}
}

// TestRecipes runs every scripts/readme-*.sh: each builds the binaries,
// starts real nodes on the README's fixed loopback ports, runs its README
// block and checks what it printed. They run one after another, since they
// share ports. Where there is no curl, scripts/minicurl stands in.
func TestRecipes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and starts nodes: about 10 s")
	}
	scripts, _ := filepath.Glob(filepath.Join(root, "scripts", "readme-*.sh"))
	scripts = slices.DeleteFunc(scripts, func(s string) bool { return strings.HasSuffix(s, "readme-lib.sh") })
	if len(scripts) < 3 {
		t.Fatalf("found %d recipe scripts, want 3 or more", len(scripts))
	}
	path := os.Getenv("PATH")
	if _, err := exec.LookPath("curl"); err != nil {
		dir := t.TempDir()
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "curl"), filepath.Join(root, "scripts", "minicurl")).CombinedOutput(); err != nil {
			t.Fatalf("build minicurl: %v\n%s", err, out)
		}
		path = dir + string(os.PathListSeparator) + path
		t.Log("no curl: scripts/minicurl stands in")
	}
	for _, s := range scripts {
		t.Run(filepath.Base(s), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", s)
			cmd.Env = append(os.Environ(), "PATH="+path)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			// The script and its nodes form a process group of their own.
			// At the deadline the group gets SIGTERM (the script's trap stops
			// its nodes), then, 20 s later, SIGKILL.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
			cmd.WaitDelay = 20 * time.Second
			start := time.Now()
			err := cmd.Run()
			if err != nil && cmd.Process != nil {
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // what the trap could not stop, if anything
			}
			t.Logf("%s took %v", filepath.Base(s), time.Since(start).Round(time.Millisecond))
			if err != nil {
				t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", s, err, stdout.String(), stderr.String())
			}
			// b and c start once a is ready (the script waits with drlctl
			// wait), so no join fails: a failed join here means the
			// README's recipe is racing.
			if strings.Contains(stderr.String(), "join failed") {
				t.Errorf("%s: a node's join failed:\n%s", s, stderr.String())
			}
			// Warnings are not failures: on a loaded machine a handoff or a
			// leave may time out, which costs only time.
			for _, l := range strings.Split(stderr.String(), "\n") {
				if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
					t.Log(l)
				}
			}
		})
	}
}

// The README names every algorithm, and the default as the code has it
// (the zero bucket.Algorithm).
func TestAlgorithmsInReadme(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, a := range bucket.Algorithms() {
		if !strings.Contains(readme, "`"+a.String()+"`") {
			t.Errorf("the README does not name the algorithm %s", a)
		}
	}
	if def := "`" + bucket.Algorithm(0).String() + "`, the default"; !strings.Contains(readme, def) {
		t.Errorf("the README does not say %q", def)
	}
}
