package transport

import (
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// A JSON scanner for the check decoder (jsonread.go): it reads values in
// place from the body and copies only the strings that hold escapes.

// maxJSONDepth bounds the nesting of values an unknown field may hold.
const maxJSONDepth = 64

// errMalformed marks a syntax error; the field at fault is the body.
var errMalformed = errors.New("malformed JSON")

// jsonReader reads one JSON document from b.
type jsonReader struct {
	b []byte
	i int
}

func (r *jsonReader) syntax(what string) error {
	if r.i >= len(r.b) {
		return fmt.Errorf("%w: unexpected end of body, want %s", errMalformed, what)
	}
	return fmt.Errorf("%w: offset %d: unexpected %q, want %s", errMalformed, r.i, r.b[r.i], what)
}

func (r *jsonReader) ws() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte, or 0 at the end.
func (r *jsonReader) peek() byte {
	r.ws()
	if r.i < len(r.b) {
		return r.b[r.i]
	}
	return 0
}

// end requires that nothing but whitespace is left.
func (r *jsonReader) end() error {
	if r.ws(); r.i < len(r.b) {
		return r.syntax("the end of the body")
	}
	return nil
}

// object reads an object, calling member for each key with the reader at
// its value; member must consume the value.
func (r *jsonReader) object(member func(key []byte) error) error {
	if r.peek() != '{' {
		return r.syntax("a JSON object")
	}
	r.i++
	if r.peek() == '}' {
		r.i++
		return nil
	}
	for {
		if r.peek() != '"' {
			return r.syntax("a field name")
		}
		key, err := r.rawString()
		if err != nil {
			return err
		}
		if r.peek() != ':' {
			return r.syntax("':'")
		}
		r.i++
		r.ws()
		if err := member(key); err != nil {
			return err
		}
		switch r.peek() {
		case ',':
			r.i++
		case '}':
			r.i++
			return nil
		default:
			return r.syntax("',' or '}'")
		}
	}
}

// array reads an array, calling elem for each element with the reader at
// it; elem must consume the element.
func (r *jsonReader) array(elem func(i int) error) error {
	if r.peek() != '[' {
		return r.syntax("a JSON array")
	}
	r.i++
	if r.peek() == ']' {
		r.i++
		return nil
	}
	for n := 0; ; n++ {
		r.ws()
		if err := elem(n); err != nil {
			return err
		}
		switch r.peek() {
		case ',':
			r.i++
		case ']':
			r.i++
			return nil
		default:
			return r.syntax("',' or ']'")
		}
	}
}

// rawString reads a string and returns its contents as they are in the
// body when they hold no escapes, else decoded into a new slice. Invalid
// UTF-8 and lone surrogates become U+FFFD, as encoding/json makes them.
func (r *jsonReader) rawString() ([]byte, error) {
	r.i++ // the opening quote
	start := r.i
	for r.i < len(r.b) {
		c := r.b[r.i]
		switch {
		case c == '"':
			s := r.b[start:r.i]
			r.i++
			if !utf8.Valid(s) {
				return []byte(string([]rune(string(s)))), nil // each bad byte becomes U+FFFD
			}
			return s, nil
		case c == '\\':
			return r.escapedString(start)
		case c < 0x20:
			return nil, r.syntax("no control characters in a string")
		}
		r.i++
	}
	return nil, r.syntax("'\"'")
}

// escapedString decodes the rest of a string that holds an escape at r.i.
func (r *jsonReader) escapedString(start int) ([]byte, error) {
	out := append([]byte(nil), r.b[start:r.i]...)
	for r.i < len(r.b) {
		c := r.b[r.i]
		switch {
		case c == '"':
			r.i++
			if !utf8.Valid(out) {
				out = []byte(string([]rune(string(out))))
			}
			return out, nil
		case c < 0x20:
			return nil, r.syntax("no control characters in a string")
		case c != '\\':
			out = append(out, c)
			r.i++
			continue
		}
		r.i++
		if r.i >= len(r.b) {
			return nil, r.syntax("an escape")
		}
		e := r.b[r.i]
		r.i++
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			c1, ok := r.hex4()
			if !ok {
				return nil, r.syntax("four hex digits after \\u")
			}
			if utf16.IsSurrogate(c1) {
				// A pair only if a low surrogate follows at once.
				if r.i+1 < len(r.b) && r.b[r.i] == '\\' && r.b[r.i+1] == 'u' {
					save := r.i
					r.i += 2
					if c2, ok := r.hex4(); ok {
						if p := utf16.DecodeRune(c1, c2); p != utf8.RuneError {
							out = utf8.AppendRune(out, p)
							continue
						}
					}
					r.i = save
				}
				c1 = utf8.RuneError
			}
			out = utf8.AppendRune(out, c1)
		default:
			r.i--
			return nil, r.syntax("a valid escape")
		}
	}
	return nil, r.syntax("'\"'")
}

func (r *jsonReader) hex4() (rune, bool) {
	if r.i+4 > len(r.b) {
		return 0, false
	}
	var v rune
	for _, c := range r.b[r.i : r.i+4] {
		switch {
		case '0' <= c && c <= '9':
			v = v<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			v = v<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			v = v<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	r.i += 4
	return v, true
}

// number reads a JSON number and returns its text.
func (r *jsonReader) number() ([]byte, error) {
	start := r.i
	if r.i < len(r.b) && r.b[r.i] == '-' {
		r.i++
	}
	switch {
	case r.i < len(r.b) && r.b[r.i] == '0':
		r.i++
	case r.i < len(r.b) && '1' <= r.b[r.i] && r.b[r.i] <= '9':
		r.digits()
	default:
		return nil, r.syntax("a digit")
	}
	if r.i < len(r.b) && r.b[r.i] == '.' {
		r.i++
		if r.digits() == 0 {
			return nil, r.syntax("a digit after '.'")
		}
	}
	if r.i < len(r.b) && (r.b[r.i] == 'e' || r.b[r.i] == 'E') {
		r.i++
		if r.i < len(r.b) && (r.b[r.i] == '+' || r.b[r.i] == '-') {
			r.i++
		}
		if r.digits() == 0 {
			return nil, r.syntax("a digit in the exponent")
		}
	}
	return r.b[start:r.i], nil
}

func (r *jsonReader) digits() int {
	n := 0
	for r.i < len(r.b) && '0' <= r.b[r.i] && r.b[r.i] <= '9' {
		r.i++
		n++
	}
	return n
}

// literal reads true, false or null.
func (r *jsonReader) literal() (string, error) {
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(r.b)-r.i >= len(lit) && string(r.b[r.i:r.i+len(lit)]) == lit {
			r.i += len(lit)
			return lit, nil
		}
	}
	return "", r.syntax("a JSON value")
}

// skip reads any value and drops it.
func (r *jsonReader) skip(depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("%w: values nested more than %d deep", errMalformed, maxJSONDepth)
	}
	switch c := r.peek(); {
	case c == '{':
		return r.object(func([]byte) error { return r.skip(depth + 1) })
	case c == '[':
		return r.array(func(int) error { return r.skip(depth + 1) })
	case c == '"':
		_, err := r.rawString()
		return err
	case c == '-' || '0' <= c && c <= '9':
		_, err := r.number()
		return err
	default:
		_, err := r.literal()
		return err
	}
}

// valueKind reads one scalar for a field: its text and whether it was a
// string, a number, a literal (true, false, null), or something else (an
// object or array, skipped).
type valueKind uint8

const (
	kindString valueKind = iota
	kindNumber
	kindLiteral
	kindOther
)

func (r *jsonReader) scalar() ([]byte, valueKind, error) {
	switch c := r.peek(); {
	case c == '"':
		s, err := r.rawString()
		return s, kindString, err
	case c == '-' || '0' <= c && c <= '9':
		n, err := r.number()
		return n, kindNumber, err
	case c == '{' || c == '[':
		return nil, kindOther, r.skip(0)
	default:
		l, err := r.literal()
		return []byte(l), kindLiteral, err
	}
}
