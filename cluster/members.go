package cluster

import (
	"cmp"
	"slices"

	"github.com/drlimit/drl/transport"
)

func sortMembers(ms []transport.Member) {
	slices.SortFunc(ms, func(a, b transport.Member) int { return cmp.Compare(a.Name, b.Name) })
}
