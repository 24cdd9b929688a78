package client

import (
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"sort"
	"strconv"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/drlimit/drl/ring"
)

// contractOwners follows api/drl.proto's RingState comment word for word,
// without package ring or buraksezer/consistent, as a client in another
// language would: it returns each partition's owner.
func contractOwners(names []string, partitions, replicationFactor int, load float64) []string {
	names = slices.Clone(names)
	slices.Sort(names)
	holder := map[uint64]string{}
	var points []uint64
	for _, name := range names {
		for i := range replicationFactor {
			h := xxhash.Sum64String(name + strconv.Itoa(i))
			holder[h] = name // the member added later holds an equal point
			points = append(points, h)
		}
	}
	slices.Sort(points)
	maxLoad := math.Ceil(float64(partitions/len(names)) * load)
	owned := map[string]float64{}
	owners := make([]string, partitions)
	var b [8]byte
	for p := range partitions {
		binary.LittleEndian.PutUint64(b[:], uint64(p))
		h := xxhash.Sum64(b[:])
		i := sort.Search(len(points), func(i int) bool { return points[i] >= h })
		for ; ; i++ {
			m := holder[points[i%len(points)]]
			if owned[m]+1 <= maxLoad {
				owners[p], owned[m] = m, owned[m]+1
				break
			}
		}
	}
	return owners
}

// contractKey is the 64 bits that place (user, action), as the contract
// spells them out.
func contractKey(user, action string) uint64 {
	u := xxhash.Sum64String(user)
	a := xxhash.Sum64String(action) + 0x9e3779b97f4a7c15
	return u ^ bits.RotateLeft64(a, 29)
}

// The ring contract documented for clients in other languages places
// every partition, and every key, where the nodes' ring does.
func TestRingContractMatchesRing(t *testing.T) {
	for _, tc := range []struct {
		names             []string
		partitions, rf    int
		load              float64
		defaultParameters bool
	}{
		{names: []string{"node-0", "node-1", "node-2"}, defaultParameters: true},
		{names: []string{"b", "a"}, partitions: 271, rf: 20, load: 1.25},
		{names: []string{"n0", "n1", "n2", "n3", "n4", "n5", "n6"}, partitions: 1009, rf: 50, load: 1.1},
		{names: []string{"solo"}, partitions: 7, rf: 3, load: 2},
	} {
		if tc.defaultParameters {
			tc.partitions, tc.rf, tc.load = ring.DefaultPartitions, ring.DefaultReplicationFactor, ring.DefaultLoad
		}
		placed := map[string]string{}
		for _, n := range tc.names {
			placed[n] = n
		}
		r, err := ring.NewPlaced(ring.Config{Partitions: tc.partitions, ReplicationFactor: tc.rf, Load: tc.load}, placed)
		if err != nil {
			t.Fatal(err)
		}
		want := contractOwners(tc.names, tc.partitions, tc.rf, tc.load)
		for p, owner := range want {
			if got := r.Owner(uint64(p)); got != owner {
				t.Fatalf("%v: partition %d owned by %q, the contract says %q", tc.names, p, got, owner)
			}
		}
		for i := range 2000 {
			user, action := "user-"+strconv.Itoa(i), "act"
			if got, want := r.Owner(ringKey(user, action)), want[contractKey(user, action)%uint64(tc.partitions)]; got != want {
				t.Fatalf("%v: owner of (%q, %q) = %q, the contract says %q", tc.names, user, action, got, want)
			}
		}
	}
}
