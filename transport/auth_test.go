package transport

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	checkToken = "check-token-0123456789"
	adminToken = "admin-token-0123456789"
)

func loadTokens(t *testing.T, tok string) *Tokens {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

// Every combination of configured tokens, presented token and role, with
// the refusal each gets: ErrNoToken (Unauthenticated, 401) or ErrRole
// (PermissionDenied, 403).
func TestTokenRoles(t *testing.T) {
	checks, admins := loadTokens(t, checkToken), loadTokens(t, adminToken)
	both := ServerConfig{Tokens: checks, AdminTokens: admins}
	checkOnly := ServerConfig{Tokens: checks}
	adminOnly := ServerConfig{AdminTokens: admins}
	for _, c := range []struct {
		name      string
		cfg       ServerConfig
		need      Role
		presented string
		want      error
	}{
		{"open check", ServerConfig{}, RoleCheck, "", nil},
		{"open admin", ServerConfig{}, RoleAdmin, "", nil},
		{"check token checks", both, RoleCheck, checkToken, nil},
		{"check token resets", both, RoleAdmin, checkToken, ErrRole},
		{"admin token checks", both, RoleCheck, adminToken, nil},
		{"admin token resets", both, RoleAdmin, adminToken, nil},
		{"no token checks", both, RoleCheck, "", ErrNoToken},
		{"no token resets", both, RoleAdmin, "", ErrNoToken},
		{"wrong token resets", both, RoleAdmin, "someone-else-0123456789", ErrNoToken},
		{"check-only file: check", checkOnly, RoleCheck, checkToken, nil},
		{"check-only file: nobody resets", checkOnly, RoleAdmin, checkToken, ErrRole},
		{"admin-only file: checks open", adminOnly, RoleCheck, "", nil},
		{"admin-only file: reset needs it", adminOnly, RoleAdmin, "", ErrNoToken},
		{"admin-only file: admin resets", adminOnly, RoleAdmin, adminToken, nil},
	} {
		var presented []string
		if c.presented != "" {
			presented = []string{c.presented}
		}
		err := allow(c.cfg, "call", c.need, presented)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: allow = %v, want %v", c.name, err, c.want)
		}
	}
}

// Only the check calls are RoleCheck's; anything else, including a call
// added later, is admin.
func TestRolesOfCalls(t *testing.T) {
	for method, want := range map[string]Role{
		publicService + "Check": RoleCheck, publicService + "WatchRing": RoleCheck, publicService + "Members": RoleCheck,
		publicService + "Reset": RoleAdmin, publicService + "Forget": RoleAdmin, publicService + "TopDenied": RoleAdmin,
		publicService + "SomethingNew": RoleAdmin,
	} {
		if got := methodRole(method); got != want {
			t.Errorf("methodRole(%s) = %v, want %v", method, got, want)
		}
	}
	for path, want := range map[string]Role{
		"/v1/ratelimit": RoleCheck, "/v1/ratelimit:all": RoleCheck, "/v1/owner": RoleCheck,
		"/v1/reset": RoleAdmin, "/v1/forget": RoleAdmin, "/v1/topdenied": RoleAdmin, "/v1/status": RoleAdmin,
	} {
		if got := pathRole(path); got != want {
			t.Errorf("pathRole(%s) = %v, want %v", path, got, want)
		}
	}
}

// Over HTTP, a check token on an admin endpoint is 403 naming the role;
// no token is 401.
func TestHTTPAdminNeedsAdminToken(t *testing.T) {
	cfg := ServerConfig{Tokens: loadTokens(t, checkToken), AdminTokens: loadTokens(t, adminToken)}
	h := requireToken(cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/v1/reset", checkToken, http.StatusForbidden},
		{"/v1/reset", "", http.StatusUnauthorized},
		{"/v1/reset", adminToken, http.StatusOK},
		{"/v1/status", checkToken, http.StatusForbidden},
		{"/v1/ratelimit", checkToken, http.StatusOK},
		{"/healthz", "", http.StatusOK},
	} {
		r := httptest.NewRequest("POST", c.path, nil)
		if c.token != "" {
			r.Header.Set("Authorization", "Bearer "+c.token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.want {
			t.Errorf("%s with %q: %d, want %d", c.path, c.token, w.Code, c.want)
		}
		if w.Code == http.StatusForbidden && !strings.Contains(w.Body.String(), "role admin") {
			t.Errorf("%s: 403 does not name the role: %s", c.path, w.Body)
		}
	}
}
