package transport

import (
	"context"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/api"
	"github.com/drlimit/drl/bucket"
)

// The OpenAPI document of the HTTP API (api/openapi.yaml) is held to the
// handlers: it validates; it names every route they serve and no other;
// every answer they give validates against its schema for that status
// (no field the document lacks); every field the document names turns up
// in some answer; every request field it names is read, and every one
// read is named; and the error codes and statuses it lists are the ones
// the handlers give.

func openAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatalf("loading api/openapi.yaml: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("api/openapi.yaml does not validate: %v", err)
	}
	return doc
}

func TestOpenAPIValidates(t *testing.T) { openAPI(t) }

// fullLimiter answers with every field of a decision set, and errors on
// request.
type fullLimiter struct{}

func (fullLimiter) CheckWith(_ context.Context, req bucket.Request, _ drl.CheckOptions) (bucket.Decision, error) {
	switch req.UserID {
	case "unavailable":
		return bucket.Decision{}, drl.ErrNoOwner
	case "late":
		return bucket.Decision{}, context.DeadlineExceeded
	case "broken":
		return bucket.Decision{}, errors.New("cluster: broken")
	}
	return bucket.Decision{Allowed: true, Limit: req.Limit, Remaining: 1, ResetAfter: 1500 * time.Millisecond,
		RetryAfter: time.Second, Shadowed: true, DecidedBy: bucket.DecidedByFailPolicy, FallbackReason: bucket.FallbackOwnerUnreachable}, nil
}

func (l fullLimiter) CheckAll(ctx context.Context, checks []drl.LimitCheck) (drl.MultiDecision, error) {
	ds := make([]bucket.Decision, len(checks))
	for i, c := range checks {
		d, err := l.CheckWith(ctx, c.Request, c.Options)
		if err != nil {
			return drl.MultiDecision{}, err
		}
		ds[i] = d
	}
	return drl.MultiDecision{Allowed: true, Decisions: ds}, nil
}

// fullAdmin is an Admin and a Directory whose answers fill every list.
type fullAdmin struct{ oneMember }

func (fullAdmin) Reset(context.Context, string, string) (drl.Reset, error) {
	return drl.Reset{Dropped: 2, ConfirmedBy: []string{"a", "b"}}, nil
}

func (fullAdmin) TopDenied(int) (string, []drl.DeniedKey) {
	return "a", []drl.DeniedKey{{UserID: "u", Action: "a", Denied: 3, Error: 1}}
}

func (fullAdmin) Forget(name string) error {
	if name == "nosuch" {
		return drl.ErrNotFound
	}
	return nil
}

func (fullAdmin) Quorum() drl.Quorum {
	return drl.Quorum{Majority: true, Alive: 2, Size: 3, Failed: []string{"c"}}
}

func fullStatus() Status {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return Status{Node: "a", Ready: true, Keys: 3, ChecksPerSecond: 2.5, DeniedShare: 0.5,
		Members:     []MemberStatus{{Member: drl.Member{Name: "a", GossipAddr: "g", GRPCAddr: "r", HTTPAddr: "h", State: "alive", InRing: true}, Share: 1}},
		Quorum:      drl.Quorum{Majority: true, Alive: 1, Size: 1, Failed: []string{"b"}},
		Fallbacks:   map[string]uint64{"local": 1},
		Events:      []Event{{At: now, What: "ring changed to a", Count: 1}},
		Now:         now,
		RateHistory: []RatePoint{{At: now, PerSecond: 2, DeniedShare: 0.5}},
		Warnings:    []string{"unprotected"},
	}
}

func fullConfig() ServerConfig {
	return ServerConfig{Limiter: fullLimiter{}, Directory: fullAdmin{}, Admin: fullAdmin{},
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			io.WriteString(w, "drl_checks_total 1\n")
		}),
		Status: fullStatus, Ready: func() bool { return true }, MaxBodyBytes: 4096}
}

// docRoutes lists the document's operations as "METHOD /path".
func docRoutes(doc *openapi3.T) []string {
	var out []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, method+" "+path)
		}
	}
	slices.Sort(out)
	return out
}

func TestOpenAPIPathsAreTheRoutes(t *testing.T) {
	doc := openAPI(t)
	var served []string
	for _, p := range newHTTPMux(fullConfig()).patterns {
		served = append(served, strings.Replace(p, "/{$}", "/", 1))
	}
	slices.Sort(served)
	if want := docRoutes(doc); !slices.Equal(served, want) {
		t.Errorf("the handlers serve\n\t%q\nthe document names\n\t%q", served, want)
	}
}

// exchange is one request to the handlers, with the status it must get.
type exchange struct {
	method, target, body, token string
	status                      int
}

func TestOpenAPIAnswersMatchHandlers(t *testing.T) {
	doc := openAPI(t)
	const checkToken, adminToken = "check-token-0123456789", "admin-token-0123456789"
	cfg := fullConfig()
	open := httptest.NewServer(NewHTTPHandler(cfg))
	t.Cleanup(open.Close)
	cfg.Tokens, cfg.AdminTokens = loadTokens(t, checkToken), loadTokens(t, adminToken)
	guarded := httptest.NewServer(NewHTTPHandler(cfg))
	t.Cleanup(guarded.Close)

	check := `{"user_id":"u","action":"a","limit":5,"window":"60s"}`
	exchanges := []exchange{
		{"POST", "/v1/ratelimit", check, "", 200},
		{"POST", "/v1/ratelimit", `{"user_id":"u","action":"a","limit":1e30,"window":60}`, "", 400},
		{"POST", "/v1/ratelimit", `{"user_id":"unavailable","action":"a","limit":5,"window":60}`, "", 503},
		{"POST", "/v1/ratelimit", `{"user_id":"late","action":"a","limit":5,"window":60}`, "", 504},
		{"POST", "/v1/ratelimit", `{"user_id":"broken","action":"a","limit":5,"window":60}`, "", 500},
		{"POST", "/v1/ratelimit", `{"user_id":"u","action":"a","limit":5,"window":60,"pad":"` + strings.Repeat("x", 5000) + `"}`, "", 413},
		{"POST", "/v1/ratelimit:batch", `{"checks":[` + check + `,{"user_id":"u","algorithm":"leaky"}]}`, "", 200},
		{"POST", "/v1/ratelimit:batch", `{"checks":7}`, "", 400},
		{"POST", "/v1/ratelimit:all", `{"limits":[` + check + `]}`, "", 200},
		{"POST", "/v1/ratelimit:all", `{"limits":[]}`, "", 400},
		{"POST", "/v1/ratelimit:all", `{"limits":[{"user_id":"unavailable","action":"a","limit":5,"window":60}]}`, "", 503},
		{"POST", "/v1/reset", `{"user_id":"u","action":"a"}`, "", 200},
		{"POST", "/v1/reset", `{"user_id":7}`, "", 400},
		{"POST", "/v1/forget", `{"name":"b"}`, "", 200},
		{"POST", "/v1/forget", `{"name":"nosuch"}`, "", 404},
		{"GET", "/v1/topdenied?limit=5", "", "", 200},
		{"GET", "/v1/topdenied?limit=0", "", "", 400},
		{"GET", "/v1/members", "", "", 200},
		{"GET", "/v1/owner?user_id=u&action=a", "", "", 200},
		{"GET", "/v1/owner?user_id=u", "", "", 400},
		{"GET", "/v1/status", "", "", 200},
		{"GET", "/status", "", "", 200},
		{"GET", "/", "", "", 302},
		{"GET", "/healthz", "", "", 200},
		{"GET", "/readyz", "", "", 200},
		{"GET", "/metrics", "", "", 200},
		{"GET", "/openapi.yaml", "", "", 200},
		{"GET", "/v2/nothing", "", "", 404},
		{"GET", "/v1/ratelimit", "", "", 405},
		{"POST", "/v1/ratelimit", check, "wrong", 401},
		{"POST", "/v1/reset", `{"user_id":"u","action":"a"}`, checkToken, 403},
		{"POST", "/v1/reset", `{"user_id":"u","action":"a"}`, adminToken, 200},
	}
	// Every path answers a method it does not take with 405.
	for _, r := range docRoutes(doc) {
		method, path, _ := strings.Cut(r, " ")
		if path != "/" {
			other := map[string]string{"GET": "DELETE", "POST": "PUT"}[method]
			exchanges = append(exchanges, exchange{other, path, "", "", 405})
		}
	}
	cover := newCoverage()
	for _, e := range exchanges {
		srv := open
		if e.token != "" {
			srv = guarded
		}
		req, _ := http.NewRequest(e.method, srv.URL+e.target, strings.NewReader(e.body))
		if e.token != "" && e.token != "wrong" {
			req.Header.Set("Authorization", "Bearer "+e.token)
		}
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		what := e.method + " " + e.target
		if resp.StatusCode != e.status {
			t.Errorf("%s = %d %s, want %d", what, resp.StatusCode, body, e.status)
			continue
		}
		path, _, _ := strings.Cut(e.target, "?")
		item := doc.Paths.Find(path)
		if item == nil {
			if e.status != 404 {
				t.Errorf("%s: the document has no path %s", what, path)
			}
			path, item = "/v1/ratelimit", doc.Paths.Find("/v1/ratelimit") // any path: 404 is everyone's
		}
		op := item.GetOperation(e.method)
		if op == nil {
			// Another method: the document's operation on the path says 405.
			for _, o := range item.Operations() {
				op = o
			}
		}
		ref := op.Responses.Status(resp.StatusCode)
		if ref == nil && e.status == 404 {
			ref = doc.Components.Responses["NotFound"]
		}
		if ref == nil {
			t.Errorf("%s: %d, and the document gives no %d for it", what, resp.StatusCode, resp.StatusCode)
			continue
		}
		ctype, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
		if resp.StatusCode == 302 {
			continue
		}
		media := ref.Value.Content.Get(ctype)
		if media == nil {
			t.Errorf("%s: %d with Content-Type %s, which the document does not give", what, resp.StatusCode, ctype)
			continue
		}
		if ctype != "application/json" {
			continue
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Errorf("%s: %q is not JSON", what, body)
			continue
		}
		if err := media.Schema.Value.VisitJSON(v); err != nil {
			t.Errorf("%s: %d %s\ndoes not match the document: %v", what, resp.StatusCode, body, err)
		}
		cover.walk(media.Schema.Value, v)
	}
	// Every field of every answer the document describes turned up.
	for _, path := range doc.Paths.InMatchingOrder() {
		for _, op := range doc.Paths.Find(path).Operations() {
			for _, ref := range op.Responses.Map() {
				if media := ref.Value.Content.Get("application/json"); media != nil {
					cover.missing(t, "", media.Schema.Value)
				}
			}
		}
	}
}

// coverage records, for each object schema, the fields seen in answers.
type coverage struct {
	seen    map[*openapi3.Schema]map[string]bool
	checked map[*openapi3.Schema]bool
}

func newCoverage() *coverage {
	return &coverage{seen: map[*openapi3.Schema]map[string]bool{}, checked: map[*openapi3.Schema]bool{}}
}

func resolved(s *openapi3.Schema) *openapi3.Schema {
	if len(s.AllOf) == 1 && s.Type == nil {
		return s.AllOf[0].Value
	}
	return s
}

func (c *coverage) walk(s *openapi3.Schema, v any) {
	s = resolved(s)
	switch v := v.(type) {
	case map[string]any:
		if c.seen[s] == nil {
			c.seen[s] = map[string]bool{}
		}
		for k, x := range v {
			c.seen[s][k] = true
			if p := s.Properties[k]; p != nil {
				c.walk(p.Value, x)
			}
		}
	case []any:
		if s.Items != nil {
			for _, x := range v {
				c.walk(s.Items.Value, x)
			}
		}
	}
}

func (c *coverage) missing(t *testing.T, at string, s *openapi3.Schema) {
	t.Helper()
	s = resolved(s)
	if c.checked[s] {
		return
	}
	c.checked[s] = true
	for name, p := range s.Properties {
		if !c.seen[s][name] {
			t.Errorf("the document names %s%s, but no answer gave it", at, name)
		}
		c.missing(t, at+name+".", p.Value)
	}
	if s.Items != nil {
		c.missing(t, at, s.Items.Value)
	}
}

// The request fields the document names are the ones the handlers read:
// each, given a value of the wrong kind, is refused by name; and the
// decoder's fields (less their lowerCamelCase twins) are the document's.
func TestOpenAPIRequestFieldsAreRead(t *testing.T) {
	doc := openAPI(t)
	props := doc.Components.Schemas["CheckRequest"].Value.Properties
	var named []string
	for name := range props {
		named = append(named, name)
	}
	slices.Sort(named)

	read := casesOf(t, "jsonread.go", "readCheck")
	if !slices.Equal(read, named) {
		t.Errorf("readCheck reads %q, the document's CheckRequest names %q", read, named)
	}

	srv := httptest.NewServer(NewHTTPHandler(fullConfig()))
	t.Cleanup(srv.Close)
	for _, name := range named {
		body := map[string]any{"user_id": "u", "action": "a", "limit": 5, "window": 60}
		body[name] = map[string]any{}
		b, _ := json.Marshal(body)
		code, out := do(t, "POST", srv.URL+"/v1/ratelimit", string(b))
		if e, _ := out["error"].(map[string]any); code != 400 || e["field"] != name {
			t.Errorf("POST %s = %d %v, want 400 naming %s", b, code, out, name)
		}
	}
}

// casesOf returns the snake_case string constants of the case clauses in
// function fn of file.
func casesOf(t *testing.T, file, fn string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == fn {
			ast.Inspect(fd, func(n ast.Node) bool {
				if cc, ok := n.(*ast.CaseClause); ok {
					for _, e := range cc.List {
						if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
							if s, _ := strconv.Unquote(lit.Value); strings.ToLower(s) == s {
								out = append(out, s)
							}
						}
					}
				}
				return true
			})
		}
	}
	slices.Sort(out)
	return out
}

// The error codes the document lists are those the handlers give: the
// wire codes of checks, and the HTTP API's own.
func TestOpenAPIErrorCodes(t *testing.T) {
	doc := openAPI(t)
	var listed []string
	for _, c := range doc.Components.Schemas["Error"].Value.Properties["code"].Value.Enum {
		listed = append(listed, c.(string))
	}
	slices.Sort(listed)
	var given []string
	for _, err := range []error{&bucket.ArgumentError{Field: "f"}, drl.ErrUnavailable, ErrNotOwner, context.DeadlineExceeded, errors.New("x"), drl.ErrNotFound} {
		given = append(given, errorOf(err).code)
	}
	given = append(given, "METHOD_NOT_ALLOWED", "UNAUTHENTICATED", "PERMISSION_DENIED")
	slices.Sort(given)
	if !slices.Equal(listed, given) {
		t.Errorf("the document lists the codes %q, the handlers give %q", listed, given)
	}
	// Each /v1/ path may want a token; the admin ones an admin token.
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			has := func(code int) bool { return op.Responses.Status(code) != nil }
			v1 := strings.HasPrefix(path, "/v1/")
			if has(401) != v1 {
				t.Errorf("%s %s: lists 401 %v, want %v", method, path, has(401), v1)
			}
			if admin := v1 && pathRole(path) == RoleAdmin; has(403) != admin {
				t.Errorf("%s %s: lists 403 %v, want %v", method, path, has(403), admin)
			}
		}
	}
}
