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
