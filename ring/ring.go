// Package ring maps keys to the cluster member that owns them, with a
// consistent-hash ring with bounded loads (github.com/buraksezer/consistent,
// hashed with xxhash).
//
// A Ring is an immutable snapshot of one membership: build a new one when
// members change and swap it in atomically. Owner lookups on a snapshot
// are an array index, never block and never allocate. The package knows
// nothing of gossip or RPC; members are plain names.
package ring

import (
	"fmt"
	"math"
	"slices"

	"github.com/buraksezer/consistent"
	"github.com/cespare/xxhash/v2"
)

// Config shapes the ring. The zero value of each field means its default;
// DESIGN.md has the measurements behind the defaults.
type Config struct {
	// Partitions is how many slices the key space is cut into; each is
	// owned by one member. Default 4099 (a prime).
	Partitions int
	// ReplicationFactor is how many points each member has on the hash
	// circle. Default 200.
	ReplicationFactor int
	// Load bounds a member's partitions at Load times the mean. Default
	// 1.05. Must be above 1.
	Load float64
}

// Defaults for Config.
const (
	DefaultPartitions        = 4099
	DefaultReplicationFactor = 200
	DefaultLoad              = 1.05
)

func (c Config) withDefaults() Config {
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = DefaultReplicationFactor
	}
	if c.Load == 0 {
		c.Load = DefaultLoad
	}
	return c
}

// Validate reports whether c, after defaults, can build a ring.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Partitions < 1 || c.Partitions > 1<<20:
		return fmt.Errorf("ring: Partitions %d must be 1 to %d", c.Partitions, 1<<20)
	case c.ReplicationFactor < 1 || c.ReplicationFactor > 1024:
		return fmt.Errorf("ring: ReplicationFactor %d must be 1 to 1024", c.ReplicationFactor)
	case !(c.Load > 1 && c.Load <= 10): // also rejects NaN
		return fmt.Errorf("ring: Load %v must be above 1 and at most 10", c.Load)
	}
	return nil
}

// Ring is one immutable assignment of partitions to members. The zero
// value is an empty ring that owns nothing. A Ring is safe for concurrent
// use.
type Ring struct {
	members []string // sorted
	owners  []int32  // partition -> index into members
}

// New builds the ring for members (names must be unique and non-empty).
// Every node that builds a ring from the same config and member set gets
// the same assignment, whatever the order of members.
func New(cfg Config, members []string) (*Ring, error) {
	placed := make(map[string]string, len(members))
	for _, m := range members {
		if _, ok := placed[m]; ok {
			return nil, fmt.Errorf("ring: member %q listed twice", m)
		}
		placed[m] = m
	}
	return NewPlaced(cfg, placed)
}

// NewPlaced builds a ring whose members (the keys of placed, which Owner
// returns) take the positions of their values: a member that comes back
// under a new id but the same position owns the same partitions again.
// Ids and positions must be unique and non-empty.
func NewPlaced(cfg Config, placed map[string]string) (*Ring, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	sorted := make([]string, 0, len(placed))
	byPosition := make(map[string]int32, len(placed))
	for id, pos := range placed {
		if id == "" || pos == "" {
			return nil, fmt.Errorf("ring: empty member name or position (%q at %q)", id, pos)
		}
		if _, ok := byPosition[pos]; ok {
			return nil, fmt.Errorf("ring: two members at position %q", pos)
		}
		byPosition[pos] = 0
		sorted = append(sorted, id)
	}
	slices.Sort(sorted)
	r := &Ring{members: sorted}
	if len(sorted) == 0 {
		return r, nil
	}
	// consistent panics when the bounded loads leave no room for every
	// partition; check its arithmetic first so that it never can.
	n := len(sorted)
	perMember := math.Ceil(float64(cfg.Partitions/n) * cfg.Load)
	if cfg.Partitions < n || float64(n)*perMember < float64(cfg.Partitions) {
		return nil, fmt.Errorf("ring: %d partitions cannot be spread over %d members at load %v", cfg.Partitions, n, cfg.Load)
	}
	for i, id := range sorted {
		byPosition[placed[id]] = int32(i)
	}
	// Points go on the circle in the order of their positions, so that the
	// assignment depends on positions alone, not on the ids behind them.
	positions := make([]string, 0, n)
	for pos := range byPosition {
		positions = append(positions, pos)
	}
	slices.Sort(positions)
	cms := make([]consistent.Member, n)
	for i, pos := range positions {
		cms[i] = member(pos)
	}
	c := consistent.New(cms, consistent.Config{
		Hasher:            hasher{},
		PartitionCount:    cfg.Partitions,
		ReplicationFactor: cfg.ReplicationFactor,
		Load:              cfg.Load,
	})
	r.owners = make([]int32, cfg.Partitions)
	for p := range r.owners {
		r.owners[p] = byPosition[c.GetPartitionOwner(p).String()]
	}
	return r, nil
}

type member string

func (m member) String() string { return string(m) }

type hasher struct{}

func (hasher) Sum64(b []byte) uint64 { return xxhash.Sum64(b) }

// Partition returns the partition of a key's 64-bit hash.
func (r *Ring) Partition(keyHash uint64) int {
	return int(keyHash % uint64(len(r.owners)))
}

// Owner returns the member that owns a key's 64-bit hash, or "" when the
// ring has no members.
func (r *Ring) Owner(keyHash uint64) string {
	if len(r.owners) == 0 {
		return ""
	}
	return r.members[r.owners[keyHash%uint64(len(r.owners))]]
}

// Members returns the ring's members, sorted. The caller may keep it.
func (r *Ring) Members() []string { return slices.Clone(r.members) }

// Len returns the number of members.
func (r *Ring) Len() int { return len(r.members) }

// Has reports whether name is a member.
func (r *Ring) Has(name string) bool {
	_, ok := slices.BinarySearch(r.members, name)
	return ok
}

// Shares returns each member's share of the partitions, in [0, 1].
func (r *Ring) Shares() map[string]float64 {
	shares := make(map[string]float64, len(r.members))
	for _, m := range r.members {
		shares[m] = 0
	}
	for _, i := range r.owners {
		shares[r.members[i]] += 1 / float64(len(r.owners))
	}
	return shares
}
