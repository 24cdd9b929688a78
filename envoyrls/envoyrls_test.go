package envoyrls

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/drlimit/drl/cluster/clustertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rls serves the test rules from a real two-node cluster over real gRPC
// and returns an Envoy-shaped client.
func rls(t *testing.T) rlsv3.RateLimitServiceClient {
	t.Helper()
	rules, err := LoadRules("testdata/rules.yaml", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	nodes := clustertest.Start(t, 2, nil)
	conn := clustertest.ServeGRPC(t, NewService(nodes[1], rules).Register)
	return rlsv3.NewRateLimitServiceClient(conn)
}

func descriptor(kv ...string) *ratelimitv3.RateLimitDescriptor {
	d := &ratelimitv3.RateLimitDescriptor{}
	for i := 0; i+1 < len(kv); i += 2 {
		d.Entries = append(d.Entries, &ratelimitv3.RateLimitDescriptor_Entry{Key: kv[i], Value: kv[i+1]})
	}
	return d
}

func ask(t *testing.T, c rlsv3.RateLimitServiceClient, domain string, ds ...*ratelimitv3.RateLimitDescriptor) *rlsv3.RateLimitResponse {
	t.Helper()
	resp, err := c.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{Domain: domain, Descriptors: ds})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestShouldRateLimit(t *testing.T) {
	c := rls(t)
	addr := descriptor("remote_address", "10.0.0.1")
	for i := range 3 {
		resp := ask(t, c, "edge", addr)
		st := resp.GetStatuses()[0]
		if resp.GetOverallCode() != rlsv3.RateLimitResponse_OK || st.GetLimitRemaining() != uint32(2-i) ||
			st.GetCurrentLimit().GetRequestsPerUnit() != 3 || st.GetCurrentLimit().GetUnit() != rlsv3.RateLimitResponse_RateLimit_MINUTE {
			t.Fatalf("request %d: %v", i, resp)
		}
	}
	if resp := ask(t, c, "edge", addr); resp.GetOverallCode() != rlsv3.RateLimitResponse_OVER_LIMIT ||
		resp.GetStatuses()[0].GetCode() != rlsv3.RateLimitResponse_OVER_LIMIT {
		t.Fatalf("fourth request: %v", resp)
	}
	// Another address has its own bucket; unknown and unlimited
	// descriptors and unknown domains pass with no limit.
	if resp := ask(t, c, "edge", descriptor("remote_address", "10.0.0.2")); resp.GetOverallCode() != rlsv3.RateLimitResponse_OK {
		t.Fatalf("another address: %v", resp)
	}
	for _, d := range []*ratelimitv3.RateLimitDescriptor{descriptor("health", "x"), descriptor("nothing", "x"),
		descriptor("path", "/other"), descriptor("remote_address", "10.0.0.1", "deeper", "x")} {
		for range 5 {
			if resp := ask(t, c, "edge", d); resp.GetOverallCode() != rlsv3.RateLimitResponse_OK || resp.GetStatuses()[0].GetCurrentLimit() != nil {
				t.Fatalf("%v: %v", d, resp)
			}
		}
	}
	if resp := ask(t, c, "elsewhere", addr); resp.GetOverallCode() != rlsv3.RateLimitResponse_OK {
		t.Fatalf("unknown domain: %v", resp)
	}

	// Shadow mode: over the limit, still OK.
	for range 3 {
		if resp := ask(t, c, "edge", descriptor("path", "/search")); resp.GetOverallCode() != rlsv3.RateLimitResponse_OK {
			t.Fatalf("shadow rule: %v", resp)
		}
	}

	// Several descriptors: denied if one denies, and then the others
	// spend nothing. /login allows 2 per hour; the nested user rule 1 per
	// 10 s.
	login := descriptor("path", "/login")
	user := descriptor("path", "/login", "user", "ann")
	if resp := ask(t, c, "edge", login, user); resp.GetOverallCode() != rlsv3.RateLimitResponse_OK ||
		resp.GetStatuses()[0].GetCurrentLimit().GetName() != "login" {
		t.Fatalf("first login: %v", resp)
	}
	for range 3 {
		resp := ask(t, c, "edge", login, user)
		if resp.GetOverallCode() != rlsv3.RateLimitResponse_OVER_LIMIT || resp.GetStatuses()[0].GetCode() != rlsv3.RateLimitResponse_OK ||
			resp.GetStatuses()[1].GetCode() != rlsv3.RateLimitResponse_OVER_LIMIT {
			t.Fatalf("second login: %v", resp)
		}
		if got := resp.GetStatuses()[0].GetLimitRemaining(); got != 1 {
			t.Fatalf("login limit after one admitted request and denied ones: %d remaining, want 1", got)
		}
	}

	// hits_addend, per request and per descriptor; and Envoy's override.
	resp, err := c.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{Domain: "internal", HitsAddend: 15,
		Descriptors: []*ratelimitv3.RateLimitDescriptor{descriptor("service", "a")}})
	if err != nil || resp.GetStatuses()[0].GetLimitRemaining() != 5 {
		t.Fatalf("hits_addend 15 of burst 20: %v %v", resp, err)
	}
	d := descriptor("service", "b")
	d.HitsAddend = wrapperspb.UInt64(7)
	d.Limit = &ratelimitv3.RateLimitDescriptor_RateLimitOverride{RequestsPerUnit: 10, Unit: 2}
	resp, err = c.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{Domain: "internal", Descriptors: []*ratelimitv3.RateLimitDescriptor{d}})
	if err != nil || resp.GetStatuses()[0].GetLimitRemaining() != 3 || resp.GetStatuses()[0].GetCurrentLimit().GetUnit() != rlsv3.RateLimitResponse_RateLimit_MINUTE {
		t.Fatalf("override 10/min with 7 hits: %v %v", resp, err)
	}
}

func TestShouldRateLimitBadRequests(t *testing.T) {
	c := rls(t)
	negative := descriptor("service", "a")
	negative.IsNegativeHits = true
	for name, req := range map[string]*rlsv3.RateLimitRequest{
		"no domain":        {Descriptors: []*ratelimitv3.RateLimitDescriptor{descriptor("service", "a")}},
		"no descriptors":   {Domain: "edge"},
		"empty key":        {Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{descriptor("", "a")}},
		"negative hits":    {Domain: "internal", Descriptors: []*ratelimitv3.RateLimitDescriptor{negative}},
		"too many":         {Domain: "edge", Descriptors: make([]*ratelimitv3.RateLimitDescriptor, 17)},
		"hits over burst":  {Domain: "internal", HitsAddend: 21, Descriptors: []*ratelimitv3.RateLimitDescriptor{descriptor("service", "a")}},
		"override per day": {Domain: "internal", Descriptors: []*ratelimitv3.RateLimitDescriptor{{Entries: descriptor("service", "c").Entries, Limit: &ratelimitv3.RateLimitDescriptor_RateLimitOverride{RequestsPerUnit: 5, Unit: 4}}}},
	} {
		if _, err := c.ShouldRateLimit(context.Background(), req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
}

func TestRulesErrorsNameTheRule(t *testing.T) {
	cases := map[string]struct{ yaml, want string }{
		"unknown field":   {"domain: d\ndescriptors:\n  - key: k\n    rate_limt: {unit: second, requests_per_unit: 1}\n", "rate_limt"},
		"no domain":       {"descriptors: []\n", "no domain"},
		"empty file":      {"", "no domains"},
		"twice a domain":  {"domain: d\ndescriptors: [{key: k, rate_limit: {unit: second, requests_per_unit: 1}}]\n---\ndomain: d\n", "appears twice"},
		"bad unit":        {"domain: d\ndescriptors: [{key: k, rate_limit: {unit: fortnight, requests_per_unit: 1}}]\n", `descriptors[0] (k): rate_limit: unit "fortnight"`},
		"window too long": {"domain: d\ndescriptors: [{key: k, rate_limit: {window: 3h, requests_per_unit: 1}}]\n", "window"},
		"zero requests":   {"domain: d\ndescriptors: [{key: k, rate_limit: {unit: second}}]\n", "limit"},
		"both":            {"domain: d\ndescriptors: [{key: k, rate_limit: {unit: second, window: 2s, requests_per_unit: 1}}]\n", "not both"},
		"nested no key":   {"domain: d\ndescriptors: [{key: k, value: v, descriptors: [{value: x, rate_limit: {unit: second, requests_per_unit: 1}}]}]\n", `(k=v): descriptors[0]: no key`},
		"duplicate":       {"domain: d\ndescriptors: [{key: k, value: v, rate_limit: {unit: second, requests_per_unit: 1}}, {key: k, value: v, rate_limit: {unit: second, requests_per_unit: 2}}]\n", "k=v appears twice"},
		"no limit":        {"domain: d\ndescriptors: [{key: k}]\n", "neither"},
		"bad algorithm":   {"domain: d\ndescriptors: [{key: k, rate_limit: {unit: second, requests_per_unit: 1, algorithm: leaky}}]\n", "leaky"},
		"bad policy":      {"domain: d\ndescriptors: [{key: k, rate_limit: {unit: second, requests_per_unit: 1, fail_policy: maybe}}]\n", "maybe"},
		"unlimited+unit":  {"domain: d\ndescriptors: [{key: k, rate_limit: {unlimited: true, unit: second}}]\n", "unlimited"},
		"not yaml":        {"domain: [\n", "document 0"},
	}
	for name, c := range cases {
		_, err := ReadRules(strings.NewReader(c.yaml), 0, 0)
		if !errors.Is(err, ErrRules) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrRules mentioning %q", name, err, c.want)
		}
	}
	// A wider window range, as a node configured for it would accept.
	if _, err := ReadRules(strings.NewReader("domain: d\ndescriptors: [{key: k, rate_limit: {unit: day, requests_per_unit: 1}}]\n"), time.Second, 48*time.Hour); err != nil {
		t.Fatalf("a day with a 48h range: %v", err)
	}
	if _, err := LoadRules("testdata/missing.yaml", 0, 0); !errors.Is(err, ErrRules) {
		t.Fatalf("missing file: %v", err)
	}
}
