package kvslocal

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
)

// startTLS starts a server that serves HTTPS with a fresh test CA.
func startTLS(t *testing.T) (*Server, string, *CA) {
	t.Helper()
	ca, err := NewTestCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t.TempDir())
	cfg.TLS = ca.TLS()
	s, u := startWith(t, cfg)
	return s, u, ca
}

// tlsClient is the SDK's kinesisvideo client trusting roots (nil: the
// system's roots only).
func tlsClient(u string, roots *x509.CertPool) *kinesisvideo.Client {
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	})
	return kinesisvideo.New(kinesisvideo.Options{
		Region: testRegion, BaseEndpoint: aws.String(u), RetryMaxAttempts: 1, HTTPClient: hc,
		Credentials: awscreds.NewStaticCredentialsProvider(testKey, testSecret, ""),
	})
}

// The TLS mode serves a certificate for the host name localhost (so that
// clients checking SNI and host names accept it), to the SDK over
// https://localhost:PORT, and GetDataEndpoint answers that URL.
func TestTLSWithTheSDK(t *testing.T) {
	_, u, ca := startTLS(t)
	pu, err := url.Parse(u)
	if err != nil || pu.Scheme != "https" || pu.Hostname() != "localhost" {
		t.Fatalf("URL %s, want https://localhost:PORT", u)
	}
	ctx := context.Background()
	c := tlsClient(u, ca.Pool)
	if _, err := c.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("tls"), DataRetentionInHours: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	ep, err := c.GetDataEndpoint(ctx, &kinesisvideo.GetDataEndpointInput{StreamName: aws.String("tls"), APIName: types.APINamePutMedia})
	if err != nil || aws.ToString(ep.DataEndpoint) != u {
		t.Fatalf("GetDataEndpoint %q, %v; want %s", aws.ToString(ep.DataEndpoint), err, u)
	}
	// The certificate names localhost (checked by SNI-aware clients) as
	// well as the loopback addresses.
	conn, err := tls.Dial("tcp", pu.Host, &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	leaf := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Errorf("the certificate does not cover %s: %v", h, err)
		}
	}
	// A client that does not trust the CA fails the handshake.
	_, err = tlsClient(u, x509.NewCertPool()).ListStreams(ctx, &kinesisvideo.ListStreamsInput{})
	var ua x509.UnknownAuthorityError
	if !errors.As(err, &ua) {
		t.Fatalf("a client without the CA: %v, want an unknown-authority error", err)
	}
	// Nor does the certificate fit another name.
	_, port, _ := net.SplitHostPort(pu.Host)
	if _, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", port), &tls.Config{RootCAs: ca.Pool, ServerName: "kinesisvideo.us-west-2.amazonaws.com"}); err == nil {
		t.Fatal("the certificate was accepted for a name it does not hold")
	}
}

// A client offering h2 by ALPN gets http/1.1: PutMedia signs
// transfer-encoding, which HTTP/2 forbids.
func TestTLSNegotiatesHTTP1(t *testing.T) {
	_, u, ca := startTLS(t)
	pu, _ := url.Parse(u)
	conn, err := tls.Dial("tcp", pu.Host, &tls.Config{RootCAs: ca.Pool, ServerName: "localhost", NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Fatalf("ALPN chose %q, want http/1.1", p)
	}
	// Go's transport, which prefers HTTP/2 when offered.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Post(u+"/listStreams", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("%s %d, want HTTP/1.1 403 (unsigned)", resp.Proto, resp.StatusCode)
	}
}

// OpenTestCA reuses a CA that is still valid and makes a new one once the
// stored CA or server certificate has expired.
func TestOpenTestCARenewsExpired(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewTestCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ca.CAFile, ca.CertFile} {
		if na := readCert(t, f).NotAfter; na.Before(time.Now().Add(TestCertLifetime - time.Hour)) {
			t.Fatalf("%s valid until %v, want about %v from now", f, na, TestCertLifetime)
		}
	}
	caPEM, _ := os.ReadFile(ca.CAFile)
	again, err := OpenTestCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(again.CAFile); !bytes.Equal(b, caPEM) {
		t.Fatal("a valid CA was replaced")
	}
	past := time.Now().Add(-48 * time.Hour)
	old, _, err := NewTestCert(&x509.Certificate{IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		NotBefore: past, NotAfter: past.Add(24 * time.Hour)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := writePEM(ca.CAFile, "CERTIFICATE", old.Raw, 0o644); err != nil {
		t.Fatal(err)
	}
	renewed, err := OpenTestCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(renewed.CAFile)
	if bytes.Equal(b, caPEM) || readCert(t, renewed.CAFile).NotAfter.Before(time.Now()) {
		t.Fatal("an expired CA was not replaced")
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
