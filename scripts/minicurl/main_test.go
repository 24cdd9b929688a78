package main

import (
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// minicurl does what the README's recipes ask of curl: GET, -XPOST with
// -d, -H, --cacert, URLs without a scheme, and bodies of error answers.
func TestAsCurl(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") == "" && r.URL.Path == "/private" {
			w.WriteHeader(http.StatusUnauthorized)
		}
		io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Authorization")+" "+string(body))
	})
	plain := httptest.NewServer(handler)
	defer plain.Close()
	secure := httptest.NewTLSServer(handler)
	defer secure.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: secure.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(plain.URL, "http://")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-s", host + "/v1/members"}, "GET /v1/members  "},
		{[]string{"-s", host + "/v1/owner?user_id=u1&action=login"}, "GET /v1/owner?user_id=u1&action=login  "},
		{[]string{"-s", "-XPOST", host + "/v1/ratelimit", "-d", `{"limit":5}`}, `POST /v1/ratelimit  {"limit":5}`},
		{[]string{"-X", "POST", plain.URL + "/x"}, "POST /x  "},
		{[]string{"-d", "a=1", plain.URL + "/x"}, "POST /x  a=1"},
		{[]string{"-s", plain.URL + "/private"}, "GET /private  "},
		{[]string{"-s", "--cacert", ca, "-H", "Authorization: Bearer t0k", secure.URL + "/private"}, "GET /private Bearer t0k "},
	} {
		var out strings.Builder
		if err := run(tc.args, &out); err != nil || out.String() != tc.want {
			t.Errorf("minicurl %q = %q, %v; want %q", tc.args, out.String(), err, tc.want)
		}
	}
	for _, args := range [][]string{{}, {"-f", plain.URL}, {"-H", "nocolon", plain.URL}, {secure.URL}, {plain.URL, plain.URL}} {
		if err := run(args, io.Discard); err == nil {
			t.Errorf("minicurl %q: no error", args)
		}
	}
}
