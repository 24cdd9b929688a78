package transport

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/drlimit/drl/api/drlv1"
)

// The HTTP/JSON API speaks the protojson form of the gRPC messages, with
// the proto field names (user_id, reset_after) and durations as strings
// ("60s"):
//
//	POST /v1/ratelimit      CheckRequest -> CheckResponse
//	POST /v1/ratelimit:batch CheckBatchRequest -> CheckBatchResponse
//	GET  /v1/members        MembersResponse
//	GET  /v1/owner?user_id=u&action=a  OwnerResponse
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
		writeJSON(w, http.StatusOK, DecisionToProto(d))
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
		writeJSON(w, http.StatusOK, out)
	})
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
		writeJSON(w, http.StatusOK, &drlv1.OwnerResponse{Owner: memberToProto(owner), Partition: int64(partition)})
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
	for path, allow := range map[string]string{"/v1/ratelimit": "POST", "/v1/ratelimit:batch": "POST",
		"/v1/members": "GET", "/v1/owner": "GET", "/healthz": "GET", "/readyz": "GET"} {
		mux.HandleFunc(path, methodNotAllowed(allow))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, &drlv1.Error{Code: drlv1.Code_CODE_INVALID_ARGUMENT, Message: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
	return mux
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
	if err := jsonIn.Unmarshal(body, m); err != nil {
		writeError(w, http.StatusBadRequest, &drlv1.Error{Code: drlv1.Code_CODE_INVALID_ARGUMENT, Message: "malformed JSON: " + err.Error(), Field: "body"})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, m proto.Message) {
	b, err := jsonOut.Marshal(m)
	if err != nil {
		writeError(w, http.StatusInternalServerError, &drlv1.Error{Code: drlv1.Code_CODE_INTERNAL, Message: err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// httpError is the JSON body of an error answer.
type httpError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, code int, e *drlv1.Error) {
	var body httpError
	body.Error.Code = e.GetCode().String()[len("CODE_"):]
	body.Error.Message = e.GetMessage()
	body.Error.Field = e.GetField()
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
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
