// Package certs keeps a node's TLS material: its certificate and key, and
// the CA that signs every member's certificate, read from PEM files and
// read again when the files change (or on Reload, which cmd/node calls on
// SIGHUP), so that certificates rotate without a restart. Connections
// already open keep the certificate they were made with.
package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Files names the PEM files. CA is required for mutual TLS between
// members; Cert and Key are this node's.
type Files struct {
	Cert, Key, CA string
}

// Store holds the current material. It is safe for concurrent use.
type Store struct {
	files Files

	// mu guards the fields below.
	mu       sync.RWMutex
	cert     *tls.Certificate
	pool     *x509.CertPool
	modTimes [3]time.Time
}

// ErrFiles is matched by errors in reading or parsing the files.
var ErrFiles = errors.New("certs: bad certificate files")

// Load reads the files.
func Load(f Files) (*Store, error) {
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return nil, fmt.Errorf("%w: need a certificate, its key and a CA (got %q, %q, %q)", ErrFiles, f.Cert, f.Key, f.CA)
	}
	s := &Store{files: f}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the files again. On any error the material in force stays.
func (s *Store) Reload() error {
	cert, err := tls.LoadX509KeyPair(s.files.Cert, s.files.Key)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrFiles, err)
	}
	caPEM, err := os.ReadFile(s.files.CA)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrFiles, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("%w: no certificate in CA file %s", ErrFiles, s.files.CA)
	}
	s.mu.Lock()
	s.cert, s.pool, s.modTimes = &cert, pool, s.stat()
	s.mu.Unlock()
	return nil
}

func (s *Store) stat() [3]time.Time {
	var out [3]time.Time
	for i, name := range []string{s.files.Cert, s.files.Key, s.files.CA} {
		if fi, err := os.Stat(name); err == nil {
			out[i] = fi.ModTime()
		}
	}
	return out
}

// Watch reloads whenever a file's modification time changes, checking
// every interval, until ctx ends; onError hears of reloads that failed.
// The caller owns the goroutine it runs in.
func (s *Store) Watch(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.RLock()
		seen := s.modTimes
		s.mu.RUnlock()
		if s.stat() == seen {
			continue
		}
		if err := s.Reload(); err != nil && onError != nil {
			onError(err)
		}
	}
}

func (s *Store) current() (*tls.Certificate, *x509.CertPool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cert, s.pool
}

// ServerConfig is for this node's listeners. A client certificate is
// asked for and, when given, must chain to the CA; whether one is
// required is the service's choice (members' calls to the peer API need
// one: transport.ServerConfig.RequireMemberCert).
func (s *Store) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool := s.current()
			return &tls.Config{
				MinVersion:   tls.VersionTLS12,
				Certificates: []tls.Certificate{*cert},
				ClientAuth:   tls.VerifyClientCertIfGiven,
				ClientCAs:    pool,
				NextProtos:   []string{"h2", "http/1.1"},
			}, nil
		},
	}
}

// ClientConfig is for calls to other members: it presents this node's
// certificate and accepts a server whose certificate chains to the CA in
// force at the handshake and names the host dialed.
func (s *Store) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _ := s.current()
			return cert, nil
		},
		// The chain is checked below against the CA in force now, which a
		// static RootCAs could not follow through a reload.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, pool := s.current()
			return verify(cs, pool, x509.ExtKeyUsageServerAuth)
		},
	}
}

func verify(cs tls.ConnectionState, pool *x509.CertPool, usage x509.ExtKeyUsage) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("certs: the peer sent no certificate")
	}
	opts := x509.VerifyOptions{Roots: pool, DNSName: cs.ServerName, Intermediates: x509.NewCertPool(),
		KeyUsages: []x509.ExtKeyUsage{usage}}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(opts)
	return err
}
