package snapshot

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestDir(t *testing.T) {
	ctx := context.Background()
	d, err := NewDir(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Load(ctx); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load with no snapshot: %v, want fs.ErrNotExist", err)
	}
	first := []byte("DRLSNAP\nthe first snapshot")
	if err := d.Save(ctx, func(w io.Writer) error { _, err := w.Write(first); return err }); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(d.Path()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot file: %v, %v; want mode 0600", fi, err)
	}
	// A write that fails part way leaves the previous snapshot whole and
	// no temporary file behind.
	boom := errors.New("boom")
	if err := d.Save(ctx, func(w io.Writer) error { w.Write([]byte("half")); return boom }); !errors.Is(err, boom) {
		t.Fatalf("failed save: %v", err)
	}
	r, err := d.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(got, first) {
		t.Fatal("a failed save changed the snapshot")
	}
	if err := d.Discard(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Load(ctx); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load after Discard: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(d.Path()))
	if len(entries) != 1 || !bytes.Contains([]byte(entries[0].Name()), []byte(".bad-")) {
		t.Fatalf("after Discard the directory holds %v; want the one file set aside", entries)
	}
}
