package kvslocal

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// TLSConfig makes the endpoint serve HTTPS (Config.TLS). The server offers
// only http/1.1 by ALPN: PutMedia signs transfer-encoding, which HTTP/2
// forbids. URL and GetDataEndpoint then return https://localhost:PORT, a host
// name that the certificate names, so that clients checking SNI and host
// names accept it.
type TLSConfig struct {
	CertFile string // PEM server certificate (chain), e.g. CA.CertFile
	KeyFile  string // PEM private key of the certificate
}

// File names NewTestCA writes.
const (
	CAFileName   = "ca.pem"
	CertFileName = "server.pem"
	KeyFileName  = "server.key"
)

// TestCertLifetime is how long generated certificates (NewTestCert) are
// valid: long enough for a soak or a demo left running, short enough not to
// matter if leaked.
const TestCertLifetime = 30 * 24 * time.Hour

// CA is a throwaway certificate authority and the server certificate it
// signed, as files in a directory.
type CA struct {
	CAFile   string // the CA certificate (PEM): the root clients trust
	CertFile string // the server certificate (PEM)
	KeyFile  string // the server's private key (PEM, mode 0600)
	// Pool holds the CA certificate, for Go clients' tls.Config.RootCAs.
	Pool *x509.CertPool
}

// TLS is the Config.TLS that serves the CA's server certificate.
func (ca *CA) TLS() *TLSConfig { return &TLSConfig{CertFile: ca.CertFile, KeyFile: ca.KeyFile} }

// NewTestCA generates, with ECDSA P-256, a CA and a server certificate for
// DNS localhost and IPs 127.0.0.1 and ::1, and writes ca.pem, server.pem and
// server.key (0600) into dir, replacing any that are there. The CA's key is
// never written: nothing else can be signed with it.
func NewTestCA(dir string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("kvslocal: test CA: %w", err)
	}
	caCert, caKey, err := NewTestCert(&x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"kvsgo test"}, CommonName: "kvslocal test CA"},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("kvslocal: test CA: %w", err)
	}
	cert, key, err := NewTestCert(&x509.Certificate{
		Subject:     pkix.Name{Organization: []string{"kvsgo test"}, CommonName: "localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}, caCert, caKey)
	if err != nil {
		return nil, fmt.Errorf("kvslocal: test CA: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("kvslocal: test CA: %w", err)
	}
	ca := &CA{CAFile: filepath.Join(dir, CAFileName), CertFile: filepath.Join(dir, CertFileName),
		KeyFile: filepath.Join(dir, KeyFileName), Pool: x509.NewCertPool()}
	ca.Pool.AddCert(caCert)
	for _, f := range []struct {
		path, typ string
		der       []byte
		mode      os.FileMode
	}{
		{ca.KeyFile, "PRIVATE KEY", keyDER, 0o600},
		{ca.CertFile, "CERTIFICATE", cert.Raw, 0o644},
		{ca.CAFile, "CERTIFICATE", caCert.Raw, 0o644},
	} {
		if err := writePEM(f.path, f.typ, f.der, f.mode); err != nil {
			return nil, err
		}
	}
	return ca, nil
}

// OpenTestCA uses the CA files in dir if all three are there, the server
// certificate loads and neither it nor the CA has expired, and calls
// NewTestCA otherwise.
func OpenTestCA(dir string) (*CA, error) {
	ca := &CA{CAFile: filepath.Join(dir, CAFileName), CertFile: filepath.Join(dir, CertFileName),
		KeyFile: filepath.Join(dir, KeyFileName), Pool: x509.NewCertPool()}
	caPEM, err := os.ReadFile(ca.CAFile)
	if errors.Is(err, os.ErrNotExist) {
		return NewTestCA(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("kvslocal: test CA: %w", err)
	}
	pair, err := tls.LoadX509KeyPair(ca.CertFile, ca.KeyFile)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return NewTestCA(dir)
		}
		return nil, fmt.Errorf("kvslocal: test CA in %s: %w", dir, err)
	}
	blk, _ := pem.Decode(caPEM)
	if blk == nil || !ca.Pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("kvslocal: test CA: no certificate in %s", ca.CAFile)
	}
	caCert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("kvslocal: test CA in %s: %w", ca.CAFile, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("kvslocal: test CA in %s: %w", ca.CertFile, err)
	}
	if now := time.Now(); now.After(caCert.NotAfter) || now.After(leaf.NotAfter) {
		return NewTestCA(dir)
	}
	return ca, nil
}

// NewTestCert generates an ECDSA P-256 key and a certificate for it from
// tmpl, signed by parent and parentKey (self-signed when parent is nil),
// with a random serial number and, where tmpl leaves them zero, NotBefore an
// hour ago (clock skew) and NotAfter TestCertLifetime from now.
func NewTestCert(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	t := *tmpl
	t.SerialNumber = serial()
	now := time.Now()
	if t.NotBefore.IsZero() {
		t.NotBefore = now.Add(-time.Hour)
	}
	if t.NotAfter.IsZero() {
		t.NotAfter = now.Add(TestCertLifetime)
	}
	if parent == nil {
		parent, parentKey = &t, key
	}
	der, err := x509.CreateCertificate(rand.Reader, &t, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n.Add(n, big.NewInt(1))
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	// Remove first: WriteFile keeps the mode of an existing file.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("kvslocal: test CA: %w", err)
	}
	if err := os.WriteFile(path, b, mode); err != nil {
		return fmt.Errorf("kvslocal: test CA: %w", err)
	}
	return nil
}

// setupTLS is called by prepare with s.mu held. Without Config.TLS it does
// nothing. Otherwise it loads the certificate, makes srv serve HTTP/1.1 only
// over TLS 1.2+, and sets the URL to https://localhost:PORT.
func (s *Server) setupTLS(srv *http.Server, l net.Listener) error {
	if s.cfg.TLS == nil {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile)
	if err != nil {
		return fmt.Errorf("kvslocal: TLS certificate: %w", err)
	}
	srv.TLSConfig = &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}
	var p http.Protocols
	p.SetHTTP1(true)
	srv.Protocols = &p
	srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	_, port, err := net.SplitHostPort(l.Addr().String())
	if err != nil {
		return fmt.Errorf("kvslocal: %w", err)
	}
	s.url = "https://" + net.JoinHostPort("localhost", port)
	return nil
}

// tlsListener wraps l in TLS when srv has a TLS configuration.
func tlsListener(srv *http.Server, l net.Listener) net.Listener {
	if srv.TLSConfig == nil {
		return l
	}
	return tls.NewListener(l, srv.TLSConfig)
}
