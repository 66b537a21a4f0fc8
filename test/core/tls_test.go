package core

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/kvs"
	"github.com/kvsgo/kvsgo/pkg/sink"
	"github.com/kvsgo/kvsgo/test/kvslocal"
)

// tlsEndpoint serves the local endpoint over HTTPS with a fresh test CA.
func tlsEndpoint(t *testing.T) (*kvslocal.Server, *kvslocal.CA) {
	t.Helper()
	ca, err := kvslocal.NewTestCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := kvslocal.New(kvslocal.Config{Dir: t.TempDir(), TLS: ca.TLS(),
		Credentials: []kvslocal.Credential{{AccessKeyID: accessKey, SecretAccessKey: secretKey}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, ca
}

// tlsConfig resolves element settings the way the plugin does, with the
// environment in env.
func tlsConfig(t *testing.T, url, stream string, env map[string]string) sink.Config {
	t.Helper()
	st := sink.DefaultSettings()
	st.StreamName = stream
	st.ControlPlaneURI = &url
	ak, sk := accessKey, secretKey
	st.AccessKey, st.SecretKey = &ak, &sk
	st.ConnectionTimeoutSec, st.CompletionTimeoutSec, st.StopStreamTimeoutSec = 1, 3, 10
	env[sink.LoopbackOnlyEnv] = "1"
	cfg, err := st.Config(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err = cfg.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Streaming over TLS to an endpoint whose CA is given by the official
// KVSSINK_CA_CERT_PATH, as a file and as a directory.
func TestTLSWithCustomCA(t *testing.T) {
	srv, ca := tlsEndpoint(t)
	if !strings.HasPrefix(srv.URL(), "https://") {
		t.Fatalf("endpoint URL %s", srv.URL())
	}
	cpd, frames := officialFrames(t)
	for _, c := range []struct{ name, path string }{{"file", ca.CAFile}, {"dir", ca.CAFile[:strings.LastIndexByte(ca.CAFile, '/')]}} {
		t.Run(c.name, func(t *testing.T) {
			name := "tls-" + c.name
			cfg := tlsConfig(t, srv.URL(), name, map[string]string{sink.CACertEnv: c.path})
			if cfg.CACertPath != c.path {
				t.Fatalf("CACertPath %q", cfg.CACertPath)
			}
			if err := stream(t, cfg, cpd, frames[:60]); err != nil {
				t.Fatal(err)
			}
			frags, _ := srv.Fragments(name)
			if len(frags) != 2 {
				t.Fatalf("stored %d fragments over TLS, want 2", len(frags))
			}
		})
	}
}

// The endpoint's CA is not trusted: Start fails at once with an error that
// says TLS and certificate, and it is not retried.
func TestTLSUntrustedFailsFast(t *testing.T) {
	srv, _ := tlsEndpoint(t)
	cfg := tlsConfig(t, srv.URL(), "untrusted", map[string]string{})
	s, err := sink.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	err = s.Start(context.Background())
	took := time.Since(start)
	if err == nil || !kvs.IsTLSError(err) || !strings.Contains(err.Error(), "TLS") || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Start = %v", err)
	}
	if took > time.Second {
		t.Fatalf("took %v: a certificate error must not be retried", took)
	}
	t.Logf("error: %v", err)
}

// A CA path without certificates is a settings error naming the path.
func TestCACertPathWithoutCertificates(t *testing.T) {
	dir := t.TempDir()
	st := sink.DefaultSettings()
	ak, sk := accessKey, secretKey
	st.AccessKey, st.SecretKey = &ak, &sk
	st.CACertPath = &dir
	// Config reads no file: Open loads the CAs (the credential sources use
	// them too); a Config built by hand fails in New.
	c, err := st.Config(func(string) string { return "" })
	if err != nil {
		t.Fatalf("Config read the CA path: %v", err)
	}
	if _, err := c.Open(context.Background()); !errors.Is(err, sink.ErrSettings) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "ca-cert-path") {
		t.Fatalf("Open = %v", err)
	}
	cfg := config("http://127.0.0.1:1", "ca-check")
	cfg.CACertPath = dir
	if _, err := sink.New(cfg); !errors.Is(err, sink.ErrSettings) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("New = %v", err)
	}
}

// A missing stream with allow-create-stream=false is an error naming the
// stream, within the bound.
func TestMissingStreamNoCreate(t *testing.T) {
	_, url := startEndpoint(t)
	cfg := config(url, "absent")
	cfg.AllowCreateStream = false
	s, err := sink.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Start(context.Background())
	if !errors.Is(err, kvs.ErrStreamNotFound) || !strings.Contains(err.Error(), "absent") {
		t.Fatalf("Start = %v", err)
	}
}
