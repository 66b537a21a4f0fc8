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

// testCertLifetime is how long generated certificates are valid: long enough
// for a soak or a demo left running, short enough not to matter if leaked.
const testCertLifetime = 30 * 24 * time.Hour

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
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("kvslocal: test CA: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"kvsgo test"}, CommonName: "kvslocal test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(testCertLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("kvslocal: test CA: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("kvslocal: test CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("kvslocal: test CA: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"kvsgo test"}, CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(testCertLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
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
		{ca.CertFile, "CERTIFICATE", der, 0o644},
		{ca.CAFile, "CERTIFICATE", caDER, 0o644},
	} {
		if err := writePEM(f.path, f.typ, f.der, f.mode); err != nil {
			return nil, err
		}
	}
	return ca, nil
}

// OpenTestCA uses the CA files in dir if all three are there and the server
// certificate loads, and calls NewTestCA otherwise.
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
	if _, err := tls.LoadX509KeyPair(ca.CertFile, ca.KeyFile); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return NewTestCA(dir)
		}
		return nil, fmt.Errorf("kvslocal: test CA in %s: %w", dir, err)
	}
	if !ca.Pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("kvslocal: test CA: no certificate in %s", ca.CAFile)
	}
	return ca, nil
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
