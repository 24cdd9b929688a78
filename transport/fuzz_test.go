package transport

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
	"github.com/drlimit/drl/internal/engine"
)

// FuzzHTTPBody sends any body to every POST endpoint: the answer is a
// decision or a 4xx with a JSON error, never a panic or a 5xx.
func FuzzHTTPBody(f *testing.F) {
	for _, seed := range []string{
		`{"user_id":"u","action":"a","limit":5,"window":"60s"}`,
		`{"user_id":"u","action":"a","limit":5,"window":"60s","hits":0,"dry_run":true,"shadow":true,"fail_policy":"open"}`,
		`{"checks":[{"user_id":"u","action":"a","limit":1,"window":"1s"},{}]}`,
		`{"limits":[{"user_id":"u","action":"a","limit":1,"window":"1s","algorithm":"gcra","burst":3}]}`,
		`{"user_id":"u","action":"a"}`,
		`{"user_id":"\ud800","action":"a","limit":9223372036854775807,"window":"-1s"}`,
		`{"window":"315576000001s"}`, `[]`, `null`, `{`, ``,
	} {
		f.Add(seed)
	}
	store := newStore(f)
	h := NewHTTPHandler(ServerConfig{Limiter: storeLimiter{store}, Directory: oneMember{},
		Admin: storeAdmin{store}, MaxBodyBytes: 4096})
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/v1/ratelimit", "/v1/ratelimit:batch", "/v1/ratelimit:all", "/v1/reset", "/v1/forget"} {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("POST", path, strings.NewReader(body)))
			if w.Code >= 500 {
				t.Fatalf("POST %s %q: %d %s", path, body, w.Code, w.Body)
			}
			var out map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
				t.Fatalf("POST %s %q: body %q is not JSON", path, body, w.Body)
			}
			if w.Code != http.StatusOK && out["error"] == nil {
				t.Fatalf("POST %s %q: %d without an error object", path, body, w.Code)
			}
		}
	})
}

// storeAdmin serves Reset and TopDenied from one store, as a one-node
// cluster would.
type storeAdmin struct{ store *engine.Store }

func (a storeAdmin) Reset(_ context.Context, userID, action string) (drl.Reset, error) {
	if err := bucket.ValidateIDs(userID, action); err != nil {
		return drl.Reset{}, err
	}
	return drl.Reset{Dropped: a.store.Reset(a.store.Key(userID, action)), ConfirmedBy: []string{"a"}}, nil
}

func (storeAdmin) TopDenied(int) (string, []drl.DeniedKey) { return "a", nil }

func (storeAdmin) Forget(name string) error {
	return fmt.Errorf("no failed member %q: %w", name, drl.ErrNotFound)
}
