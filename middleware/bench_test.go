package middleware

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/drlimit/drl/bucket"
)

// BenchmarkHTTPMiddleware is a request through the middleware with an
// embedded node that owns the key; BenchmarkHTTPBare the same handler
// without it. The difference is what the middleware costs a request.
func BenchmarkHTTPMiddleware(b *testing.B) {
	node := oneNodeB(b)
	mw, err := NewHTTP(HTTPConfig{Limiter: node, Key: KeyByHeader("X-Key"),
		Routes: []Route{{Pattern: "GET /api/", Rule: Rule{Limits: []Limit{{Name: "api", Limit: bucket.MaxLimit, Window: time.Hour}}}}}})
	if err != nil {
		b.Fatal(err)
	}
	benchHandler(b, mw(ok))
}

func BenchmarkHTTPBare(b *testing.B) { benchHandler(b, ok) }

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })

func benchHandler(b *testing.B, h http.Handler) {
	req := httptest.NewRequest("GET", "/api/items", nil)
	req.Header.Set("X-Key", "k1")
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
