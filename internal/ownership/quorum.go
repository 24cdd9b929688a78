package ownership

import (
	"fmt"
	"slices"
	"time"
)

// A node acts as the authority for keys only while it sees a strict
// majority of the cluster. The cluster's size counts the members alive in
// this node's view and the members that failed (crashed, cut off, paused)
// and are not forgotten, but not those that left gracefully: a cluster
// that shrinks by leaves shrinks its denominator, while a node alone in a
// 2|1 split knows it is the minority.

// Quorum is one node's count of the cluster, by member name.
type Quorum struct {
	Alive  []string // names with an instance alive, this node's included; sorted
	Failed []string // names whose last instance failed and is not forgotten; sorted
	// FailedIDs are the failed instances' ids, which rings use; every
	// failed instance, even of a name that came back.
	FailedIDs map[string]bool
}

// Size is the cluster's size as far as a majority goes.
func (q Quorum) Size() int { return len(q.Alive) + len(q.Failed) }

// OK reports whether the alive members are a strict majority.
func (q Quorum) OK() bool { return 2*len(q.Alive) > q.Size() }

func (q Quorum) String() string {
	return fmt.Sprintf("%d of %d members alive", len(q.Alive), q.Size())
}

// Same reports whether q and o count the same members.
func (q Quorum) Same(o Quorum) bool {
	return slices.Equal(q.Alive, o.Alive) && slices.Equal(q.Failed, o.Failed)
}

// foreignName stands for a member whose metadata this version cannot read.
const foreignName = "(another version)"

// count counts the cluster as members describes it, at now.
//
// A failed member stops counting after ForgetFailedAfter only while the
// others are a majority with it counted: a node cut off alone must not
// shrink its cluster to itself by waiting. Forgotten by time, it stays
// forgotten, like one the operator forgot (Forget). A member of another
// protocol version counts toward the size but never as alive.
func (c *Core) count(members []Member, now time.Duration) Quorum {
	type last struct {
		alive  bool
		id     string
		since  time.Duration
		leaved bool
	}
	byName := map[string]*last{c.cfg.Name: {alive: true}}
	q := Quorum{FailedIDs: map[string]bool{}}
	foreign := 0
	for _, m := range members {
		if m.Foreign {
			if m.Alive {
				foreign++
			}
			continue
		}
		l := byName[m.Name]
		if l == nil {
			l = &last{}
			byName[m.Name] = l
		}
		if !m.Alive && !m.Leaving {
			q.FailedIDs[m.ID] = true
		}
		switch {
		case m.Alive:
			l.alive = true
		case l.id == "" || m.Since > l.since:
			l.id, l.since, l.leaved = m.ID, m.Since, m.Leaving
		}
	}
	type failedName struct {
		name, id string
		expired  bool
	}
	var failed []failedName
	for name, l := range byName {
		switch {
		case l.alive:
			q.Alive = append(q.Alive, name)
		case !l.leaved && !c.forgotten[l.id]:
			failed = append(failed, failedName{name, l.id, now-l.since >= c.cfg.ForgetFailedAfter})
		}
	}
	// Counted with every failed member, the others are a majority: the
	// ones failed long ago may go, for good.
	forgetExpired := 2*len(q.Alive) > len(q.Alive)+len(failed)+foreign
	for _, f := range failed {
		if f.expired && forgetExpired {
			c.forgotten[f.id] = true
			delete(q.FailedIDs, f.id)
			continue
		}
		q.Failed = append(q.Failed, f.name)
	}
	for range foreign {
		q.Failed = append(q.Failed, foreignName)
	}
	slices.Sort(q.Alive)
	slices.Sort(q.Failed)
	return q
}
