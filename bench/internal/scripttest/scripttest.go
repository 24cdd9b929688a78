// Package scripttest runs a bench script end to end, briefly, from a test.
package scripttest

import (
	"math/rand/v2"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Run runs `bash script args...` with BENCH_PORT at lo plus a random
// multiple of 100 below span, and returns what it printed; it fails the
// test if the script fails. It skips the test in -short mode (the script
// builds binaries and runs a cluster) and where there is no bash. Keep lo
// + span below Linux's ephemeral ports (32768), so that no port-0
// listener of another test takes one of the script's.
func Run(t *testing.T, lo, span int, script string, args ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binaries and runs a cluster for tens of seconds")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	cmd.Env = append(cmd.Environ(), "BENCH_PORT="+strconv.Itoa(lo+100*rand.IntN(span/100)))
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return string(out)
}
