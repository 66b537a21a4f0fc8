package iam

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/kvsgo/kvsgo/test/kvslocal"
)

// CA is a test certificate authority that signs the IoT endpoint's server
// certificate and device certificates.
type CA struct {
	Cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	CertPEM []byte
}

// NewCA makes a CA valid for kvslocal.TestCertLifetime.
func NewCA(name string) (*CA, error) {
	c, key, err := kvslocal.NewTestCert(&x509.Certificate{
		Subject: pkix.Name{CommonName: name, Organization: []string{"kvsgo test"}},
		IsCA:    true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, nil)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: c, key: key, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})}, nil
}

// Leaf is a certificate the CA issued, with its key.
type Leaf struct {
	CertPEM, KeyPEM []byte
	// ID is the AWS IoT certificate id: SHA-256 of the DER, hex.
	ID string
}

// IssueOptions shape a leaf certificate.
type IssueOptions struct {
	CommonName string
	Hosts      []string  // DNS names or IP addresses: makes a server certificate
	NotBefore  time.Time // default: an hour ago
	NotAfter   time.Time // default: kvslocal.TestCertLifetime from now
}

// Issue signs a new key.
func (ca *CA) Issue(o IssueOptions) (Leaf, error) {
	tmpl := &x509.Certificate{
		Subject:   pkix.Name{CommonName: o.CommonName},
		NotBefore: o.NotBefore, NotAfter: o.NotAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(o.Hosts) > 0 {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range o.Hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	c, key, err := kvslocal.NewTestCert(tmpl, ca.Cert, ca.key)
	if err != nil {
		return Leaf{}, err
	}
	der := c.Raw
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Leaf{}, err
	}
	h := sha256.Sum256(der)
	return Leaf{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		ID:      hex.EncodeToString(h[:]),
	}, nil
}

// TLSCertificate is the leaf as a tls.Certificate (for a server).
func (l Leaf) TLSCertificate() (tls.Certificate, error) { return tls.X509KeyPair(l.CertPEM, l.KeyPEM) }

// DeviceFiles are a device's files as the iot-certificate property names them.
type DeviceFiles struct {
	CertPath, KeyPath, CAPath string
	ID                        string
}

// WriteDevice issues a device certificate and writes dir/name.pem,
// dir/name.key (mode 0600) and dir/ca.pem.
func (ca *CA) WriteDevice(dir, name string, o IssueOptions) (DeviceFiles, error) {
	if o.CommonName == "" {
		o.CommonName = name
	}
	l, err := ca.Issue(o)
	if err != nil {
		return DeviceFiles{}, err
	}
	f := DeviceFiles{CertPath: filepath.Join(dir, name+".pem"), KeyPath: filepath.Join(dir, name+".key"), CAPath: filepath.Join(dir, "ca.pem"), ID: l.ID}
	err = errors.Join(os.WriteFile(f.CertPath, l.CertPEM, 0o644), os.WriteFile(f.KeyPath, l.KeyPEM, 0o600), os.WriteFile(f.CAPath, ca.CertPEM, 0o644))
	return f, err
}

func certificateIDFromPEM(b []byte) (string, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return "", errors.New("no PEM certificate")
		}
		if blk.Type == "CERTIFICATE" {
			h := sha256.Sum256(blk.Bytes)
			return hex.EncodeToString(h[:]), nil
		}
	}
}

// publicKeyPEM is the public key of a PEM certificate, as
// CreateKeysAndCertificate returns it.
func publicKeyPEM(certPEM []byte) (string, error) {
	blk, _ := pem.Decode(certPEM)
	if blk == nil {
		return "", errors.New("no PEM certificate")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKIXPublicKey(c.PublicKey)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// certValidity is a PEM certificate's validity period.
func certValidity(certPEM string) (time.Time, time.Time, bool) {
	blk, _ := pem.Decode([]byte(certPEM))
	if blk == nil {
		return time.Time{}, time.Time{}, false
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return time.Time{}, time.Time{}, false
	}
	return c.NotBefore, c.NotAfter, true
}
