package transport

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/drlimit/drl/api"
	"github.com/drlimit/drl/api/drlv1"
)

// The HTTP/JSON API speaks the JSON form of the gRPC messages, with the
// proto field names (user_id, reset_after) and durations as strings
// ("60s"); check bodies are read by jsonread.go (numbers as numbers or
// strings, windows as seconds or durations, unknown fields ignored):
//
//	POST /v1/ratelimit      CheckRequest -> CheckResponse
//	POST /v1/ratelimit:batch CheckBatchRequest -> CheckBatchResponse
//	POST /v1/ratelimit:all  CheckAllRequest -> CheckAllResponse
//	POST /v1/reset          ResetRequest -> ResetResponse (admin)
//	GET  /v1/topdenied?limit=10  TopDeniedResponse
//	POST /v1/forget         ForgetRequest -> ForgetResponse (admin)
//	GET  /v1/members        MembersResponse
//	GET  /v1/owner?user_id=u&action=a  OwnerResponse
//	GET  /status            a page for people: members, ring shares, rates, events
//	GET  /v1/status         the same as JSON
//	GET  /healthz           200 while the process serves
//	GET  /readyz            200 once joined with a ring built, else 503
//	GET  /metrics           Prometheus metrics
//	GET  /openapi.yaml      the OpenAPI 3 document of all of these (api/openapi.yaml)
//
// Errors are {"error": {"code": "INVALID_ARGUMENT", "message": "...",
// "field": "window"}} with 400, 413 (INVALID_ARGUMENT), 404 (NOT_FOUND),
// 405 (METHOD_NOT_ALLOWED), 503 (UNAVAILABLE) or 504 (DEADLINE_EXCEEDED).
// TestOpenAPIMatchesHandlers holds api/openapi.yaml to these handlers.

var jsonOut = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// NewHTTPHandler returns the node's HTTP API. Serve it with HTTPProtocols
// to take HTTP/2 without TLS (h2c) beside HTTP/1.1.
func NewHTTPHandler(cfg ServerConfig) http.Handler {
	return requireToken(cfg, newHTTPMux(cfg))
}

// routeMux is a ServeMux that remembers the patterns it serves.
type routeMux struct {
	*http.ServeMux
	patterns []string // "METHOD /path", in order
}

func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// newHTTPMux returns the API's routes, without the token check.
func newHTTPMux(cfg ServerConfig) *routeMux {
	cfg = cfg.withDefaults()
	g := &grpcServer{cfg: cfg}
	h := &httpChecks{cfg: cfg}
	mux := &routeMux{ServeMux: http.NewServeMux()}
	mux.HandleFunc("POST /v1/ratelimit", h.check)
	mux.HandleFunc("POST /v1/ratelimit:batch", h.batch)
	mux.HandleFunc("POST /v1/ratelimit:all", h.all)
	if cfg.Admin != nil {
		mux.HandleFunc("POST /v1/reset", func(w http.ResponseWriter, r *http.Request) {
			body, ok := h.readBody(w, r)
			if !ok {
				return
			}
			m, err := decodeCheck(*body)
			putBody(body)
			if err != nil {
				writeError(w, http.StatusBadRequest, decodeError(err))
				return
			}
			reset, err := cfg.Admin.Reset(r.Context(), m.userID, m.action)
			if err != nil {
				writeError(w, httpStatus(err), errorOf(err))
				return
			}
			writeValue(w, http.StatusOK, map[string]any{"dropped": reset.Dropped, "members": nonNil(reset.ConfirmedBy)})
		})
		mux.HandleFunc("POST /v1/forget", func(w http.ResponseWriter, r *http.Request) {
			body, ok := h.readBody(w, r)
			if !ok {
				return
			}
			name, err := decodeName(*body)
			putBody(body)
			if err != nil {
				writeError(w, http.StatusBadRequest, decodeError(err))
				return
			}
			if err := forget(cfg.Admin, name); err != nil {
				writeError(w, httpStatus(err), errorOf(err))
				return
			}
			writeJSON(w, http.StatusOK, &drlv1.ForgetResponse{})
		})
		mux.HandleFunc("GET /v1/topdenied", func(w http.ResponseWriter, r *http.Request) {
			n := 10
			if q := r.URL.Query().Get("limit"); q != "" {
				v, err := strconv.Atoi(q)
				if err != nil || v < 1 || v > 1000 {
					writeError(w, http.StatusBadRequest, httpError{code: "INVALID_ARGUMENT",
						message: "limit " + strconv.Quote(q) + ": want 1 to 1000", field: "limit"})
					return
				}
				n = v
			}
			self, keys := cfg.Admin.TopDenied(n)
			list := make([]map[string]any, len(keys))
			for i, k := range keys {
				list[i] = map[string]any{"user_id": k.UserID, "action": k.Action, "denied": k.Denied, "error": k.Error}
			}
			writeValue(w, http.StatusOK, map[string]any{"node": self, "keys": list})
		})
	}
	mux.HandleFunc("GET /v1/members", func(w http.ResponseWriter, r *http.Request) {
		out, _ := g.Members(r.Context(), nil)
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /v1/owner", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		o, err := cfg.Directory.OwnerOf(q.Get("user_id"), q.Get("action"))
		if err != nil {
			writeError(w, httpStatus(err), errorOf(err))
			return
		}
		writeJSON(w, http.StatusOK, &drlv1.OwnerResponse{Owner: memberToProto(o.Member), Partition: int32(o.Partition)})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writePlain(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !cfg.Ready() {
			writePlain(w, http.StatusServiceUnavailable, "not ready: not joined or no ring yet\n")
			return
		}
		writePlain(w, http.StatusOK, "ready\n")
	})
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics)
	}
	if cfg.Status != nil {
		mux.Handle("GET /status", serveStatus(cfg.Status))
		mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { writeValue(w, http.StatusOK, statusJSON(cfg.Status())) })
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/status", http.StatusFound) })
	}
	mux.HandleFunc("GET /openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		w.Write(api.OpenAPI)
	})
	// Every path answers another method with 405 and the one it takes; the
	// catch-all below would answer 404.
	allow := map[string][]string{}
	var paths []string
	for _, p := range mux.patterns {
		method, path, _ := strings.Cut(p, " ")
		if path == "/{$}" {
			continue
		}
		if allow[path] == nil {
			paths = append(paths, path)
		}
		allow[path] = append(allow[path], method)
	}
	for _, path := range paths {
		mux.ServeMux.HandleFunc(path, methodNotAllowed(strings.Join(allow[path], ", ")))
	}
	mux.ServeMux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, httpError{code: "NOT_FOUND", message: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
	return mux
}

// statusJSON is st with [] for its empty lists, as the other answers give
// them, rather than null.
func statusJSON(st Status) Status {
	st.Members = nonNil(st.Members)
	st.Quorum.Failed = nonNil(st.Quorum.Failed)
	st.Events = nonNil(st.Events)
	st.RateHistory = nonNil(st.RateHistory)
	if st.Fallbacks == nil {
		st.Fallbacks = map[string]uint64{}
	}
	return st
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// errorJSON is an error answer's object, for callers that build answers
// with encoding/json.
type errorJSON struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func writeValue(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	writeBody(w, code, b, err)
}

func writeJSON(w http.ResponseWriter, code int, m proto.Message) {
	b, err := jsonOut.Marshal(m)
	writeBody(w, code, b, err)
}

// writeBody sends an encoded JSON body, or a 500 if encoding failed.
func writeBody(w http.ResponseWriter, code int, b []byte, encodeErr error) {
	if encodeErr != nil {
		code = http.StatusInternalServerError
		b = appendErrorBody(nil, httpError{code: "INTERNAL", message: encodeErr.Error()})
	}
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// jsonContentType is shared by every answer; net/http only reads it.
var jsonContentType = []string{"application/json"}

// appendErrorBody appends {"error":{...}}.
func appendErrorBody(b []byte, e httpError) []byte {
	b = append(b, `{"error":`...)
	b = appendErrorObject(b, e)
	return append(b, '}')
}

func writeError(w http.ResponseWriter, code int, e httpError) {
	writeBody(w, code, appendErrorBody(nil, e), nil)
}

func writePlain(w http.ResponseWriter, code int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	io.WriteString(w, s)
}

// methodNotAllowed answers requests to a known path with the wrong method.
func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, httpError{code: "METHOD_NOT_ALLOWED",
			message: r.Method + " " + r.URL.Path + ": use " + allow})
	}
}
