package sink

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func ptr(s string) *string { return &s }

func TestSettingsConfig(t *testing.T) {
	creds := map[string]string{"AWS_ACCESS_KEY_ID": "AKIDX", "AWS_SECRET_ACCESS_KEY": "s"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range creds {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name     string
		mod      func(*Settings)
		env      map[string]string
		region   string
		endpoint string
		source   string
		err      string
	}{
		{name: "defaults", env: creds, region: "us-west-2", endpoint: "https://kinesisvideo.us-west-2.amazonaws.com", source: "region"},
		{name: "AWS_REGION", env: with(map[string]string{"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "ap-south-1"}), region: "eu-west-1", endpoint: "https://kinesisvideo.eu-west-1.amazonaws.com", source: "region"},
		{name: "AWS_DEFAULT_REGION", env: with(map[string]string{"AWS_DEFAULT_REGION": "ap-south-1"}), region: "ap-south-1", endpoint: "https://kinesisvideo.ap-south-1.amazonaws.com", source: "region"},
		{name: "explicit region wins over the environment", mod: func(s *Settings) { s.AWSRegion = ptr("eu-central-1") }, env: with(map[string]string{"AWS_DEFAULT_REGION": "ap-south-1"}), region: "eu-central-1", endpoint: "https://kinesisvideo.eu-central-1.amazonaws.com", source: "region"},
		{name: "control-plane-uri first", mod: func(s *Settings) { s.ControlPlaneURI = ptr("http://127.0.0.1:1234/") }, env: with(map[string]string{"AWS_ENDPOINT_URL_KINESIS_VIDEO": "http://127.0.0.1:1"}), region: "us-west-2", endpoint: "http://127.0.0.1:1234", source: "control-plane-uri"},
		{name: "AWS_ENDPOINT_URL_KINESIS_VIDEO before CONTROL_PLANE_URI", env: with(map[string]string{"AWS_ENDPOINT_URL_KINESIS_VIDEO": "http://localhost:2", "CONTROL_PLANE_URI": "http://127.0.0.1:3"}), region: "us-west-2", endpoint: "http://localhost:2", source: "AWS_ENDPOINT_URL_KINESIS_VIDEO"},
		{name: "CONTROL_PLANE_URI before AWS_ENDPOINT_URL", env: with(map[string]string{"CONTROL_PLANE_URI": "http://127.0.0.1:3", "AWS_ENDPOINT_URL": "http://127.0.0.1:4"}), region: "us-west-2", endpoint: "http://127.0.0.1:3", source: "CONTROL_PLANE_URI"},
		{name: "AWS_ENDPOINT_URL", env: with(map[string]string{"AWS_ENDPOINT_URL": "https://kvs.example.com"}), region: "us-west-2", endpoint: "https://kvs.example.com", source: "AWS_ENDPOINT_URL"},
		{name: "plain http only on loopback", env: with(map[string]string{"CONTROL_PLANE_URI": "http://10.0.0.1:80"}), err: "CONTROL_PLANE_URI"},
		{name: "bad stream name", mod: func(s *Settings) { s.StreamName = "a b" }, env: creds, err: "stream-name"},
		{name: "no credentials", env: map[string]string{}, err: "; set the iot-certificate property, the access-key and secret-key properties"},
		{name: "bad region", mod: func(s *Settings) { s.AWSRegion = ptr("mars") }, env: creds, err: "mars"},
		{name: "non-string stream tag", mod: func(s *Settings) {
			s.StreamTags = &Structure{Name: "tags", Fields: map[string]TypedValue{"n": {Type: "gint", Value: "5"}}}
		}, env: creds, err: "n=(string)5"},
		{name: "fragment-duration out of range", mod: func(s *Settings) { s.KeyFrameFragmentation = false; s.FragmentDurationMs = 500 }, env: creds, err: "fragment-duration"},
		{name: "fragment-duration out of range with key-frame fragmentation", mod: func(s *Settings) { s.FragmentDurationMs = 30001 }, env: creds, err: "fragment-duration 30001 ms outside 1000..30000"},
		{name: "retention-period over the service's maximum", mod: func(s *Settings) { s.RetentionHours = 87601 }, env: creds, err: "retention-period 87601 h"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := DefaultSettings()
			if c.mod != nil {
				c.mod(&st)
			}
			cfg, err := st.Config(env(c.env))
			if err == nil && c.err != "" {
				// What only the start can know (no credential source
				// anywhere) is reported by Open.
				_, err = cfg.Open(context.Background())
			}
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrSettings) {
					t.Fatalf("err = %v, want ErrSettings mentioning %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Region != c.region || cfg.Endpoint != c.endpoint || cfg.EndpointSource != c.source {
				t.Fatalf("region %s endpoint %s (%s)", cfg.Region, cfg.Endpoint, cfg.EndpointSource)
			}
		})
	}
}

func TestSettingsConfigValues(t *testing.T) {
	st := DefaultSettings()
	st.StreamTags = &Structure{Name: "tags", Fields: map[string]TypedValue{"team": {Type: "gchararray", Value: "video"}}}
	st.FileStartTime = 1700000000
	cfg, err := st.Config(env(map[string]string{"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", LoopbackOnlyEnv: "1"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StopStreamTimeout != 120*time.Second || cfg.ConnectionTimeout != 5*time.Second || cfg.CompletionTimeout != 10*time.Second ||
		cfg.StorageSize != 128<<20 || cfg.FragmentDuration != 2*time.Second || cfg.TimecodeScale != time.Millisecond ||
		cfg.StreamTags["team"] != "video" || !cfg.FileStartTime.Equal(time.Unix(1700000000, 0)) || !cfg.LoopbackOnly || cfg.RetentionHours != 2 {
		t.Fatalf("config = %+v", cfg)
	}
}

// The store, replay, watchdog and metrics settings reach the Config; the
// CA path comes from ca-cert-path, else KVSSINK_CA_CERT_PATH.
func TestSettingsConfigStoreAndTLS(t *testing.T) {
	base := map[string]string{"AWS_ACCESS_KEY_ID": "AKIDX", "AWS_SECRET_ACCESS_KEY": "s"}
	st := DefaultSettings()
	st.BufferDurationSec, st.ReplayDurationSec, st.MaxLatencySec, st.ConnectionStaleSec = 30, 10, 20, 5
	st.StorageSizeMB, st.MetricsIntervalMs, st.GetKVSMetrics = 16, 500, true
	envCA, propCA := testCA(t), testCA(t)
	e := map[string]string{CACertEnv: envCA}
	for k, v := range base {
		e[k] = v
	}
	cfg, err := st.Config(env(e))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BufferDuration != 30*time.Second || cfg.ReplayDuration != 10*time.Second || cfg.MaxLatency != 20*time.Second ||
		cfg.ConnectionStaleness != 5*time.Second || cfg.StorageSize != 16<<20 || cfg.MetricsInterval != 500*time.Millisecond ||
		!cfg.MetricsOnKeyFrame || cfg.CACertPath != envCA {
		t.Fatalf("buffer %v replay %v latency %v stale %v storage %d metrics %v/%v ca %q", cfg.BufferDuration, cfg.ReplayDuration, cfg.MaxLatency, cfg.ConnectionStaleness, cfg.StorageSize, cfg.MetricsInterval, cfg.MetricsOnKeyFrame, cfg.CACertPath)
	}
	st.CACertPath = ptr(propCA)
	if cfg, err := st.Config(env(e)); err != nil || cfg.CACertPath != propCA {
		t.Fatalf("ca-cert-path does not win over %s: %q %v", CACertEnv, cfg.CACertPath, err)
	}
	// A missing CA file is reported by Open (Config reads no file), naming
	// the property.
	st.CACertPath = ptr(filepath.Join(t.TempDir(), "missing.pem"))
	cfg, err = st.Config(env(e))
	if err != nil {
		t.Fatalf("Config read the CA file: %v", err)
	}
	if _, err := cfg.Open(context.Background()); !errors.Is(err, ErrSettings) || !strings.Contains(err.Error(), "missing.pem") || !strings.Contains(err.Error(), "ca-cert-path") {
		t.Fatalf("a missing CA file: %v", err)
	}
	// replay-duration is at most buffer-duration.
	if c := (Config{BufferDuration: 5 * time.Second, ReplayDuration: time.Minute}).withDefaults(); c.ReplayDuration != 5*time.Second {
		t.Fatalf("replay %v", c.ReplayDuration)
	}
}

// testCA writes a self-signed CA certificate and returns its path.
func testCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kvsgo test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// storage-memory: 32 MiB by default, never more than storage-size (which
// bounds the disk with a storage path).
func TestStorageMemory(t *testing.T) {
	for _, c := range []struct {
		sizeMB, memMB uint
		want          int64
	}{
		{128, DefaultStorageMemoryMB, 32 << 20},
		{4096, 256, 256 << 20},
		{16, 32, 16 << 20},
		{16, 0, 16 << 20}, // 0: the default, capped
	} {
		st := DefaultSettings()
		st.StorageSizeMB, st.StorageMemoryMB = c.sizeMB, c.memMB
		cfg, err := st.Config(env(map[string]string{"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}))
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.withDefaults().StorageMemory; got != c.want {
			t.Errorf("storage-size %d MiB, storage-memory %d MiB: StorageMemory %d, want %d", c.sizeMB, c.memMB, got, c.want)
		}
	}
}
