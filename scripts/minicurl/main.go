// Command minicurl is the little of curl that the README's recipes use, for
// machines with Go and no curl: examples/readme's test puts it on PATH,
// named curl, only when there is no curl.
//
//	minicurl [-s] [-X METHOD | -XMETHOD] [-d DATA] [-H 'Name: value']... [--cacert FILE] URL
//
// As curl does without -f, it prints the body of any answer and exits 0;
// a URL without a scheme is http://; -d makes the method POST.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "minicurl:", err)
		os.Exit(2)
	}
}

func run(args []string, out io.Writer) error {
	method, data, url, caFile := "", "", "", ""
	var body io.Reader
	header := http.Header{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() (string, error) {
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s needs a value", a)
			}
			i++
			return args[i], nil
		}
		var err error
		switch {
		case a == "-s" || a == "--silent":
		case a == "-X" || a == "--request":
			method, err = next()
		case strings.HasPrefix(a, "-X"):
			method = a[2:]
		case a == "-d" || a == "--data":
			data, err = next()
			body = strings.NewReader(data)
		case a == "-H" || a == "--header":
			var h string
			if h, err = next(); err == nil {
				name, value, ok := strings.Cut(h, ":")
				if !ok {
					return fmt.Errorf("header %q: want Name: value", h)
				}
				header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
			}
		case a == "--cacert":
			caFile, err = next()
		case strings.HasPrefix(a, "-"):
			return fmt.Errorf("option %s is not one of minicurl's", a)
		default:
			if url != "" {
				return errors.New("more than one URL")
			}
			url = a
		}
		if err != nil {
			return err
		}
	}
	if url == "" {
		return errors.New("no URL")
	}
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	if method == "" {
		method = "GET"
		if body != nil {
			method = "POST"
		}
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return err
	}
	req.Header = header
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded") // as curl -d
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s: no certificate", caFile)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	resp, err := (&http.Client{Transport: transport, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(out, resp.Body)
	return err
}
