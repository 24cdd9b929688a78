package main

import (
	"bytes"
	"errors"
	"flag"
	"regexp"
	"strings"
	"testing"
)

// -h prints every flag with its DRL_* twin and its default to stdout, and
// is a success; a bad command line is a usage error (exit status 2).
func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run([]string{"-h"}, func(string) string { return "" }, nil, &stdout, &stderr)
	if !errors.Is(err, flag.ErrHelp) || exitCode(err) != 0 || errorMessage(err) != "" {
		t.Fatalf("run(-h) = %v (exit status %d, message %q), want flag.ErrHelp, 0 and none", err, exitCode(err), errorMessage(err))
	}
	if stderr.Len() > 0 {
		t.Errorf("-h wrote to stderr: %q", stderr.String())
	}
	help := stdout.String()
	var o options
	n := 0
	flags(&o).VisitAll(func(f *flag.Flag) {
		n++
		line := regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(f.Name) + `( \S+)?  \(env ` + envName(f.Name) + `\)$`)
		if !line.MatchString(help) {
			t.Errorf("-h has no line for -%s with its twin %s:\n%s", f.Name, envName(f.Name), help)
		}
	})
	if n < 25 {
		t.Errorf("only %d flags", n)
	}
	for _, want := range []string{"usage: node [flags]", `(default "127.0.0.1:7946")`, "(default 50ms)", "DRL_JOIN"} {
		if !strings.Contains(help, want) {
			t.Errorf("-h lacks %q:\n%s", want, help)
		}
	}
	// deploy/deploy_test.go reads the flags from -h this way.
	if got := len(regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`).FindAllString(help, -1)); got != n {
		t.Errorf("-h has %d lines that start with a flag, want %d", got, n)
	}
}

func TestExitCodes(t *testing.T) {
	none := func(string) string { return "" }
	for _, tc := range []struct {
		args []string
		env  map[string]string
		code int
		msg  string
	}{
		{args: []string{"-help"}, code: 0},
		{args: []string{"-bogus"}, code: 2, msg: "node: flag provided but not defined: -bogus\n(node -h lists"},
		{args: []string{"extra"}, code: 2, msg: `node: unexpected arguments ["extra"]`},
		{args: []string{"-gossip-profile", "wan"}, code: 2, msg: `node: -gossip-profile "wan": want lan or local`},
		{args: []string{"-log-level", "loud"}, code: 2, msg: `node: -log-level "loud"`},
		{env: map[string]string{"DRL_BATCH_SIZE": "many"}, code: 2, msg: `node: DRL_BATCH_SIZE="many"`},
		{env: map[string]string{"DRL_BATCH_SIZE": "many", "DRL_LEASES": "maybe"}, code: 2,
			msg: "node: DRL_BATCH_SIZE=\"many\": parse error\nnode: DRL_LEASES=\"maybe\": parse error\n(node -h"},
		{args: []string{"-name", "x", "-gossip-addr", "127.0.0.1:0", "-grpc-addr", "127.0.0.1:0", "-tls-ca", "/nonexistent/ca.pem"},
			code: 1, msg: "node: -tls-cert, -tls-key, -tls-ca"},
	} {
		getenv := none
		if tc.env != nil {
			getenv = func(k string) string { return tc.env[k] }
		}
		var stdout, stderr bytes.Buffer
		err := run(tc.args, getenv, nil, &stdout, &stderr)
		if got := exitCode(err); got != tc.code || !strings.HasPrefix(errorMessage(err), tc.msg) {
			t.Errorf("run(%q) = %v: exit status %d, message %q; want %d, %q", tc.args, err, got, errorMessage(err), tc.code, tc.msg)
		}
	}
	if exitCode(nil) != 0 || errorMessage(nil) != "" {
		t.Error("success is not exit status 0 with no message")
	}
}
