package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecodeCheck holds the hand-written check decoder against
// encoding/json: it never panics; it finds a body malformed exactly when
// encoding/json does (for bodies that are JSON objects); and the strings
// it reads are the ones encoding/json reads.
func FuzzDecodeCheck(f *testing.F) {
	for _, seed := range []string{
		`{"user_id":"u","action":"a","limit":5,"window":"60s"}`,
		`{"user_id":"u","action":"a","limit":"5","window":"60","hits":0,"dry_run":true,"shadow":true,"fail_policy":"open"}`,
		`{"userId":"\u00e9\ud83d\ude00\ud800x","action":"a\"\\\/\b\f\n\r\t","limit":1e3,"window":1.5}`,
		`{"user_id":"u","unknown":{"a":[1,2,{"b":null}],"c":-0.5e-3},"burst":3,"algorithm":"gcra"}`,
		`{"limit":1e30}`, `{"window":9223372036854775807}`, `{"window":"1e400s"}`, `{"hits":null,"window":null}`,
		`{"checks":[{"user_id":"u"},{}]}`, `{}`, ` { } `, `[]`, `null`, `{`, ``, `{"a":01}`, `{"a":1.}`, `{"a":"\x"}`,
		"{\"user_id\":\"\xff\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fields, err := decodeCheck(body)
		_, _ = decodeCheckList(body, "checks", nil)
		var m map[string]json.RawMessage
		jerr := json.Unmarshal(body, &m)
		isObject := jerr == nil && m != nil
		malformed := errors.Is(err, errMalformed)
		switch {
		case isObject && malformed && !bytes.Contains(err2bytes(err), []byte("nested")):
			t.Fatalf("decodeCheck(%q): %v; encoding/json reads it", body, err)
		case !isObject && err == nil:
			t.Fatalf("decodeCheck(%q) = %+v; encoding/json says %v", body, fields, jerr)
		}
		if err != nil || !isObject {
			return
		}
		for key, got := range map[string]string{"user_id": fields.userID, "action": fields.action} {
			raw, ok := m[key]
			if !ok || raw[0] != '"' {
				continue
			}
			if _, alias := m["userId"]; alias && key == "user_id" {
				continue // which of the two came last decides
			}
			var want string
			if json.Unmarshal(raw, &want) == nil && got != want {
				t.Fatalf("decodeCheck(%q).%s = %q, encoding/json reads %q", body, key, got, want)
			}
		}
	})
}

func err2bytes(err error) []byte { return []byte(err.Error()) }

// The decoder allocates only the strings it keeps.
func TestDecodeCheckAllocations(t *testing.T) {
	body := []byte(`{"user_id":"u1","action":"login","limit":5,"window":60,"unknown":[1,{"a":"b"}]}`)
	n := testing.AllocsPerRun(100, func() {
		if _, err := decodeCheck(body); err != nil {
			t.Fatal(err)
		}
	})
	if n > 2 {
		t.Fatalf("decodeCheck: %v allocations, want at most 2 (user_id and action)", n)
	}
}

// BenchmarkDecodeCheck compares the decoder with encoding/json into a flat
// struct, on the README's body.
func BenchmarkDecodeCheck(b *testing.B) {
	body := []byte(`{"user_id":"u1","action":"login","limit":5,"window":"60s"}`)
	b.Run("jsonread", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeCheck(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		var v struct {
			UserID string `json:"user_id"`
			Action string `json:"action"`
			Limit  int64  `json:"limit"`
			Window string `json:"window"`
		}
		for b.Loop() {
			if err := json.Unmarshal(body, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
