package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/drlimit/drl/api/drlv1"
)

// The status page in a real browser (Debian's headless Chromium) against
// three real processes: it lists three live members, and after one leaves
// it shows two. With DRL_UPDATE_SCREENSHOT=1 it also refreshes the
// screenshot in docs/.
func TestStatusPageInBrowser(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("status page: no chromium (Debian's chromium package; .ci/run installs it); skipped")
	}
	bin := buildNode(t)
	a := startProc(t, bin, "a", "")
	b := startProc(t, bin, "b", a.gossipAddr)
	c := startProc(t, bin, "c", a.gossipAddr)
	waitRing(t, []*proc{a, b, c}, 3, 20*time.Second)
	url := "http://" + a.httpAddr + "/status"

	dom := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu",
			"--user-data-dir="+t.TempDir(), "--dump-dom", url).Output()
		if err != nil {
			t.Fatalf("chromium --dump-dom: %v", err)
		}
		return string(out)
	}
	alive := regexp.MustCompile(`class="member" data-name="[^"]+" data-state="alive"`)
	page := dom()
	if n := len(alive.FindAllString(page, -1)); n != 3 {
		t.Fatalf("the page lists %d live members, want 3:\n%s", n, page)
	}
	if shot := os.Getenv("DRL_UPDATE_SCREENSHOT"); shot != "" {
		// Some traffic first, so that the rates say something.
		for i := range 600 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			a.client.Check(ctx, &drlv1.CheckRequest{UserId: "user-" + strconv.Itoa(i%40), Action: "api", Limit: 10,
				Window: durationpb.New(time.Minute)})
			cancel()
			time.Sleep(4 * time.Millisecond)
		}
		path, _ := filepath.Abs("../../docs/status.png")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
			"--user-data-dir="+t.TempDir(), "--window-size=1100,760", "--screenshot="+path, url).CombinedOutput(); err != nil {
			t.Fatalf("screenshot: %v\n%s", err, out)
		}
	}

	c.cmd.Process.Signal(syscall.SIGTERM) // leaves gracefully
	c.cmd.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for {
		page = dom()
		if len(alive.FindAllString(page, -1)) == 2 && regexp.MustCompile(`data-name="c" data-state="left"`).MatchString(page) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page did not show c gone within 30 s:\n%s", page)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !regexp.MustCompile(`ring changed to a, b<`).MatchString(page) {
		t.Fatalf("no ring-change event on the page:\n%s", page)
	}
}
