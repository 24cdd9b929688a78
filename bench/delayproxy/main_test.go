package main

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Bytes come through whole and in order, each way held for the delay:
// a round trip through the proxy takes at least twice it.
func TestProxyDelaysBothWays(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var servers sync.WaitGroup
	servers.Go(func() {
		c, err := echo.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	})
	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const delay = 20 * time.Millisecond
	p := &proxy{delay: delay}
	p.wg.Go(func() { p.accept(front, echo.Addr().String()) })
	defer func() {
		front.Close()
		echo.Close()
		p.closeAll()
		p.wg.Wait()
		servers.Wait()
	}()

	c, err := net.Dial("tcp", front.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("0123456789"), 10_000) // several chunks
	began := time.Now()
	var writer sync.WaitGroup
	var werr error
	writer.Go(func() { _, werr = c.Write(msg) })
	got := make([]byte, len(msg))
	_, err = io.ReadFull(c, got)
	writer.Wait()
	if err != nil || werr != nil {
		t.Fatalf("through the proxy: read %v, write %v", err, werr)
	}
	if took := time.Since(began); took < 2*delay {
		t.Fatalf("a round trip took %v through a proxy holding %v each way", took, delay)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("the echo came back changed or out of order")
	}
}
