package membership

import (
	"bytes"
	"testing"
)

// FuzzDecodeMeta feeds gossip metadata, which any host that reaches the
// gossip port can send, to the decoder: it must never panic, and what it
// accepts must encode back to metadata it accepts alike.
func FuzzDecodeMeta(f *testing.F) {
	good, _ := Meta{Version: ProtocolVersion, Name: "a", GRPC: "127.0.0.1:7947", HTTP: "127.0.0.1:8080", Ready: true}.encode()
	f.Add(good)
	f.Add([]byte(`{"v":2,"name":"a","grpc":"127.0.0.1:7947"}`))
	f.Add([]byte(`{"v":999}`))
	f.Add([]byte(`{"v":2,"grpc":"no-port"}`))
	f.Add([]byte(`{"v":2,"grpc":"[::1]:1","extra":true}`))
	f.Add(bytes.Repeat([]byte("{"), 600))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMeta(b)
		if err != nil {
			return
		}
		again, err := m.encode()
		if err != nil {
			t.Fatalf("accepted %q but cannot encode it: %v", b, err)
		}
		if m2, err := DecodeMeta(again); err != nil || m2 != m {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", b, m2, err, m)
		}
	})
}
