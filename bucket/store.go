package bucket

import (
	"time"

	"github.com/drlimit/drl/internal/engine"
)

// StoreConfig configures a Store; the zero value of every field means its
// default. Clock supplies "now" for every decision (default SystemClock()).
// Hasher maps (user, action) to a Key (default NewKeyHasher()). MinWindow
// and MaxWindow bound Request.Window (default DefaultMinWindow and
// DefaultMaxWindow; at most HardMaxWindow). Shards is the number of
// independently locked parts of the table, a power of two (default
// DefaultShards). MaxEntries caps the keys held: a new key at a full shard
// drops the entry closest to fresh among a small sample (default
// DefaultMaxEntries, about 800 MB). SweepInterval is how often the
// background sweeper looks for entries that are fresh again (default
// DefaultSweepInterval; negative disables it, and entries are then dropped
// only lazily). Its Validate method reports the first invalid field.
type StoreConfig = engine.Config

// Default configuration values.
const (
	DefaultMinWindow     = time.Second
	DefaultMaxWindow     = time.Hour
	DefaultShards        = 256
	DefaultMaxEntries    = 10_000_000
	DefaultSweepInterval = 250 * time.Millisecond
)

// Stats is a snapshot of a Store's counters: Keys held now, entries
// Expired (dropped because they were fresh again) and Evicted (live
// entries dropped to respect MaxEntries), and the sweeper's SweepVisited
// entries and SweepTime spent.
type Stats = engine.Stats

// Store holds one bucket per key in memory and answers checks against
// them. Checks on one key are serialized; checks on keys in different
// shards run in parallel. A Store is safe for concurrent use; its zero
// value is not usable: call NewStore.
type Store struct {
	s engine.Store
}

// NewStore returns a Store, with its sweeper running unless disabled.
// Call Close to stop the sweeper.
func NewStore(cfg StoreConfig) (*Store, error) {
	s := new(Store)
	if err := engine.Init(&s.s, cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// Check spends req.Hits from the bucket of (req.UserID, req.Action) and
// returns the decision. The error is non-nil only when there is no
// decision: bad input (ErrInvalidArgument, and no state changes) or a
// closed store (ErrClosed).
func (s *Store) Check(req Request) (Decision, error) { return s.s.Check(req) }

// Validate checks req against this store's bounds without touching any
// state. Errors match ErrInvalidArgument.
func (s *Store) Validate(req Request) error { return s.s.Validate(req) }

// Key returns the Key of (userID, action) under this store's hasher.
func (s *Store) Key(userID, action string) Key { return s.s.Key(userID, action) }

// Reset drops the buckets of the key k (from Key) under every algorithm,
// so that its next check starts from a fresh bucket, and returns how many
// live buckets it dropped. It is how an operator forgives a key.
func (s *Store) Reset(k Key) int { return s.s.Reset(k) }

// Len returns the number of keys held.
func (s *Store) Len() int { return s.s.Len() }

// Stats returns the store's counters.
func (s *Store) Stats() Stats { return s.s.Stats() }

// Close stops the sweeper and makes later checks fail with ErrClosed. It
// is idempotent.
func (s *Store) Close() { s.s.Close() }
