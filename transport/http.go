package transport

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/drlimit/drl/api/drlv1"
	"github.com/drlimit/drl/bucket"
)

// The HTTP/JSON API speaks the protojson form of the gRPC messages, with
// the proto field names (user_id, reset_after) and durations as strings
// ("60s"):
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
//
// Errors are {"error": {"code": "INVALID_ARGUMENT", "message": "...",
// "field": "window"}} with 400, 404, 405, 413, 503 or 504.

var (
	jsonOut = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}
	jsonIn  = protojson.UnmarshalOptions{} // unknown fields are an error
)

// NewHTTPHandler returns the node's HTTP API.
func NewHTTPHandler(cfg ServerConfig) http.Handler {
	cfg = cfg.withDefaults()
	g := &grpcServer{cfg: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/ratelimit", func(w http.ResponseWriter, r *http.Request) {
		var m drlv1.CheckRequest
		if !readJSON(w, r, cfg.MaxBodyBytes, &m) {
			return
		}
		d, err := g.check(r.Context(), &m)
		if err != nil {
			writeError(w, httpStatus(err), wireError(err))
			return
		}
		writeValue(w, http.StatusOK, decisionJSON(d))
	})
	mux.HandleFunc("POST /v1/ratelimit:batch", func(w http.ResponseWriter, r *http.Request) {
		var m drlv1.CheckBatchRequest
		if !readJSON(w, r, cfg.MaxBodyBytes, &m) {
			return
		}
		out, err := g.CheckBatch(r.Context(), &m)
		if err != nil {
			writeError(w, http.StatusBadRequest, &drlv1.Error{Code: drlv1.Code_CODE_INVALID_ARGUMENT, Message: err.Error(), Field: "checks"})
			return
		}
		writeValue(w, http.StatusOK, batchJSON(out))
	})
	mux.HandleFunc("POST /v1/ratelimit:all", func(w http.ResponseWriter, r *http.Request) {
		var m drlv1.CheckAllRequest
		if !readJSON(w, r, cfg.MaxBodyBytes, &m) {
			return
		}
		out, err := g.checkAll(r.Context(), &m)
		if err != nil {
			writeError(w, httpStatus(err), wireError(err))
			return
		}
		ds := make([]*checkResponseJSON, len(out.GetDecisions()))
		for i, d := range out.GetDecisions() {
			ds[i] = decisionJSON(DecisionFromProto(d))
		}
		writeValue(w, http.StatusOK, map[string]any{"allowed": out.GetAllowed(), "decisions": ds})
	})
	if cfg.Admin != nil {
		mux.HandleFunc("POST /v1/reset", func(w http.ResponseWriter, r *http.Request) {
			var m drlv1.ResetRequest
			if !readJSON(w, r, cfg.MaxBodyBytes, &m) {
				return
			}
			dropped, confirmed, err := cfg.Admin.Reset(r.Context(), m.GetUserId(), m.GetAction())
			if err != nil {
				writeError(w, httpStatus(err), wireError(err))
				return
			}
			writeValue(w, http.StatusOK, map[string]any{"dropped": dropped, "members": confirmed})
		})
		mux.HandleFunc("POST /v1/forget", func(w http.ResponseWriter, r *http.Request) {
			var m drlv1.ForgetRequest
			if !readJSON(w, r, cfg.MaxBodyBytes, &m) {
				return
			}
			if err := forget(cfg.Admin, m.GetName()); err != nil {
				writeError(w, httpStatus(err), wireError(err))
				return
			}
			writeJSON(w, http.StatusOK, &drlv1.ForgetResponse{})
		})
		mux.HandleFunc("GET /v1/topdenied", func(w http.ResponseWriter, r *http.Request) {
			n := 10
			if q := r.URL.Query().Get("limit"); q != "" {
				v, err := strconv.Atoi(q)
				if err != nil || v < 1 || v > 1000 {
					writeError(w, http.StatusBadRequest, &drlv1.Error{Code: drlv1.Code_CODE_INVALID_ARGUMENT,
						Message: "limit " + strconv.Quote(q) + ": want 1 to 1000", Field: "limit"})
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
		owner, partition, err := cfg.Directory.OwnerOf(q.Get("user_id"), q.Get("action"))
		if err != nil {
			writeError(w, httpStatus(err), wireError(err))
			return
		}
		writeJSON(w, http.StatusOK, &drlv1.OwnerResponse{Owner: memberToProto(owner), Partition: int32(partition)})
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
		mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { writeValue(w, http.StatusOK, cfg.Status()) })
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/status", http.StatusFound) })
	}
	for path, allow := range map[string]string{"/v1/ratelimit": "POST", "/v1/ratelimit:batch": "POST",
		"/v1/ratelimit:all": "POST", "/v1/members": "GET", "/v1/owner": "GET", "/healthz": "GET", "/readyz": "GET"} {
		mux.HandleFunc(path, methodNotAllowed(allow))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, &drlv1.Error{Code: drlv1.Code_CODE_INVALID_ARGUMENT, Message: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
	return requireToken(cfg, mux)
}

// readJSON decodes the body into m, answering the client itself on failure.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, m proto.Message) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, &drlv1.Error{Code: drlv1.Code_CODE_INVALID_ARGUMENT,
				Message: "request body larger than " + strconv.FormatInt(limit, 10) + " bytes", Field: "body"})
			return false
		}
		writeError(w, http.StatusBadRequest, &drlv1.Error{Code: drlv1.Code_CODE_INVALID_ARGUMENT, Message: "reading body: " + err.Error(), Field: "body"})
		return false
	}
	body, err = normalizeWindows(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, wireError(err))
		return false
	}
	if err := jsonIn.Unmarshal(body, m); err != nil {
		writeError(w, http.StatusBadRequest, &drlv1.Error{Code: drlv1.Code_CODE_INVALID_ARGUMENT, Message: "malformed JSON: " + err.Error(), Field: "body"})
		return false
	}
	return true
}

// The check answers are written by hand rather than by protojson, which
// would quote every int64 ("limit":"5"); callers expect numbers, and
// protojson still reads these bodies back.
type checkResponseJSON struct {
	Allowed    bool            `json:"allowed"`
	Limit      int64           `json:"limit"`
	Remaining  int64           `json:"remaining"`
	ResetAfter json.RawMessage `json:"reset_after"`
	RetryAfter json.RawMessage `json:"retry_after"`
	Shadowed   bool            `json:"shadowed,omitempty"`
}

type checkResultJSON struct {
	Decision *checkResponseJSON `json:"decision,omitempty"`
	Error    *errorJSON         `json:"error,omitempty"`
}

type errorJSON struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func decisionJSON(d bucket.Decision) *checkResponseJSON {
	return &checkResponseJSON{
		Allowed:    d.Allowed,
		Limit:      d.Limit,
		Remaining:  d.Remaining,
		ResetAfter: durationJSON(d.ResetAfter),
		RetryAfter: durationJSON(d.RetryAfter),
		Shadowed:   d.Shadowed,
	}
}

// durationJSON writes a duration as protojson does: "1.500s".
// durationJSON writes d as protojson does ("1.5s"), in whole
// milliseconds, rounded up: nobody waits a nanosecond-precise retry, and a
// 0.4 ms RetryAfter must not read "0s".
func durationJSON(d time.Duration) json.RawMessage {
	if r := d % time.Millisecond; r > 0 {
		d += time.Millisecond - r
	}
	b, _ := protojson.Marshal(durationpb.New(d))
	return b
}

func batchJSON(m *drlv1.CheckBatchResponse) any {
	results := make([]checkResultJSON, len(m.GetResults()))
	for i, r := range m.GetResults() {
		if e := r.GetError(); e != nil {
			results[i].Error = toErrorJSON(e)
			continue
		}
		results[i].Decision = decisionJSON(DecisionFromProto(r.GetDecision()))
	}
	return map[string]any{"results": results}
}

func toErrorJSON(e *drlv1.Error) *errorJSON {
	return &errorJSON{Code: strings.TrimPrefix(e.GetCode().String(), "CODE_"), Message: e.GetMessage(), Field: e.GetField()}
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
		b, _ = json.Marshal(map[string]*errorJSON{"error": {Code: "INTERNAL", Message: encodeErr.Error()}})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, e *drlv1.Error) {
	writeValue(w, code, map[string]*errorJSON{"error": toErrorJSON(e)})
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
		writeError(w, http.StatusMethodNotAllowed, &drlv1.Error{Code: drlv1.Code_CODE_INVALID_ARGUMENT,
			Message: r.Method + " " + r.URL.Path + ": use " + allow})
	}
}
