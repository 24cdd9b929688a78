package middleware

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"

	"github.com/drlimit/drl"
)

// KeyFunc names the caller a request's limits apply to: the user id of
// its buckets. An error answers the request 400 with the error's text.
type KeyFunc func(r *http.Request) (string, error)

// ErrNoKey is matched by the errors of the KeyFuncs here when a request
// does not carry its key.
var ErrNoKey = errors.New("middleware: request carries no rate-limit key")

// KeyByIP keys by the client's IP address, from the connection (not from
// X-Forwarded-For, which any client can write; put a proxy-aware KeyFunc
// in front if you trust your proxy).
func KeyByIP(r *http.Request) (string, error) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil || host == "" {
		return "", fmt.Errorf("%w: remote address %q", ErrNoKey, r.RemoteAddr)
	}
	return host, nil
}

// KeyByHeader keys by a request header, such as an API key or a user id
// set by an authenticating proxy. A request without it gets 400.
func KeyByHeader(name string) KeyFunc {
	return func(r *http.Request) (string, error) {
		if v := r.Header.Get(name); v != "" {
			return v, nil
		}
		return "", fmt.Errorf("%w: no %s header", ErrNoKey, name)
	}
}

// KeyByRoute puts every caller of a route in one bucket: a limit on the
// route's total rate, whoever calls.
func KeyByRoute(r *http.Request) (string, error) { return "*", nil }

// Route is a Rule for the requests that match Pattern, in
// http.ServeMux's syntax ("GET /api/{id}", "/upload/").
type Route struct {
	Pattern string
	Rule    Rule
}

// HTTPConfig configures the HTTP middleware. Limiter and at least one of
// Routes and Default are required.
type HTTPConfig struct {
	Limiter drl.Limiter
	// Key names the caller; default KeyByIP.
	Key KeyFunc
	// Routes are matched as http.ServeMux matches patterns: the most
	// specific pattern wins.
	Routes []Route
	// Default applies to requests no route matches; nil lets them pass
	// unlimited.
	Default *Rule
	// Headers picks the quota fields sent; default HeadersDraft.
	Headers HeaderStyle
	// OnError decides a request when the cluster gives no answer (no node
	// reachable, or a limit the nodes reject). Default: log and allow, so
	// that the limiter's outage is not the service's.
	OnError func(r *http.Request, err error) (allow bool)
	// Denied writes the answer to a denied request, after the quota
	// fields and Retry-After are set. Default: 429 with a short text.
	Denied http.Handler
}

// NewHTTP returns the middleware, or an ErrConfig naming what is wrong.
func NewHTTP(cfg HTTPConfig) (func(http.Handler) http.Handler, error) {
	if cfg.Limiter == nil {
		return nil, fmt.Errorf("%w: no Limiter", ErrConfig)
	}
	if len(cfg.Routes) == 0 && cfg.Default == nil {
		return nil, fmt.Errorf("%w: no Routes and no Default: nothing would be limited", ErrConfig)
	}
	if cfg.Key == nil {
		cfg.Key = KeyByIP
	}
	if cfg.OnError == nil {
		cfg.OnError = func(r *http.Request, err error) bool {
			slog.Warn("rate limiter gave no answer; allowing", "path", r.URL.Path, "err", err)
			return true
		}
	}
	if cfg.Denied == nil {
		cfg.Denied = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprintf(w, "rate limit exceeded; retry in %ss\n", w.Header().Get("Retry-After"))
		})
	}
	if cfg.Default != nil {
		if err := cfg.Default.validate("Default"); err != nil {
			return nil, err
		}
	}
	// The routes' patterns go into a ServeMux of our own, which finds the
	// rule of a request exactly as the application's mux would.
	rules := http.NewServeMux()
	for i := range cfg.Routes {
		route := &cfg.Routes[i]
		if err := route.Rule.validate("route " + strconv.Quote(route.Pattern)); err != nil {
			return nil, err
		}
		if err := register(rules, route); err != nil {
			return nil, err
		}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rule := cfg.Default
			if h, _ := rules.Handler(r); h != nil {
				if rh, ok := h.(routeHandler); ok { // not a redirect, not "not found"
					rule = &rh.route.Rule
				}
			}
			if rule == nil {
				next.ServeHTTP(w, r)
				return
			}
			user, err := key(cfg.Key(r))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			v, err := decide(r.Context(), cfg.Limiter, rule, user)
			if err != nil {
				if cfg.OnError(r, err) {
					next.ServeHTTP(w, r)
				} else {
					http.Error(w, "rate limiter unavailable", http.StatusServiceUnavailable)
				}
				return
			}
			for _, f := range v.fields(cfg.Headers) {
				w.Header().Set(f[0], f[1])
			}
			if !v.allowed {
				cfg.Denied.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}, nil
}

// routeHandler marks a route in the rules mux; it is never served.
type routeHandler struct{ route *Route }

func (routeHandler) ServeHTTP(http.ResponseWriter, *http.Request) {}

// register adds a route's pattern, turning ServeMux's panic on a bad or
// conflicting pattern into an error.
func register(mux *http.ServeMux, route *Route) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: route %q: %v", ErrConfig, route.Pattern, p)
		}
	}()
	mux.Handle(route.Pattern, routeHandler{route})
	return nil
}
