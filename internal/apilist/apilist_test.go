package apilist

import (
	"slices"
	"strings"
	"testing"
)

// TestListFixture lists a package with one of each kind of identifier and
// holds every line to what a reader of Go's api files expects.
func TestListFixture(t *testing.T) {
	got, err := List(".", "github.com/drlimit/drl", "./testdata/fixture")
	if err != nil {
		t.Fatal(err)
	}
	const p = "pkg internal/apilist/testdata/fixture, "
	want := []string{
		p + "const Typed Kind = 2",
		p + "const Untyped untyped int = 3",
		p + "func Map[K comparable, V any](map[K]V) []K",
		p + "func New(string, ...Option) (*T, error)",
		p + "method (*T) Close() error",
		p + "method (T) Read([]byte) (int, error)", // promoted from io.Reader
		p + "method (*Thing) Do() error",           // through the alias to an internal type
		p + "method (Kind) String() string",
		p + "type I interface { Get, unexported methods }",
		p + "type I interface, Get(string) (string, bool)",
		p + "type Kind uint8",
		p + "type Option func(*T)",
		p + "type Public = time.Duration",
		p + "type T struct",
		p + "type T struct, Name string",
		p + "type T struct, Timeout time.Duration",
		p + "type T struct, embedded io.Reader",
		p + "type Thing struct", // an alias to an internal type, listed as its users see it
		p + "type Thing struct, Visible int",
		p + "var ErrX error",
	}
	slices.Sort(want)
	if err := Diff(want, got); err != nil {
		t.Errorf("List(fixture) differs from the expected listing (+ listed only, - expected only):\n%v", err)
	}
}

// TestDiff checks that Diff names every line on either side only, and
// nothing when the two agree in any order.
func TestDiff(t *testing.T) {
	a := []string{"pkg x, func A()", "pkg x, func B()"}
	if err := Diff(a, []string{"pkg x, func B()", "pkg x, func A()"}); err != nil {
		t.Errorf("Diff(same lines reordered) = %v, want nil", err)
	}
	err := Diff(a, []string{"pkg x, func A()", "pkg x, func C()"})
	if err == nil {
		t.Fatal("Diff(B removed, C added) = nil, want a difference")
	}
	for _, l := range []string{"+ pkg x, func C()", "- pkg x, func B()"} {
		if !strings.Contains(err.Error(), l) {
			t.Errorf("Diff(B removed, C added) = %q, want it to contain %q", err, l)
		}
	}
}
