package api

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/drlimit/drl/internal/apilist"
)

// TestExportedAPI holds exported.txt to the code. When it fails on an
// intended change (a new field, a regenerated api/drlv1, a removed method),
// regenerate the listing with
//
//	go generate ./api
//
// (which runs go run ./api/cmd/apilist -w) and commit it with the change,
// so that the change to the public surface is a reviewed line in the diff.
// After merging a branch that changed the API (regenerated api/drlv1, new
// fields), the same command brings the listing up to date.
//
// The listing is read from the compiler's export data (go list -export),
// which go vet ./... and go build ./... leave in the build cache: after
// them, as in CI, the test takes a second or two. On a cold cache it
// compiles the public packages first, which takes minutes.
func TestExportedAPI(t *testing.T) {
	committed := readListing(t)
	current, err := apilist.Module("..")
	if err != nil {
		t.Fatal(err)
	}
	if err := apilist.Diff(committed, current); err != nil {
		t.Errorf("the exported API differs from api/exported.txt (+ in the code only, - in the file only):\n%v\n"+
			"If the change is intended, run `go generate ./api` and commit api/exported.txt with it.", err)
	}
}

// TestNoInternalTypesInAPI keeps internal packages out of the public API:
// a user cannot name, build or read the docs of an internal type that a
// public signature or field hands them. An internal type re-exported by an
// alias is listed by the alias's name, so only leaks remain.
func TestNoInternalTypesInAPI(t *testing.T) {
	for _, l := range readListing(t) {
		if strings.Contains(l, "internal/") {
			t.Errorf("public API uses an internal package's type: %s", l)
		}
	}
}

// TestAtMostTwoResults keeps multi-value results out of the public API:
// a third result is a struct's field waiting to happen (see
// drl.Membership), and a struct can grow without breaking callers.
func TestAtMostTwoResults(t *testing.T) {
	for _, l := range readListing(t) {
		if n := results(l); n > 2 {
			t.Errorf("%d results; return a struct instead: %s", n, l)
		}
	}
}

// results counts the results of the func, method or interface method
// that a listing line declares; 0 for other lines.
func results(line string) int {
	_, decl, _ := strings.Cut(line, ", ")
	switch {
	case strings.HasPrefix(decl, "func "), strings.Contains(decl, " interface, "):
	case strings.HasPrefix(decl, "method "):
		decl = decl[closing(decl, strings.IndexByte(decl, '('))+1:] // the receiver
	default:
		return 0
	}
	open := strings.IndexByte(decl, '(')
	if open < 0 {
		return 0
	}
	rest := strings.TrimSpace(decl[closing(decl, open)+1:])
	switch {
	case rest == "":
		return 0
	case !strings.HasPrefix(rest, "("):
		return 1
	}
	n, depth := 1, 0
	for _, c := range rest[1 : len(rest)-1] {
		switch c {
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
		case ',':
			if depth == 0 {
				n++
			}
		}
	}
	return n
}

// closing returns the index of the parenthesis that closes s[open].
func closing(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				return i
			}
		}
	}
	return len(s) - 1
}

func TestResults(t *testing.T) {
	for line, want := range map[string]int{
		"pkg x, func F()":          0,
		"pkg x, func F(int) error": 1,
		"pkg x, func F(func(int) (int, error)) (func() (a, b), error)": 2,
		"pkg x, method (*T) M(context.Context) (string, []int, error)": 3,
		"pkg x, type I interface, M(int) (map[K]V, bool, error)":       3,
		"pkg x, type T struct, F func() (int, int, int)":               0,
	} {
		if got := results(line); got != want {
			t.Errorf("results(%q) = %d, want %d", line, got, want)
		}
	}
}

// TestExportedAPICatchesChange proves that TestExportedAPI would fail: a
// listing that lacks one of the code's identifiers, or has one the code
// lacks, differs, and the difference names the line.
func TestExportedAPICatchesChange(t *testing.T) {
	committed := readListing(t)
	if len(committed) < 100 {
		t.Fatalf("api/exported.txt has %d lines; want the whole module's API", len(committed))
	}
	if err := apilist.Diff(committed, committed); err != nil {
		t.Fatalf("Diff(listing, listing) = %v, want nil", err)
	}
	removed := committed[len(committed)/2]
	withoutOne := slices.Delete(slices.Clone(committed), len(committed)/2, len(committed)/2+1)
	err := apilist.Diff(withoutOne, committed)
	if err == nil || !strings.Contains(err.Error(), "+ "+removed) {
		t.Errorf("Diff(listing less %q, code) = %v, want it to report that line as new in the code", removed, err)
	}
	added := "pkg bucket, func Unheard() error"
	err = apilist.Diff(append(slices.Clone(committed), added), committed)
	if err == nil || !strings.Contains(err.Error(), "- "+added) {
		t.Errorf("Diff(listing plus %q, code) = %v, want it to report that line as gone from the code", added, err)
	}
}

func readListing(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("exported.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines, err := apilist.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return lines
}
