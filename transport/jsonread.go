package transport

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
)

// The HTTP API reads its check bodies with the small decoder below rather
// than with protojson: one pass over the bytes, no map, no reflection, and
// the rules callers asked for in one place. Numbers read alike wherever
// they appear: limit, burst and hits are JSON numbers or strings holding
// one ("5"), and a window is seconds (60, "60") or a Go duration ("60s",
// "1m", "1h30m"). Unknown fields are skipped, so a newer client works
// against an older node. Field names are the proto names (user_id) or
// their lowerCamelCase JSON names (userId), as protojson read them. A
// value of the wrong kind, or a number out of its field's range, is an
// error naming the field; bytes that are not JSON name the body.

// checkFields is one check as the body gives it, before its names are
// parsed (algorithm, fail_policy), so that a bad name in a batch fails
// that check, not the batch.
type checkFields struct {
	userID, action     string
	limit, burst, hits int64
	hasHits            bool
	window             time.Duration
	algorithm, policy  string
	dryRun, shadow     bool
}

// limitCheck turns f into a check, as limitCheckFromProto does for gRPC.
func (f *checkFields) limitCheck() (drl.LimitCheck, error) {
	alg, err := bucket.ParseAlgorithm(f.algorithm)
	if err != nil {
		return drl.LimitCheck{}, err
	}
	if f.algorithm == "" && f.burst > 0 {
		alg = bucket.TokenBucket // as RequestFromProto: a burst means the token bucket
	}
	policy, err := drl.ParseFailPolicy(f.policy)
	if err != nil {
		return drl.LimitCheck{}, err
	}
	hits := int64(1)
	if f.hasHits {
		hits = f.hits
	}
	return drl.LimitCheck{
		Request: bucket.Request{UserID: f.userID, Action: f.action, Limit: f.limit, Window: f.window,
			Burst: f.burst, Hits: hits, Algorithm: alg, DryRun: f.dryRun},
		Options: drl.CheckOptions{FailPolicy: policy, Shadow: f.shadow},
	}, nil
}

// fieldPath names a check's fields in errors: "window" for a lone check,
// "checks[2].window" in a list. It is built only for an error.
type fieldPath struct {
	list string // "" for a lone check
	i    int
}

func (p fieldPath) name(field string) string {
	if p.list == "" {
		return field
	}
	return p.list + "[" + strconv.Itoa(p.i) + "]." + field
}

// readCheck reads one check object into f.
func (r *jsonReader) readCheck(f *checkFields, prefix fieldPath) error {
	return r.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "user_id", "userId":
			f.userID, err = r.stringField(prefix, "user_id")
		case "action":
			f.action, err = r.stringField(prefix, "action")
		case "algorithm":
			f.algorithm, err = r.stringField(prefix, "algorithm")
		case "fail_policy", "failPolicy":
			f.policy, err = r.stringField(prefix, "fail_policy")
		case "limit":
			f.limit, _, err = r.intField(prefix, "limit")
		case "burst":
			f.burst, _, err = r.intField(prefix, "burst")
		case "hits":
			f.hits, f.hasHits, err = r.intField(prefix, "hits")
		case "window":
			f.window, err = r.windowField(prefix)
		case "dry_run", "dryRun":
			f.dryRun, err = r.boolField(prefix, "dry_run")
		case "shadow":
			f.shadow, err = r.boolField(prefix, "shadow")
		default:
			err = r.skip(0)
		}
		return err
	})
}

func fieldError(prefix fieldPath, field, format string, args ...any) error {
	return &bucket.ArgumentError{Field: prefix.name(field), Reason: fmt.Sprintf(format, args...)}
}

// stringField reads a string; null is "".
func (r *jsonReader) stringField(prefix fieldPath, field string) (string, error) {
	v, kind, err := r.scalar()
	switch {
	case err != nil:
		return "", err
	case kind == kindString:
		return string(v), nil
	case kind == kindLiteral && string(v) == "null":
		return "", nil
	}
	return "", fieldError(prefix, field, "want a string")
}

// boolField reads true or false; null is false.
func (r *jsonReader) boolField(prefix fieldPath, field string) (bool, error) {
	v, kind, err := r.scalar()
	if err != nil {
		return false, err
	}
	if kind == kindLiteral {
		return string(v) == "true", nil
	}
	return false, fieldError(prefix, field, "want true or false")
}

// intField reads a whole number, as a JSON number or a string holding
// one; it reports whether the field had a value (null has none).
func (r *jsonReader) intField(prefix fieldPath, field string) (int64, bool, error) {
	v, kind, err := r.scalar()
	switch {
	case err != nil:
		return 0, false, err
	case kind == kindLiteral && string(v) == "null":
		return 0, false, nil
	case kind != kindNumber && kind != kindString:
		return 0, false, fieldError(prefix, field, "want a whole number")
	}
	n, err := parseWhole(v)
	if err != nil {
		return 0, false, fieldError(prefix, field, "%s", err)
	}
	return n, true, nil
}

// parseWhole parses a whole number in JSON's number syntax (so 5, 5.0 and
// 5e2 too), within int64.
func parseWhole(s []byte) (int64, error) {
	if n, err := strconv.ParseInt(string(s), 10, 64); err == nil {
		return n, nil
	} else if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("%s is out of range (at most %d)", s, int64(math.MaxInt64))
	}
	if !isJSONNumber(s) {
		return 0, fmt.Errorf("%q is not a whole number", s)
	}
	f, err := strconv.ParseFloat(string(s), 64)
	switch {
	case err != nil || math.Abs(f) >= 1<<63:
		return 0, fmt.Errorf("%s is out of range (at most %d)", s, int64(math.MaxInt64))
	case f != math.Trunc(f):
		return 0, fmt.Errorf("%s is not a whole number", s)
	}
	return int64(f), nil
}

// isJSONNumber reports whether s is one JSON number and nothing else.
func isJSONNumber(s []byte) bool {
	r := jsonReader{b: s}
	_, err := r.number()
	return err == nil && r.i == len(s)
}

// maxWindowSeconds is the longest window a body may give in seconds: what
// a time.Duration holds, about 292 years. The limiter allows far less;
// this bound only keeps the conversion exact.
const maxWindowSeconds = float64(math.MaxInt64 / int64(time.Second))

// windowField reads a window: seconds as a JSON number or a string
// holding one, or a Go duration string. null is no window.
func (r *jsonReader) windowField(prefix fieldPath) (time.Duration, error) {
	v, kind, err := r.scalar()
	switch {
	case err != nil:
		return 0, err
	case kind == kindLiteral && string(v) == "null":
		return 0, nil
	case kind == kindNumber || kind == kindString:
		d, err := parseWindow(v)
		if err != nil {
			return 0, fieldError(prefix, "window", "%s", err)
		}
		return d, nil
	}
	return 0, fieldError(prefix, "window", "want seconds (60) or a duration (\"60s\")")
}

// ParseWindow reads a window as the HTTP API does, for other front ends
// (drlctl's -window): seconds ("60", "1.5") or a Go duration ("60s",
// "1m", "1h30m").
func ParseWindow(s string) (time.Duration, error) { return parseWindow([]byte(s)) }

func parseWindow(v []byte) (time.Duration, error) {
	if isJSONNumber(v) {
		secs, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.Abs(secs) > maxWindowSeconds {
			return 0, fmt.Errorf("%s seconds is out of range", v)
		}
		return time.Duration(secs * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(string(v))
	if err != nil {
		if len(v) > 64 {
			v = append(v[:61:61], "..."...)
		}
		return 0, fmt.Errorf("%q is not a duration: want seconds (60) or a duration (\"60s\", \"1m\", \"1h\")", v)
	}
	return d, nil
}

// decodeCheck reads a body holding one check.
func decodeCheck(body []byte) (checkFields, error) {
	r := jsonReader{b: body}
	var f checkFields
	if err := r.readCheck(&f, fieldPath{}); err != nil {
		return f, err
	}
	return f, r.end()
}

// decodeCheckList reads a body whose field list (checks, limits) holds
// checks, ignoring its other fields, and appends them to dst.
func decodeCheckList(body []byte, list string, dst []checkFields) ([]checkFields, error) {
	r := jsonReader{b: body}
	start := len(dst)
	err := r.object(func(key []byte) error {
		if string(key) != list {
			return r.skip(0)
		}
		dst = dst[:start]    // a list given twice: the last one counts, as in encoding/json
		if r.peek() == 'n' { // null: no checks
			_, err := r.literal()
			return err
		}
		return r.array(func(i int) error {
			dst = append(dst, checkFields{})
			return r.readCheck(&dst[len(dst)-1], fieldPath{list, i})
		})
	})
	if err != nil {
		return dst, err
	}
	return dst, r.end()
}
