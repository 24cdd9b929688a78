package transport

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
)

// HTTPProtocols are the protocols the HTTP API serves: HTTP/1.1, and
// HTTP/2 with TLS or, for callers that multiplex without it, in clear
// text (h2c, prior knowledge). Set them as the http.Server's Protocols.
func HTTPProtocols() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	return p
}

// httpChecks serves the check endpoints: one read of the body into a
// reused buffer, one pass of jsonread.go over it, the answer appended by
// hand (jsonwrite.go).
type httpChecks struct {
	cfg ServerConfig
}

// bodies holds request bodies and answers between requests.
var bodies = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooledBody keeps a rare large body's buffer out of the pool.
const maxPooledBody = 64 << 10

func putBody(b *[]byte) {
	if cap(*b) <= maxPooledBody {
		*b = (*b)[:0]
		bodies.Put(b)
	}
}

// readBody reads the request body, at most cfg.MaxBodyBytes, into a
// pooled buffer, answering the client itself on failure (413, 400). The
// caller puts the buffer back.
func (h *httpChecks) readBody(w http.ResponseWriter, r *http.Request) (*[]byte, bool) {
	limit := h.cfg.MaxBodyBytes
	buf := bodies.Get().(*[]byte)
	b := (*buf)[:0]
	if r.ContentLength > limit {
		putBody(buf)
		writeError(w, http.StatusRequestEntityTooLarge, tooLarge(limit))
		return nil, false
	}
	if r.ContentLength > 0 && int64(cap(b)) < r.ContentLength {
		b = make([]byte, 0, r.ContentLength)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			*buf = b
			putBody(buf)
			writeError(w, http.StatusRequestEntityTooLarge, tooLarge(limit))
			return nil, false
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			*buf = b
			putBody(buf)
			writeError(w, http.StatusBadRequest, httpError{code: "INVALID_ARGUMENT", message: "reading body: " + err.Error(), field: "body"})
			return nil, false
		}
	}
	*buf = b
	return buf, true
}

func tooLarge(limit int64) httpError {
	return httpError{code: "INVALID_ARGUMENT", message: "request body larger than " + strconv.FormatInt(limit, 10) + " bytes", field: "body"}
}

// decodeError describes a decoding error: a field's, or the body's when
// it is not JSON of the right shape.
func decodeError(err error) httpError {
	if errors.Is(err, errMalformed) {
		return httpError{code: "INVALID_ARGUMENT", message: err.Error(), field: "body"}
	}
	return errorOf(err)
}

// answer writes the answer in out (a pooled buffer) and puts it back.
func answer(w http.ResponseWriter, out *[]byte) {
	writeBody(w, http.StatusOK, *out, nil)
	putBody(out)
}

// check serves POST /v1/ratelimit.
func (h *httpChecks) check(w http.ResponseWriter, r *http.Request) {
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	f, err := decodeCheck(*body)
	var c drl.LimitCheck
	if err == nil {
		c, err = f.limitCheck()
	}
	if err != nil {
		putBody(body)
		writeError(w, http.StatusBadRequest, decodeError(err))
		return
	}
	d, err := h.cfg.Limiter.CheckWith(r.Context(), c.Request, c.Options)
	if err != nil {
		putBody(body)
		writeError(w, httpStatus(err), errorOf(err))
		return
	}
	*body = appendDecision((*body)[:0], answerOf(d, c.Request.Window)) // the body is read: reuse its buffer
	answer(w, body)
}

// checkLists holds a batch's decoded checks and results between requests.
type checkLists struct {
	fields []checkFields
	checks []drl.LimitCheck
	here   []bool // decided by this node, inline
	ds     []bucket.Decision
	errs   []error
}

var lists = sync.Pool{New: func() any { return new(checkLists) }}

// resized returns s with length n and zero elements, reusing its array.
func resized[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// batch serves POST /v1/ratelimit:batch: independent checks, each
// answered by a decision or an error. The checks this node decides
// itself run inline; the others side by side, as gRPC's CheckBatch runs
// them, so the batch takes as long as its slowest hop.
func (h *httpChecks) batch(w http.ResponseWriter, r *http.Request) {
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	l := lists.Get().(*checkLists)
	defer func() {
		clear(l.errs)   // drop the errors' references
		clear(l.checks) // and the ids' strings
		clear(l.fields)
		lists.Put(l)
	}()
	var err error
	l.fields, err = decodeCheckList(*body, "checks", l.fields[:0])
	if err == nil && len(l.fields) > h.cfg.MaxRecvBatch {
		err = &bucket.ArgumentError{Field: "checks", Reason: fmt.Sprintf("%d checks in one batch, more than %d", len(l.fields), h.cfg.MaxRecvBatch)}
	}
	if err != nil {
		putBody(body)
		writeError(w, http.StatusBadRequest, decodeError(err))
		return
	}
	n := len(l.fields)
	l.checks, l.here = resized(l.checks, n), resized(l.here, n)
	l.ds, l.errs = resized(l.ds, n), resized(l.errs, n)
	ctx := r.Context()
	var wg sync.WaitGroup
	for i := range l.fields {
		c, err := l.fields[i].limitCheck()
		switch {
		case err != nil:
			l.errs[i] = err
		case h.cfg.DecidesLocally(c.Request.UserID, c.Request.Action):
			l.checks[i], l.here[i] = c, true
		default:
			l.checks[i] = c
			wg.Go(func() { l.ds[i], l.errs[i] = h.cfg.Limiter.CheckWith(ctx, c.Request, c.Options) })
		}
	}
	for i, c := range l.checks {
		if l.here[i] {
			l.ds[i], l.errs[i] = h.cfg.Limiter.CheckWith(ctx, c.Request, c.Options)
		}
	}
	wg.Wait()
	out := append((*body)[:0], `{"results":[`...)
	for i := range n {
		if i > 0 {
			out = append(out, ',')
		}
		if l.errs[i] != nil {
			out = append(out, `{"error":`...)
			out = appendErrorObject(out, errorOf(l.errs[i]))
		} else {
			out = append(out, `{"decision":`...)
			out = appendDecision(out, answerOf(l.ds[i], l.checks[i].Request.Window))
		}
		out = append(out, '}')
	}
	*body = append(out, "]}"...)
	answer(w, body)
}

// all serves POST /v1/ratelimit:all: every limit admits, or none spends.
func (h *httpChecks) all(w http.ResponseWriter, r *http.Request) {
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	fields, err := decodeCheckList(*body, "limits", nil)
	if err != nil {
		putBody(body)
		writeError(w, http.StatusBadRequest, decodeError(err))
		return
	}
	if n := len(fields); n == 0 || n > drl.MaxLimitsPerCheck {
		putBody(body)
		writeError(w, http.StatusBadRequest, httpError{code: "INVALID_ARGUMENT", field: "limits",
			message: fmt.Sprintf("%d limits; want 1 to %d", n, drl.MaxLimitsPerCheck)})
		return
	}
	checks := make([]drl.LimitCheck, len(fields))
	for i := range fields {
		if checks[i], err = fields[i].limitCheck(); err != nil {
			putBody(body)
			err = InLimit(i, err)
			writeError(w, httpStatus(err), errorOf(err))
			return
		}
	}
	md, err := h.cfg.Limiter.CheckAll(r.Context(), checks)
	if err != nil {
		putBody(body)
		writeError(w, httpStatus(err), errorOf(err))
		return
	}
	out := append((*body)[:0], `{"allowed":`...)
	out = strconv.AppendBool(out, md.Allowed)
	out = append(out, `,"decisions":[`...)
	for i, d := range md.Decisions {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendDecision(out, answerOf(d, checks[i].Request.Window))
	}
	*body = append(out, "]}"...)
	answer(w, body)
}

// decodeName reads {"name": "..."} (POST /v1/forget).
func decodeName(body []byte) (string, error) {
	r := jsonReader{b: body}
	name := ""
	err := r.object(func(key []byte) error {
		if string(key) != "name" {
			return r.skip(0)
		}
		var err error
		name, err = r.stringField(fieldPath{}, "name")
		return err
	})
	if err != nil {
		return "", err
	}
	return name, r.end()
}
