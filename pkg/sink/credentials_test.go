package sink

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kvsgo/kvsgo/pkg/credentials"
)

func iotStructure(fields ...string) *Structure {
	s := &Structure{Name: "iot-certificate", Fields: map[string]TypedValue{}}
	for i := 0; i+2 < len(fields); i += 3 {
		s.Fields[fields[i]] = TypedValue{Type: fields[i+1], Value: fields[i+2]}
		s.Order = append(s.Order, fields[i])
	}
	return s
}

// The iot-certificate property is validated as the official element does,
// with errors naming the field, before any file is read; the files are
// read by Open.
func TestSettingsIoTCertificate(t *testing.T) {
	base := []string{"endpoint", "gchararray", "localhost:1", "cert-path", "gchararray", "/nonexistent/c.pem", "key-path", "gchararray", "/nonexistent/k.pem",
		"ca-path", "gchararray", "/nonexistent/ca.pem", "role-aliases", "gchararray", "A"}
	cases := []struct {
		name   string
		fields []string
		field  string
	}{
		{"missing role-aliases", base[:12], "role-aliases"},
		{"a number", append(append([]string{}, base...), "connection-timeout", "gint", "5"), "connection-timeout"},
		{"unknown key", append(append([]string{}, base...), "region", "gchararray", "x"), "region"},
		{"files are read", base, "cert-path"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := DefaultSettings()
			st.IoTCertificate = iotStructure(c.fields...)
			st.AccessKey, st.SecretKey = ptr("AKIDIGNORED"), ptr("s") // iot-certificate comes first
			cfg, err := st.Config(env(nil))
			if c.field == "cert-path" {
				// Reading the files is Open's: Config has read none.
				if err != nil {
					t.Fatalf("Config = %v: it must not read cert-path", err)
				}
				_, err = cfg.Open(context.Background())
			}
			var fe *credentials.IoTFieldError
			if !errors.Is(err, ErrSettings) || !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("err = %v, want one naming %s", err, c.field)
			}
		})
	}
}

func TestSettingsRole(t *testing.T) {
	st := DefaultSettings()
	st.AccessKey, st.SecretKey = ptr("AKIDX"), ptr("s")
	st.RoleARN = ptr("not-an-arn")
	if _, err := st.Config(env(nil)); !errors.Is(err, credentials.ErrAssumeRole) || !strings.Contains(err.Error(), "role-arn") {
		t.Fatalf("err = %v", err)
	}
	st.RoleARN, st.RoleDurationSec = ptr("arn:aws:iam::123456789012:role/R"), 60
	if _, err := st.Config(env(nil)); !errors.Is(err, credentials.ErrAssumeRole) || !strings.Contains(err.Error(), "role-duration") {
		t.Fatalf("err = %v", err)
	}
}
