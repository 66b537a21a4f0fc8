package credentials

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kvsgo/kvsgo/pkg/httpx"
)

// The AWS IoT credentials provider (kvssink.md §2.3, local-aws.md §3):
//
//	GET https://<endpoint>/role-aliases/<alias>/credentials
//	x-amzn-iot-thingname: <thing>
//
// over mutual TLS (TLS 1.2 or later, the device certificate and key, the
// endpoint verified with ca-path and by name). The answer is
//
//	{"credentials":{"accessKeyId":"ASIA…","secretAccessKey":"…","sessionToken":"…","expiration":"2026-11-23T12:00:00Z"}}

// ErrIoTCredentials is wrapped by every failure to obtain credentials from
// the IoT credentials provider.
var ErrIoTCredentials = errors.New("credentials: IoT credentials provider")

// maxIoTResponse bounds the provider's answer (a real one is ~1.5 KB).
const maxIoTResponse = 64 << 10

// IoTUserAgent is sent as the official producer sends it.
const IoTUserAgent = "AWS-SDK-KVS"

// IoTStatusError is a non-200 answer of the credentials provider.
type IoTStatusError struct {
	StatusCode int
	Code       string // x-amzn-ErrorType, without namespace
	Message    string // the body's message, when it is JSON
	// Hint, when set, says how to fix the refusal.
	Hint string
}

func (e *IoTStatusError) Error() string {
	s := fmt.Sprintf("HTTP %d", e.StatusCode)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// msgInvalidThing is the credentials provider's answer when the thing named
// in x-amzn-iot-thingname does not exist or is not attached to the
// certificate.
const msgInvalidThing = "Invalid thing name passed"

// thingHint explains msgInvalidThing: which thing was asked for, why, and
// the two ways out.
func thingHint(c IoTCertificate, certID string) string {
	fix := fmt.Sprintf("attach the certificate to that thing (aws iot attach-thing-principal --thing-name %s --principal <certificate ARN>, certificate id %s)", c.ThingName, certID)
	if c.ThingNameDefaulted {
		return fmt.Sprintf("iot-thing-name is not set, so the thing name is the stream name %q, which is not a thing attached to this certificate: "+
			"set iot-thing-name in iot-certificate to the certificate's thing (aws iot list-principal-things --principal <certificate ARN>), or %s", c.ThingName, fix)
	}
	return fmt.Sprintf("the thing %q named by iot-thing-name does not exist or is not attached to this certificate: %s", c.ThingName, fix)
}

// IoTOptions are the test seams and environment of an IoT provider.
type IoTOptions struct {
	// Net is the connection policy of the element (the loopback guard,
	// proxies); the provider adds its certificate, its ca-path roots, the
	// endpoint's name and its timeouts.
	Net httpx.Options
	// DialContext, if set, replaces the TCP dial (tests point a name at
	// 127.0.0.1). Either way a dial is bounded by the connection timeout.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now is the clock used to check the certificate's validity and the
	// expiration of credentials; default time.Now.
	Now func() time.Time
	// Product, if set, starts the User-Agent header, before IoTUserAgent.
	Product string
}

// IoTProvider fetches temporary credentials with a device certificate. It
// is an aws.CredentialsProvider; wrap it in aws.CredentialsCache (Resolve
// does) so that it is asked only when the last credentials near expiry.
type IoTProvider struct {
	cfg     IoTCertificate
	product string
	url     string
	client  *http.Client
	now     func() time.Time
	certID  string
}

// NewIoTProvider reads and checks the certificate, its key and the CA (the
// key must match the certificate, the certificate must be valid now) and
// returns the provider, with warnings about unsafe files (a private key
// readable by others). It does not contact the endpoint.
func NewIoTProvider(c IoTCertificate, o IoTOptions) (*IoTProvider, []string, error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	var warnings []string
	certPEM, err := readSmallFile("cert-path", c.CertPath)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := readSmallFile("key-path", c.KeyPath)
	if err != nil {
		return nil, nil, err
	}
	if fi, err := os.Stat(c.KeyPath); err == nil && fi.Mode().Perm()&0o077 != 0 {
		warnings = append(warnings, fmt.Sprintf("iot-certificate key-path %s is readable by other users (mode %04o); restrict it with chmod 600", c.KeyPath, fi.Mode().Perm()))
	}
	if !strings.Contains(string(certPEM), "-----BEGIN CERTIFICATE-----") {
		return nil, nil, &IoTFieldError{Field: "cert-path", Reason: c.CertPath + " holds no PEM certificate"}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		reason := err.Error()
		if strings.Contains(reason, "does not match") {
			reason = fmt.Sprintf("the private key in %s does not match the certificate in %s", c.KeyPath, c.CertPath)
		} else {
			reason = fmt.Sprintf("%s and %s: %v", c.CertPath, c.KeyPath, scrubKeyError(err))
		}
		return nil, nil, &IoTFieldError{Field: "key-path", Reason: reason}
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, &IoTFieldError{Field: "cert-path", Reason: fmt.Sprintf("%s: %v", c.CertPath, err)}
	}
	t := now()
	if t.After(leaf.NotAfter) {
		return nil, nil, &IoTFieldError{Field: "cert-path", Reason: fmt.Sprintf("the certificate in %s expired at %s", c.CertPath, leaf.NotAfter.UTC().Format(time.RFC3339))}
	}
	if t.Before(leaf.NotBefore) {
		return nil, nil, &IoTFieldError{Field: "cert-path", Reason: fmt.Sprintf("the certificate in %s is not valid before %s", c.CertPath, leaf.NotBefore.UTC().Format(time.RFC3339))}
	}
	roots, err := loadCAs(c.CAPath)
	if err != nil {
		return nil, nil, err
	}
	host := c.Endpoint
	if h, _, err := net.SplitHostPort(c.Endpoint); err == nil {
		host = h
	}
	no := o.Net
	no.RootCAs, no.Certificates, no.ServerName = roots, []tls.Certificate{pair}, host
	no.ConnectTimeout, no.Timeout = c.ConnectionTimeout, c.CompletionTimeout
	no.MaxIdleConnsPerHost, no.IdleConnTimeout = 1, 30*time.Second
	if o.DialContext != nil {
		no.DialContext = o.DialContext
	}
	p := &IoTProvider{
		cfg:     c,
		product: o.Product,
		url:     "https://" + c.Endpoint + "/role-aliases/" + url.PathEscape(c.RoleAlias) + "/credentials",
		client:  httpx.New(no).HTTP(),
		now:     now,
		certID:  CertificateID(pair.Certificate[0]),
	}
	return p, warnings, nil
}

// CertificateID is AWS IoT's certificate id: the SHA-256 of the DER
// certificate, in lower-case hex.
func CertificateID(der []byte) string {
	h := sha256.Sum256(der)
	return hex.EncodeToString(h[:])
}

// CertificateID is the id of the certificate the provider presents; with a
// policy on stream/${credentials-iot:AwsCertificateId}/* it names the stream.
func (p *IoTProvider) CertificateID() string { return p.certID }

// String names the endpoint and alias, never a credential.
func (p *IoTProvider) String() string { return p.cfg.String() }

// Retrieve asks the credentials provider for credentials.
func (p *IoTProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("%w %s: %v", ErrIoTCredentials, p.url, err)
	}
	req.Header.Set("x-amzn-iot-thingname", p.cfg.ThingName)
	ua := IoTUserAgent
	if p.product != "" {
		ua = p.product + " " + IoTUserAgent
	}
	req.Header.Set("User-Agent", ua)
	resp, err := p.client.Do(req)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("%w %s (thing %s): %v", ErrIoTCredentials, p.url, p.cfg.ThingName, explainTLS(err, p.cfg))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIoTResponse+1))
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("%w %s: reading the answer: %v", ErrIoTCredentials, p.url, err)
	}
	if len(body) > maxIoTResponse {
		return aws.Credentials{}, fmt.Errorf("%w %s: the answer is larger than %d bytes", ErrIoTCredentials, p.url, maxIoTResponse)
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK {
		se := &IoTStatusError{StatusCode: resp.StatusCode, Code: strings.SplitN(resp.Header.Get("x-amzn-ErrorType"), ":", 2)[0]}
		var m struct {
			Message  string `json:"message"`
			Message2 string `json:"Message"`
		}
		if json.Unmarshal(body, &m) == nil {
			se.Message = printable(m.Message + m.Message2)
		} else if ct != "" {
			se.Message = "a " + ct + " body"
		}
		if resp.StatusCode == http.StatusForbidden && se.Message == msgInvalidThing {
			se.Hint = thingHint(p.cfg, p.certID)
		}
		return aws.Credentials{}, fmt.Errorf("%w %s (thing %s, role alias %s): %w", ErrIoTCredentials, p.url, p.cfg.ThingName, p.cfg.RoleAlias, se)
	}
	c, err := ParseIoTResponse(body, p.now())
	if err != nil {
		if ct != "" && ct != "application/json" {
			err = fmt.Errorf("%v (Content-Type %s)", err, ct)
		}
		return aws.Credentials{}, fmt.Errorf("%w %s: %v", ErrIoTCredentials, p.url, err)
	}
	return c, nil
}

// ParseIoTResponse parses the credentials provider's JSON answer. The four
// fields are required; expiration must be in the future. Errors name the
// field but never quote a value.
func ParseIoTResponse(body []byte, now time.Time) (aws.Credentials, error) {
	var r struct {
		Credentials *struct {
			AccessKeyID     string `json:"accessKeyId"`
			SecretAccessKey string `json:"secretAccessKey"`
			SessionToken    string `json:"sessionToken"`
			Expiration      string `json:"expiration"`
		} `json:"credentials"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		var se *json.SyntaxError
		switch {
		case errors.As(err, &se) && len(body) > 0 && body[0] == '<':
			return aws.Credentials{}, errors.New("the answer is HTML, not JSON: is the endpoint the iot:CredentialProvider endpoint?")
		case errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "unexpected end of JSON"):
			return aws.Credentials{}, fmt.Errorf("the JSON answer is truncated (%d bytes)", len(body))
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return aws.Credentials{}, fmt.Errorf("field %s of the answer has the wrong type", te.Field)
		}
		return aws.Credentials{}, errors.New("the answer is not JSON")
	}
	if r.Credentials == nil {
		return aws.Credentials{}, errors.New(`the answer has no "credentials" object`)
	}
	c := r.Credentials
	for _, f := range []struct{ name, v string }{{"accessKeyId", c.AccessKeyID}, {"secretAccessKey", c.SecretAccessKey}, {"sessionToken", c.SessionToken}, {"expiration", c.Expiration}} {
		if f.v == "" {
			return aws.Credentials{}, fmt.Errorf("the answer has no credentials.%s", f.name)
		}
	}
	exp, err := time.Parse(time.RFC3339, c.Expiration)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("credentials.expiration %q is not an RFC 3339 time (YYYY-MM-DDTHH:MM:SSZ)", printable(c.Expiration))
	}
	if !exp.After(now) {
		return aws.Credentials{}, fmt.Errorf("credentials.expiration %s is not in the future (now %s): check the clock", exp.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return aws.Credentials{
		AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
		CanExpire: true, Expires: exp, Source: "IoT credentials provider",
	}, nil
}

// explainTLS turns the usual TLS failures into advice naming the field.
func explainTLS(err error, c IoTCertificate) error {
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	var ce x509.CertificateInvalidError
	switch {
	case errors.As(err, &ue):
		return fmt.Errorf("ca-path %s does not verify the endpoint's certificate: %v", c.CAPath, err)
	case errors.As(err, &he):
		return fmt.Errorf("the endpoint's certificate is not valid for %s (endpoint): %v", c.Endpoint, err)
	case errors.As(err, &ce):
		return fmt.Errorf("the endpoint's certificate is invalid: %v", err)
	case strings.Contains(err.Error(), "remote error: tls"), strings.Contains(err.Error(), "connection reset"):
		host := c.Endpoint
		if h, _, splitErr := net.SplitHostPort(c.Endpoint); splitErr == nil {
			host = h
		}
		if net.ParseIP(strings.Trim(host, "[]")) != nil {
			// Go sends no server name (SNI) for an IP address, and the
			// credentials provider routes the handshake by that name.
			return fmt.Errorf("the endpoint refused the TLS handshake; endpoint=%s is an IP address, so no server name was sent: use the credentials provider's host name (aws iot describe-endpoint --endpoint-type iot:CredentialProvider; localhost for a local endpoint) (%v)", c.Endpoint, err)
		}
		return fmt.Errorf("the endpoint refused the TLS handshake: check that endpoint=%s is your account's credentials provider (aws iot describe-endpoint --endpoint-type iot:CredentialProvider) and that the certificate in %s is registered and ACTIVE (%v)", c.Endpoint, c.CertPath, err)
	}
	return err
}

func readSmallFile(field, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &IoTFieldError{Field: field, Reason: err.Error()}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20+1))
	if err != nil {
		return nil, &IoTFieldError{Field: field, Reason: fmt.Sprintf("%s: %v", path, err)}
	}
	if len(b) > 1<<20 {
		return nil, &IoTFieldError{Field: field, Reason: path + " is larger than 1 MiB"}
	}
	return b, nil
}

// loadCAs is LoadCertPool with its errors naming ca-path.
func loadCAs(path string) (*x509.CertPool, error) {
	pool, err := httpx.LoadCertPool(path)
	if err != nil {
		return nil, &IoTFieldError{Field: "ca-path", Reason: err.Error()}
	}
	return pool, nil
}

// scrubKeyError keeps the kind of a key-parsing failure without echoing any
// bytes of the key.
func scrubKeyError(err error) string {
	s := err.Error()
	if len(s) > 120 {
		s = s[:120]
	}
	return printable(s)
}

// printable drops control characters from text quoted from a remote answer
// and bounds its length.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
