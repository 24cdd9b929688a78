package envoyrls

import (
	"context"
	"strings"
	"testing"

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/protobuf/proto"

	"github.com/drlimit/drl/cluster/clustertest"
)

// FuzzShouldRateLimit decodes any bytes as Envoy's request and asks a real
// node: an answer has one status per descriptor, and nothing panics.
func FuzzShouldRateLimit(f *testing.F) {
	for _, d := range [][]string{{"remote_address", "10.0.0.1"}, {"path", "/login", "user", "ann"}, {"service", "a"}, {"", ""}} {
		req := &rlsv3.RateLimitRequest{Domain: "edge", HitsAddend: 2, Descriptors: []*ratelimitv3.RateLimitDescriptor{descriptor(d...)}}
		b, _ := proto.Marshal(req)
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0x04, 'e', 'd', 'g', 'e'})
	rules, err := LoadRules("testdata/rules.yaml", 0, 0)
	if err != nil {
		f.Fatal(err)
	}
	svc := NewService(clustertest.Start(f, 1, nil)[0], rules)
	f.Fuzz(func(t *testing.T, b []byte) {
		var req rlsv3.RateLimitRequest
		if proto.Unmarshal(b, &req) != nil {
			return
		}
		resp, err := svc.ShouldRateLimit(context.Background(), &req)
		if err == nil && len(resp.GetStatuses()) != len(req.GetDescriptors()) {
			t.Fatalf("%d statuses for %d descriptors", len(resp.GetStatuses()), len(req.GetDescriptors()))
		}
	})
}

// FuzzReadRules reads any text as a rules file: an error or rules, never a
// panic.
func FuzzReadRules(f *testing.F) {
	f.Add("domain: d\ndescriptors: [{key: k, rate_limit: {unit: second, requests_per_unit: 1}}]\n")
	f.Add("domain: d\ndescriptors: [{key: k, value: v, descriptors: [{key: x, rate_limit: {window: 2s, requests_per_unit: 3}}]}]\n---\ndomain: e\n")
	f.Add("domain: [\n")
	f.Fuzz(func(t *testing.T, text string) {
		ReadRules(strings.NewReader(text), 0, 0)
	})
}
