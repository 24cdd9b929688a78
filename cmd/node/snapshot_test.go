package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/drlimit/drl/api/drlv1"
)

// A restart of the whole cluster, with three real processes: spend 700
// of 1000 per hour on keys, stop every node at once, start them all again
// with their state directories, and find at most 300 left. With SIGTERM each node
// saves on its way out; with SIGKILL only the periodic snapshot is there,
// so what was spent after the last one may be lost.
func TestWholeClusterRestartProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	bin := buildNode(t)
	for _, tc := range []struct {
		name   string
		signal syscall.Signal
		// spent after the last periodic snapshot, and so allowed to be lost
		late int64
	}{
		{"SIGTERM", syscall.SIGTERM, 0},
		{"SIGKILL", syscall.SIGKILL, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dirs := t.TempDir()
			const keys = 20
			const every = 200 * time.Millisecond
			start := func() []*proc {
				var procs []*proc
				for _, name := range []string{"a", "b", "c"} {
					join := ""
					if len(procs) > 0 {
						join = procs[0].gossipAddr
					}
					procs = append(procs, startProc(t, bin, name, join, "-state-dir", filepath.Join(dirs, name),
						"-snapshot-every", every.String(), "-gossip-profile", "local"))
				}
				waitRing(t, procs, 3, 20*time.Second)
				return procs
			}
			check := func(p *proc, user string, hits int64, dry bool) *drlv1.CheckResponse {
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				resp, err := p.client.Check(ctx, &drlv1.CheckRequest{UserId: user, Action: "password-reset", Limit: 1000,
					Window: durationpb.New(time.Hour), Hits: &hits, DryRun: dry})
				if err != nil {
					t.Fatalf("%s: check on %s: %v", p.name, user, err)
				}
				return resp
			}
			procs := start()
			for k := range keys {
				if resp := check(procs[k%3], fmt.Sprint("user-", k), 700, false); !resp.GetAllowed() {
					t.Fatalf("spending 700 on user-%d: %v", k, resp)
				}
			}
			if tc.late > 0 {
				time.Sleep(3 * every) // a periodic snapshot holds the 700 now
				for k := range keys {
					check(procs[0], fmt.Sprint("user-", k), tc.late, false)
				}
			}
			for _, p := range procs {
				if err := p.cmd.Process.Signal(tc.signal); err != nil {
					t.Fatal(err)
				}
			}
			for _, p := range procs {
				p.cmd.Wait()
			}
			for _, name := range []string{"a", "b", "c"} {
				if fi, err := os.Stat(filepath.Join(dirs, name, "buckets.snapshot")); err != nil || fi.Mode().Perm() != 0o600 {
					t.Fatalf("%s's snapshot: %v, %v; want a 0600 file", name, fi, err)
				}
			}
			again := start()
			// A bucket may sit in the snapshot of a member other than its
			// owner (it was handed over as the cluster stopped); the owner
			// waits for that member's handoff before it decides a key it
			// holds nothing for.
			for k := range keys {
				left := check(again[(k+1)%3], fmt.Sprint("user-", k), 1, true).GetRemaining()
				if left > 300 || left < 300-tc.late {
					t.Errorf("user-%d has %d left after the restart; want %d to 300", k, left, 300-tc.late)
				}
			}
		})
	}
}
