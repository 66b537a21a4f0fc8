package credentials

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseIoTCertificate(t *testing.T) {
	full := "iot-certificate,endpoint=xxx.credentials.iot.us-west-2.amazonaws.com,cert-path=/c.pem,key-path=/k.key,ca-path=/ca.pem,role-aliases=Alias"
	cases := []struct {
		name, in string
		want     IoTCertificate
		err      string // the field the error names
	}{
		{"guide", full, IoTCertificate{Endpoint: "xxx.credentials.iot.us-west-2.amazonaws.com", CertPath: "/c.pem", KeyPath: "/k.key", CAPath: "/ca.pem",
			RoleAlias: "Alias", ThingName: "stream", ThingNameDefaulted: true, ConnectionTimeout: 3 * time.Second, CompletionTimeout: 5 * time.Second}, ""},
		{"thing and timeouts", full + ",iot-thing-name=cam1,connection-timeout=(string)4,completion-timeout=(string)9", IoTCertificate{Endpoint: "xxx.credentials.iot.us-west-2.amazonaws.com",
			CertPath: "/c.pem", KeyPath: "/k.key", CAPath: "/ca.pem", RoleAlias: "Alias", ThingName: "cam1", ConnectionTimeout: 4 * time.Second, CompletionTimeout: 9 * time.Second}, ""},
		{"quoted, spaces, port, trailing ;", `iot-certificate, endpoint="localhost:8443", cert-path="/a b/c.pem", key-path=/k.key, ca-path=/ca.pem, role-aliases=Alias;`,
			IoTCertificate{Endpoint: "localhost:8443", CertPath: "/a b/c.pem", KeyPath: "/k.key", CAPath: "/ca.pem", RoleAlias: "Alias", ThingName: "stream", ThingNameDefaulted: true,
				ConnectionTimeout: 3 * time.Second, CompletionTimeout: 5 * time.Second}, ""},
		{"inconsistent timeouts reset", full + ",connection-timeout=(string)9,completion-timeout=(string)2", IoTCertificate{Endpoint: "xxx.credentials.iot.us-west-2.amazonaws.com",
			CertPath: "/c.pem", KeyPath: "/k.key", CAPath: "/ca.pem", RoleAlias: "Alias", ThingName: "stream", ThingNameDefaulted: true, ConnectionTimeout: 3 * time.Second, CompletionTimeout: 5 * time.Second}, ""},
		{"untyped number", full + ",connection-timeout=5", IoTCertificate{}, "connection-timeout"},
		{"typed int", full + ",completion-timeout=(int)5", IoTCertificate{}, "completion-timeout"},
		{"missing key", "iot-certificate,endpoint=e,cert-path=/c,key-path=/k,role-aliases=A", IoTCertificate{}, "ca-path"},
		{"unknown key", full + ",region=us-west-2", IoTCertificate{}, "region"},
		{"empty value", strings.Replace(full, "Alias", `""`, 1), IoTCertificate{}, "role-aliases"},
		{"scheme in endpoint", strings.Replace(full, "endpoint=xxx", "endpoint=https://xxx", 1), IoTCertificate{}, "endpoint"},
		{"not a number", full + ",connection-timeout=(string)soon", IoTCertificate{}, "connection-timeout"},
		{"duplicate", full + ",role-aliases=B", IoTCertificate{}, "role-aliases"},
		{"no name", ",endpoint=e", IoTCertificate{}, ""},
		{"unterminated quote", `iot-certificate,endpoint="e`, IoTCertificate{}, ""},
		{"key=value only", "endpoint=e", IoTCertificate{}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseIoTCertificate(c.in, "stream")
			if c.want.Endpoint != "" {
				if err != nil || got != c.want {
					t.Fatalf("got %+v, %v", got, err)
				}
				return
			}
			var fe *IoTFieldError
			if !errors.Is(err, ErrIoTCertificate) || !errors.As(err, &fe) || !strings.Contains(fe.Field, c.err) {
				t.Fatalf("err = %v, want one naming %q", err, c.err)
			}
		})
	}
}

func TestIoTFromFieldsTypes(t *testing.T) {
	fields := []Field{{"endpoint", "gchararray", "e"}, {"cert-path", "gchararray", "/c"}, {"key-path", "gchararray", "/k"},
		{"ca-path", "gchararray", "/ca"}, {"role-aliases", "gchararray", "A"}, {"connection-timeout", "guint", "5"}}
	_, err := IoTFromFields(fields, "s")
	if err == nil || !strings.Contains(err.Error(), "connection-timeout: is a guint, not a string: write connection-timeout=(string)5") {
		t.Fatalf("err = %v", err)
	}
}

// The parser never panics, and whatever it accepts has every required field.
func FuzzParseIoTCertificate(f *testing.F) {
	f.Add("iot-certificate,endpoint=xxx.credentials.iot.us-west-2.amazonaws.com,cert-path=/c.pem,key-path=/k.key,ca-path=/ca.pem,role-aliases=Alias")
	f.Add(`iot-certificate, endpoint="a\"b", cert-path=(string)/c, key-path=/k, ca-path=/ca, role-aliases=A, connection-timeout=(string)7;`)
	f.Add("a,b=(int)1,c=1.5,d=true")
	f.Add(`x,y="`)
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseIoTCertificate(s, "stream")
		if err != nil {
			if !errors.Is(err, ErrIoTCertificate) {
				t.Fatalf("error %v does not wrap ErrIoTCertificate", err)
			}
			return
		}
		if c.Endpoint == "" || c.CertPath == "" || c.KeyPath == "" || c.CAPath == "" || c.RoleAlias == "" || c.ThingName == "" ||
			c.ConnectionTimeout <= 0 || c.CompletionTimeout < c.ConnectionTimeout {
			t.Fatalf("accepted %q as %+v", s, c)
		}
	})
}
