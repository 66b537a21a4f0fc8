package sink

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/credentials"
)

// countingListener counts the connections made to it.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// stsServer answers every request with 403 (or holds it until the test ends
// when hold is set) and counts connections and requests; arrived receives
// one value per request.
func stsServer(t *testing.T, hold bool) (srv *httptest.Server, conns *countingListener, reqs *atomic.Int64, arrived chan struct{}) {
	t.Helper()
	reqs = new(atomic.Int64)
	arrived = make(chan struct{}, 16)
	done := make(chan struct{})
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.Add(1)
		select {
		case arrived <- struct{}{}:
		default:
		}
		if hold {
			select {
			case <-r.Context().Done():
			case <-done:
			}
			http.Error(w, "gone", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>no</Message></Error></ErrorResponse>`))
	}))
	conns = &countingListener{Listener: srv.Listener}
	srv.Listener = conns
	srv.Start()
	t.Cleanup(func() { close(done); srv.Close() })
	return srv, conns, reqs, arrived
}

// Settings.Config reads no file and makes no connection: every property
// that names a file, and a role that needs STS, is accepted by Config and
// reported by Open, with the property named.
func TestConfigDoesNoIO(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	sts, conns, reqs, _ := stsServer(t, false)
	iotLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	iot := &countingListener{Listener: iotLn}
	defer iot.Close()
	go func() {
		for {
			c, err := iot.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	keys := map[string]string{"AWS_ACCESS_KEY_ID": "AKIDX", "AWS_SECRET_ACCESS_KEY": "s", LoopbackOnlyEnv: "1"}
	cases := []struct {
		name  string
		mod   func(*Settings)
		env   map[string]string
		named string // what Open's error names
		check func(t *testing.T, err error)
	}{
		{name: "ca-cert-path", mod: func(s *Settings) { s.CACertPath = ptr(missing + ".pem") }, env: keys, named: "ca-cert-path"},
		{name: "KVSSINK_CA_CERT_PATH", env: map[string]string{"AWS_ACCESS_KEY_ID": "AKIDX", "AWS_SECRET_ACCESS_KEY": "s", CACertEnv: missing + ".pem"}, named: CACertEnv},
		{name: "iot-certificate key and certificate files", mod: func(s *Settings) {
			s.IoTCertificate = iotStructure("endpoint", "gchararray", iot.Addr().String(), "cert-path", "gchararray", missing+".crt",
				"key-path", "gchararray", missing+".key", "ca-path", "gchararray", missing+".ca", "role-aliases", "gchararray", "A")
		}, env: keys, named: "cert-path", check: func(t *testing.T, err error) {
			var fe *credentials.IoTFieldError
			if !errors.As(err, &fe) || fe.Field != "cert-path" {
				t.Fatalf("Open = %v, want an IoTFieldError on cert-path", err)
			}
		}},
		{name: "e2ee-recipients file", mod: func(s *Settings) {
			s.E2EERecipients, s.E2EESigningKey = ptr(missing+".pub"), ptr(missing+".key")
		}, env: keys, named: "e2ee-recipients"},
		{name: "role-arn asks STS in Open only", mod: func(s *Settings) {
			s.RoleARN = ptr("arn:aws:iam::123456789012:role/R")
		}, env: map[string]string{"AWS_ACCESS_KEY_ID": "AKIDX", "AWS_SECRET_ACCESS_KEY": "s", "AWS_ENDPOINT_URL_STS": sts.URL}, named: "role arn:aws:iam::123456789012:role/R"},
		{name: "credential-path and no other source", mod: func(s *Settings) { s.CredentialPath = ptr(missing + ".cred") },
			env: map[string]string{"AWS_EC2_METADATA_DISABLED": "true"}, named: "set the iot-certificate property"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := DefaultSettings()
			if c.mod != nil {
				c.mod(&st)
			}
			before := conns.n.Load() + iot.n.Load()
			cfg, err := st.Config(env(c.env))
			if err != nil {
				t.Fatalf("Config = %v: it must accept what only I/O can refute", err)
			}
			if n := conns.n.Load() + iot.n.Load() - before; n != 0 {
				t.Fatalf("Config made %d connections", n)
			}
			if cfg.Credentials != nil || cfg.HTTPClient != nil || cfg.Net != nil || cfg.E2EE != nil {
				t.Fatalf("Config resolved what Open resolves: %+v", cfg)
			}
			_, err = cfg.Open(context.Background())
			if !errors.Is(err, ErrSettings) || !strings.Contains(err.Error(), c.named) {
				t.Fatalf("Open = %v, want ErrSettings naming %q", err, c.named)
			}
			if c.check != nil {
				c.check(t, err)
			}
		})
	}
	if reqs.Load() == 0 {
		t.Fatal("Open never asked STS for the role")
	}
	if iot.n.Load() != 0 {
		t.Fatal("the IoT provider was dialled although its files are missing")
	}
}

// Open runs under the caller's context: cancelling it (the element's
// unlock) ends a credential request that hangs.
func TestOpenCancellable(t *testing.T) {
	sts, _, _, arrived := stsServer(t, true)
	st := DefaultSettings()
	st.RoleARN = ptr("arn:aws:iam::123456789012:role/R")
	cfg, err := st.Config(env(map[string]string{"AWS_ACCESS_KEY_ID": "AKIDX", "AWS_SECRET_ACCESS_KEY": "s", "AWS_ENDPOINT_URL_STS": sts.URL, LoopbackOnlyEnv: "1"}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := cfg.Open(ctx)
		errc <- err
	}()
	// Cancel once the request has arrived, then Open must return.
	select {
	case <-arrived:
	case err := <-errc:
		t.Fatalf("Open returned before its request arrived: %v", err)
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Open = %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Open did not return after its context was cancelled")
	}
}
