// Package snapshot keeps a node's snapshot of its buckets, which lets
// counts survive a restart of the whole cluster.
//
// A rolling restart needs none of this: buckets move to their new owners
// as nodes leave and join. When every node stops at once (a deploy that
// replaces all pods, a power cut), each writes what it still holds and
// loads it when it starts again, aged by the wall time it was down.
//
// The format is the node's own. Where the bytes live is a Store's: Dir
// keeps them in a file (cluster.Config.StateDir); an application
// embedding a node may keep them anywhere else (cluster.Config.Snapshots).
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Store keeps one node's snapshot as bytes. A node calls Save on graceful
// shutdown and, if configured, periodically; Load once, before it turns
// ready; Discard when Load gave bytes that Read refused. Calls never
// overlap. Implementations are the application's to choose when it embeds
// a node; Dir is the default.
type Store interface {
	// Save replaces the stored snapshot with what write writes. It is
	// atomic: if write fails, or the process dies part way, the previous
	// snapshot stays whole.
	Save(ctx context.Context, write func(io.Writer) error) error
	// Load opens the stored snapshot. It returns an error wrapping
	// fs.ErrNotExist when there is none.
	Load(ctx context.Context) (io.ReadCloser, error)
	// Discard sets the stored snapshot aside so that it is never loaded
	// again, keeping it for a post-mortem if it can.
	Discard(ctx context.Context) error
}

// FileName is the snapshot's file in a Dir.
const FileName = "buckets.snapshot"

// Dir is a Store that keeps the snapshot in a file in a directory, written
// to a temporary file, synced, renamed over the old one and the directory
// synced, with permissions 0600.
type Dir struct {
	path string
}

var _ Store = Dir{}

// NewDir returns a Dir in path, creating the directory (0700) if needed.
func NewDir(path string) (Dir, error) {
	if path == "" {
		return Dir{}, errors.New("snapshot: empty state directory")
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return Dir{}, fmt.Errorf("snapshot: state directory: %w", err)
	}
	return Dir{path: path}, nil
}

// Path returns the snapshot file's path.
func (d Dir) Path() string { return filepath.Join(d.path, FileName) }

// Save implements Store.
func (d Dir) Save(_ context.Context, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(d.path, FileName+".*.tmp")
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := write(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("snapshot: sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), d.Path()); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	ok = true
	// The rename is durable only once the directory's entry is.
	if dir, err := os.Open(d.path); err == nil {
		err = dir.Sync()
		dir.Close()
		if err != nil {
			return fmt.Errorf("snapshot: sync %s: %w", d.path, err)
		}
	}
	return nil
}

// Load implements Store.
func (d Dir) Load(context.Context) (io.ReadCloser, error) {
	f, err := os.Open(d.Path())
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return f, nil
}

// Discard implements Store: the file is renamed with a ".bad-" suffix and
// the time, beside the old one.
func (d Dir) Discard(context.Context) error {
	aside := d.Path() + ".bad-" + time.Now().UTC().Format("20060102T150405.000000000")
	if err := os.Rename(d.Path(), aside); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("snapshot: set aside: %w", err)
	}
	return nil
}
