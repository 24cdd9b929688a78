package transport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/drlimit/drl/bucket"
)

// normalizeWindows rewrites every "window" of a check body into the form
// protojson reads ("60s"), so that callers may also write the problem
// statement's seconds ("window": 60) or a Go duration ("1m", "1h30m").
// Bodies that are not JSON objects pass through: protojson reports them.
// A window that is none of these is an argument error naming its field.
func normalizeWindows(body []byte) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return body, nil
	}
	changed := false
	fix := func(obj map[string]json.RawMessage, field string) error {
		raw, ok := obj["window"]
		if !ok {
			return nil
		}
		norm, err := windowJSON(raw)
		if err != nil {
			return &bucket.ArgumentError{Field: field, Reason: err.Error()}
		}
		if !bytes.Equal(norm, raw) {
			obj["window"], changed = norm, true
		}
		return nil
	}
	if err := fix(top, "window"); err != nil {
		return nil, err
	}
	for _, list := range []string{"checks", "limits"} {
		raw, ok := top[list]
		if !ok {
			continue
		}
		var items []map[string]json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			continue // protojson will say what is wrong
		}
		before := changed
		for i, item := range items {
			if err := fix(item, fmt.Sprintf("%s[%d].window", list, i)); err != nil {
				return nil, err
			}
		}
		if changed != before {
			b, err := json.Marshal(items)
			if err != nil {
				return nil, err
			}
			top[list] = b
		}
	}
	if !changed {
		return body, nil
	}
	return json.Marshal(top)
}

// windowJSON turns one window value into protojson's duration string.
func windowJSON(raw json.RawMessage) (json.RawMessage, error) {
	var d time.Duration
	switch {
	case len(raw) > 0 && raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return nil, fmt.Errorf("%q is not a duration: want seconds (60) or a duration (\"60s\", \"1m\", \"1h\")", s)
		}
	case string(raw) == "null":
		return raw, nil
	default:
		secs, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.IsNaN(secs) || math.IsInf(secs, 0) || math.Abs(secs) > float64(math.MaxInt64/int64(time.Second)) {
			return nil, fmt.Errorf("%s is not a number of seconds", raw)
		}
		d = time.Duration(secs * float64(time.Second))
	}
	return json.Marshal(strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s")
}
