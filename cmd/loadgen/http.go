package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// httpClient drives the HTTP/JSON API, as a service in another language
// would: each caller POSTs the README's body to /v1/ratelimit, or -per-call
// checks at once to /v1/ratelimit:batch, over keep-alive connections
// spread round-robin over -targets (HTTP addresses). No owner routing: a
// node forwards the checks it does not own. -h2c speaks HTTP/2 without
// TLS instead of HTTP/1.1.
type httpClient struct {
	o       options
	http    *http.Client
	targets []string // URLs of /v1/ratelimit
	batch   []string // URLs of /v1/ratelimit:batch
	users   []string
	next    atomic.Uint64
}

func newHTTPClient(o options) (*httpClient, error) {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        4 * o.concurrency,
		MaxIdleConnsPerHost: o.concurrency, // one kept-alive connection per caller
		IdleConnTimeout:     time.Minute,
	}
	if o.h2c {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	c := &httpClient{o: o, http: &http.Client{Transport: tr, Timeout: 10 * time.Second}, users: userNames(o.keys)}
	for _, addr := range strings.Split(o.targets, ",") {
		base := "http://" + strings.TrimSpace(addr)
		c.targets = append(c.targets, base+"/v1/ratelimit")
		c.batch = append(c.batch, base+"/v1/ratelimit:batch")
	}
	return c, nil
}

// appendCheckBody appends one check's JSON: the README's example with
// this run's limit, window and hits.
func (c *httpClient) appendCheckBody(b []byte, user string) []byte {
	b = append(b, `{"user_id":"`...)
	b = append(b, user...) // user-N: nothing to escape
	b = append(b, `","action":`...)
	b = strconv.AppendQuote(b, c.o.action)
	b = append(b, `,"limit":`...)
	b = strconv.AppendInt(b, c.o.limit, 10)
	b = append(b, `,"window":"`...)
	b = strconv.AppendFloat(b, c.o.window.Seconds(), 'f', -1, 64)
	b = append(b, `s","hits":`...)
	b = strconv.AppendInt(b, c.o.hits, 10)
	b = append(b, `,"algorithm":`...)
	b = strconv.AppendQuote(b, c.o.algorithm)
	if c.o.failPolicy != "" {
		b = append(b, `,"fail_policy":`...)
		b = strconv.AppendQuote(b, c.o.failPolicy)
	}
	return append(b, '}')
}

var (
	allowedTrue = []byte(`"allowed":true`)
	resultStart = []byte(`{"decision":`)
	errorStart  = []byte(`{"error":`)
)

func (c *httpClient) check(ctx context.Context, worker int, users []int, perKey []atomic.Int64) (admitted, failed int) {
	t := int(c.next.Add(1)+uint64(worker)) % len(c.targets)
	url := c.targets[t]
	var body []byte
	if len(users) == 1 {
		body = c.appendCheckBody(nil, c.users[users[0]])
	} else {
		url = c.batch[t]
		body = append(body, `{"checks":[`...)
		for i, u := range users {
			if i > 0 {
				body = append(body, ',')
			}
			body = c.appendCheckBody(body, c.users[u])
		}
		body = append(body, "]}"...)
	}
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		noteError(err)
		return 0, len(users)
	}
	req.Header["Content-Type"] = []string{"application/json"}
	resp, err := c.http.Do(req)
	if err != nil {
		noteError(err)
		return 0, len(users)
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(out))
	}
	if err != nil {
		noteError(err)
		return 0, len(users)
	}
	if len(users) == 1 {
		if bytes.HasPrefix(out, []byte(`{"allowed":true`)) {
			perKey[users[0]].Add(1)
			return 1, 0
		}
		return 0, 0
	}
	// {"results":[{"decision":{"allowed":...}}|{"error":{...}},...]}, in order.
	rest := out
	for _, u := range users {
		d, e := bytes.Index(rest, resultStart), bytes.Index(rest, errorStart)
		switch {
		case d >= 0 && (e < 0 || d < e):
			rest = rest[d+len(resultStart):]
			if bytes.HasPrefix(rest, []byte(`{`)) && bytes.HasPrefix(rest[1:], allowedTrue) {
				perKey[u].Add(1)
				admitted++
			}
		case e >= 0:
			rest = rest[e+len(errorStart):]
			noteError(errors.New(string(rest[:min(len(rest), 200)])))
			failed++
		default:
			noteError(fmt.Errorf("%d results for %d checks: %.200s", admitted+failed, len(users), out))
			return admitted, len(users) - admitted
		}
	}
	return admitted, failed
}

func (c *httpClient) forwardedShare() float64 { return -1 }
func (c *httpClient) checksPerRPC() float64   { return 0 }
func (c *httpClient) forwardedChecks() int64  { return -1 }
func (c *httpClient) denyCacheHits() uint64   { return 0 }
func (c *httpClient) fallbacks() uint64       { return 0 }
func (c *httpClient) leaseHits() uint64       { return 0 }
func (c *httpClient) close()                  { c.http.CloseIdleConnections() }
