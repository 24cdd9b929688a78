package transport

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/drlimit/drl"
	"github.com/drlimit/drl/bucket"
)

// The HTTP answers to checks are appended by hand into a reused buffer:
// the same bytes protojson wrote before, less its reflection and
// allocations. Durations read as protojson writes them ("1.500s"), in
// whole milliseconds rounded up (durationJSON).

// appendDecision appends d as a check answer object.
func appendDecision(b []byte, d bucket.Decision) []byte {
	b = append(b, `{"allowed":`...)
	b = strconv.AppendBool(b, d.Allowed)
	b = append(b, `,"limit":`...)
	b = strconv.AppendInt(b, d.Limit, 10)
	b = append(b, `,"remaining":`...)
	b = strconv.AppendInt(b, d.Remaining, 10)
	b = append(b, `,"reset_after":`...)
	b = appendDuration(b, d.ResetAfter)
	b = append(b, `,"retry_after":`...)
	b = appendDuration(b, d.RetryAfter)
	if d.Shadowed {
		b = append(b, `,"shadowed":true`...)
	}
	// The names are JSON-safe constants: no escaping needed.
	if by := d.DecidedBy.String(); by != "" {
		b = append(b, `,"decided_by":"`...)
		b = append(b, by...)
		b = append(b, '"')
	}
	if why := d.FallbackReason.String(); why != "" {
		b = append(b, `,"fallback_reason":"`...)
		b = append(b, why...)
		b = append(b, '"')
	}
	return append(b, '}')
}

// FormatDuration writes d as the HTTP API's answers do, for other front
// ends (drlctl's -json): seconds in whole milliseconds, rounded up,
// "61.669s". ParseWindow reads it back.
func FormatDuration(d time.Duration) string {
	var b [32]byte
	out := appendDuration(b[:0], d)
	return string(out[1 : len(out)-1])
}

// appendDuration appends d as a JSON string in protojson's form, in whole
// milliseconds rounded up: nobody waits a nanosecond-precise retry, and a
// 0.4 ms RetryAfter must not read "0s".
func appendDuration(b []byte, d time.Duration) []byte {
	b = append(b, '"')
	if d < 0 {
		b = append(b, '-')
		d = -d // MinInt64 stays negative; its digits below are still right
	}
	ms := uint64(d) / uint64(time.Millisecond)
	if uint64(d)%uint64(time.Millisecond) != 0 {
		ms++
	}
	b = strconv.AppendUint(b, ms/1000, 10)
	if frac := ms % 1000; frac != 0 {
		b = append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
	}
	return append(b, `s"`...)
}

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}

// httpError is one error answer: its code (INVALID_ARGUMENT, NOT_FOUND,
// ...), a message for people, and for bad input the field at fault.
type httpError struct {
	code, message, field string
}

// appendErrorObject appends e as {"code":...,"message":...,"field":...}.
func appendErrorObject(b []byte, e httpError) []byte {
	b = append(b, `{"code":`...)
	b = appendString(b, e.code)
	b = append(b, `,"message":`...)
	b = appendString(b, e.message)
	if e.field != "" {
		b = append(b, `,"field":`...)
		b = appendString(b, e.field)
	}
	return append(b, '}')
}

// errorOf describes err for an answer: its wire code, the field at fault
// if it is an argument error, and a message without Go package prefixes.
func errorOf(err error) httpError {
	e := httpError{code: strings.TrimPrefix(WireCode(err).String(), "CODE_"), message: publicMessage(err)}
	if ae, ok := asArgumentError(err); ok {
		e.field = ae.Field
	}
	if errors.Is(err, drl.ErrNotFound) {
		e.code = "NOT_FOUND"
	}
	return e
}

// publicMessage is err's message for a caller: an argument error names
// its field and reason; any other drops the "pkg: " prefixes that Go
// errors gather as they are wrapped ("cluster: check: drl: unavailable").
func publicMessage(err error) string {
	if ae, ok := asArgumentError(err); ok {
		return "invalid " + ae.Field + ": " + stripPrefixes(ae.Reason)
	}
	return stripPrefixes(err.Error())
}

// goPackages are the prefixes our packages put on their errors.
var goPackages = [...]string{"bucket: ", "cluster: ", "transport: ", "drl: ", "peer: ", "client: ", "membership: ", "snapshot: "}

func stripPrefixes(msg string) string {
	var out strings.Builder
	for i := 0; i < len(msg); {
		if i == 0 || strings.HasPrefix(msg[i-min(i, 2):i], ": ") || msg[i-1] == '(' {
			skipped := false
			for _, p := range goPackages {
				if strings.HasPrefix(msg[i:], p) {
					i += len(p)
					skipped = true
					break
				}
			}
			if skipped {
				continue
			}
		}
		out.WriteByte(msg[i])
		i++
	}
	return out.String()
}
