package transport

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/api/drlv1"
	"github.com/drlimit/drl/bucket"
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
	owner := newStoreOwner(f)
	h := NewHTTPHandler(ServerConfig{Limiter: storeLimiter{owner.store}, Owner: owner, Directory: oneMember{},
		Admin: storeAdmin{owner.store}, MaxBodyBytes: 4096})
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/v1/ratelimit", "/v1/ratelimit:batch", "/v1/ratelimit:all", "/v1/reset"} {
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

// FuzzPeerMessages decodes any bytes as the peer API's Forward and Handoff
// requests, as a member's server would, and applies what decodes: no
// panic, and a forward answers one result per check or refuses the whole.
func FuzzPeerMessages(f *testing.F) {
	fwd, _ := proto.Marshal(&drlv1.ForwardRequest{From: "b", Checks: []*drlv1.OwnedCheck{
		{KeyHi: 1, KeyLo: 2, Limit: 5, WindowNs: int64(time.Minute), Hits: 1, Count: 3, Lease: 2},
		{KeyHi: 3, KeyLo: 4, Algorithm: 4, Limit: 1, WindowNs: int64(time.Second), Count: 1, DryRun: true},
	}})
	ho, _ := proto.Marshal(&drlv1.HandoffRequest{From: "b", DoneRing: 9, Buckets: []*drlv1.MovedBucket{
		{KeyHi: 1, KeyLo: 2, A: 5, B: -3, FreshInNs: int64(time.Second)},
		{KeyHi: 1, KeyLo: 4, FreshInNs: 1, Log: []*drlv1.MovedLogEntry{{AtNs: -5, N: 2}, {AtNs: 7, N: -1}}},
	}})
	f.Add(fwd)
	f.Add(ho)
	f.Add([]byte{0x12, 0x05, 0x08, 0x01})
	f.Add([]byte{})
	owner := newStoreOwner(f)
	s := &grpcServer{cfg: ServerConfig{Owner: owner, Receiver: owner}.withDefaults()}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr drlv1.ForwardRequest
		if proto.Unmarshal(b, &fr) == nil {
			resp, err := s.Forward(context.Background(), &fr)
			if err == nil && len(resp.GetResults()) != len(fr.GetChecks()) {
				t.Fatalf("%d results for %d checks", len(resp.GetResults()), len(fr.GetChecks()))
			}
		}
		var hr drlv1.HandoffRequest
		if proto.Unmarshal(b, &hr) == nil {
			s.Handoff(context.Background(), &hr)
		}
	})
}

// storeAdmin serves Reset and TopDenied from one store, as a one-node
// cluster would.
type storeAdmin struct{ store *bucket.Store }

func (a storeAdmin) Reset(_ context.Context, userID, action string) (int, []string, error) {
	if err := bucket.ValidateIDs(userID, action); err != nil {
		return 0, nil, err
	}
	return a.store.Reset(a.store.Key(userID, action)), []string{"a"}, nil
}

func (storeAdmin) TopDenied(int) (string, []drl.DeniedKey) { return "a", nil }
