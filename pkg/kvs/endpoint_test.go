package kvs

import (
	"errors"
	"strings"
	"testing"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestResolveEndpoint(t *testing.T) {
	tests := []struct {
		name       string
		explicit   string
		region     string
		env        map[string]string
		want       string
		wantSource string
		wantErr    []string // substrings of the error
	}{
		{name: "default region", region: "us-west-2", want: "https://kinesisvideo.us-west-2.amazonaws.com", wantSource: "region"},
		{name: "other region", region: "eu-central-1", want: "https://kinesisvideo.eu-central-1.amazonaws.com", wantSource: "region"},
		{name: "china", region: "cn-north-1", want: "https://kinesisvideo.cn-north-1.amazonaws.com.cn", wantSource: "region"},
		{name: "govcloud", region: "us-gov-west-1", want: "https://kinesisvideo-fips.us-gov-west-1.amazonaws.com", wantSource: "region"},
		{name: "iso", region: "us-iso-east-1", want: "https://kinesisvideo-fips.us-iso-east-1.c2s.ic.gov", wantSource: "region"},
		{name: "isob", region: "us-isob-east-1", want: "https://kinesisvideo-fips.us-isob-east-1.sc2s.sgov.gov", wantSource: "region"},
		{name: "bad region without override", region: "nowhere", wantErr: []string{`"nowhere"`}},

		{name: "property wins over everything", explicit: "https://a.example", region: "us-west-2",
			env:  map[string]string{"AWS_ENDPOINT_URL_KINESIS_VIDEO": "https://b.example", "CONTROL_PLANE_URI": "https://c.example", "AWS_ENDPOINT_URL": "https://d.example"},
			want: "https://a.example", wantSource: "control-plane-uri"},
		{name: "service env second", region: "us-west-2",
			env:  map[string]string{"AWS_ENDPOINT_URL_KINESIS_VIDEO": "https://b.example", "CONTROL_PLANE_URI": "https://c.example", "AWS_ENDPOINT_URL": "https://d.example"},
			want: "https://b.example", wantSource: "AWS_ENDPOINT_URL_KINESIS_VIDEO"},
		{name: "kvssink env third", region: "us-west-2",
			env:  map[string]string{"CONTROL_PLANE_URI": "https://c.example:8443/", "AWS_ENDPOINT_URL": "https://d.example"},
			want: "https://c.example:8443", wantSource: "CONTROL_PLANE_URI"},
		{name: "global env last", region: "us-west-2", env: map[string]string{"AWS_ENDPOINT_URL": "https://d.example/"},
			want: "https://d.example", wantSource: "AWS_ENDPOINT_URL"},
		{name: "empty values skipped", explicit: "", region: "us-west-2", env: map[string]string{"AWS_ENDPOINT_URL_KINESIS_VIDEO": "  ", "CONTROL_PLANE_URI": "http://127.0.0.1:39080"},
			want: "http://127.0.0.1:39080", wantSource: "CONTROL_PLANE_URI"},

		{name: "http loopback v4", explicit: "http://127.0.0.1:8080/", want: "http://127.0.0.1:8080", wantSource: "control-plane-uri"},
		{name: "http loopback 127/8", explicit: "http://127.1.2.3:8080", want: "http://127.1.2.3:8080", wantSource: "control-plane-uri"},
		{name: "http loopback v6", explicit: "http://[::1]:8080", want: "http://[::1]:8080", wantSource: "control-plane-uri"},
		{name: "http localhost", explicit: "http://localhost:8080", want: "http://localhost:8080", wantSource: "control-plane-uri"},
		{name: "http LOCALHOST", explicit: "http://LOCALHOST", want: "http://LOCALHOST", wantSource: "control-plane-uri"},
		{name: "path prefix kept", explicit: "https://proxy.example/kvs/", want: "https://proxy.example/kvs", wantSource: "control-plane-uri"},

		{name: "http remote from property", explicit: "http://kvs.example.com", wantSource: "control-plane-uri",
			wantErr: []string{"control-plane-uri", `"http://kvs.example.com"`, "loopback"}},
		{name: "http remote from env", region: "us-west-2", env: map[string]string{"CONTROL_PLANE_URI": "http://10.0.0.1:80"}, wantSource: "CONTROL_PLANE_URI",
			wantErr: []string{"CONTROL_PLANE_URI", `"http://10.0.0.1:80"`, "loopback"}},
		{name: "http 0.0.0.0 is not loopback", explicit: "http://0.0.0.0:80", wantSource: "control-plane-uri", wantErr: []string{"loopback"}},
		{name: "http look-alike host", explicit: "http://127.0.0.1.example.com", wantSource: "control-plane-uri", wantErr: []string{"loopback"}},
		{name: "no scheme", explicit: "kvs.example.com", wantSource: "control-plane-uri", wantErr: []string{"control-plane-uri", "kvs.example.com", "http"}},
		{name: "host:port without scheme", explicit: "127.0.0.1:8080", wantSource: "control-plane-uri", wantErr: []string{"control-plane-uri", "127.0.0.1:8080"}},
		{name: "ftp", env: map[string]string{"AWS_ENDPOINT_URL": "ftp://x.example"}, region: "us-west-2", wantSource: "AWS_ENDPOINT_URL", wantErr: []string{"AWS_ENDPOINT_URL", "ftp://x.example"}},
		{name: "no host", explicit: "https://", wantSource: "control-plane-uri", wantErr: []string{"no host"}},
		{name: "query", explicit: "https://x.example/?a=b", wantSource: "control-plane-uri", wantErr: []string{"query"}},
		{name: "bad port", explicit: "https://x.example:99999", wantSource: "control-plane-uri", wantErr: []string{"port"}},
		{name: "garbage", explicit: "https://x example", wantSource: "control-plane-uri", wantErr: []string{"control-plane-uri", "not a valid URL"}},
		{name: "user info rejected and redacted", explicit: "https://AKID:hunter2@x.example", wantSource: "control-plane-uri", wantErr: []string{"user info"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, src, err := ResolveEndpoint(tc.explicit, tc.region, envMap(tc.env))
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("got %q from %s, want an error", got, src)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error %q leaks the password", err)
				}
				if tc.wantSource != "" && src != tc.wantSource {
					t.Errorf("source %q, want %q", src, tc.wantSource)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || src != tc.wantSource {
				t.Errorf("got %q from %q, want %q from %q", got, src, tc.want, tc.wantSource)
			}
		})
	}
}

func TestInsecureEndpointSentinel(t *testing.T) {
	_, _, err := ResolveEndpoint("http://example.com", "us-west-2", envMap(nil))
	if !errors.Is(err, ErrInsecureEndpoint) {
		t.Fatalf("%v does not wrap ErrInsecureEndpoint", err)
	}
}

func TestResolveRegion(t *testing.T) {
	tests := []struct {
		name        string
		explicit    string
		explicitSet bool
		env         map[string]string
		want        string
		wantErr     []string
	}{
		{name: "default", want: DefaultRegion},
		{name: "explicit", explicit: "eu-west-1", explicitSet: true, env: map[string]string{"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-2"}, want: "eu-west-1"},
		{name: "explicit value ignored when not set", explicit: "eu-west-1", env: map[string]string{"AWS_REGION": "us-east-1"}, want: "us-east-1"},
		{name: "AWS_REGION before AWS_DEFAULT_REGION", env: map[string]string{"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-2"}, want: "us-east-1"},
		{name: "AWS_DEFAULT_REGION", env: map[string]string{"AWS_DEFAULT_REGION": "ap-southeast-2"}, want: "ap-southeast-2"},
		{name: "gov", env: map[string]string{"AWS_REGION": "us-gov-west-1"}, want: "us-gov-west-1"},
		{name: "isob", explicit: "us-isob-east-1", explicitSet: true, want: "us-isob-east-1"},
		{name: "explicit invalid", explicit: "US-WEST-2", explicitSet: true, wantErr: []string{"aws-region", `"US-WEST-2"`}},
		{name: "explicit empty", explicit: "", explicitSet: true, wantErr: []string{"aws-region", `""`}},
		{name: "env invalid", env: map[string]string{"AWS_REGION": "uswest2"}, wantErr: []string{"AWS_REGION", `"uswest2"`}},
		{name: "default env invalid", env: map[string]string{"AWS_DEFAULT_REGION": "us-west"}, wantErr: []string{"AWS_DEFAULT_REGION"}},
		{name: "injection", explicit: "us-west-2.evil.com/x", explicitSet: true, wantErr: []string{"aws-region"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveRegion(tc.explicit, tc.explicitSet, envMap(tc.env))
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestValidateStreamName(t *testing.T) {
	for _, ok := range []string{"a", "my-stream", "A_b.c-9", strings.Repeat("x", 256)} {
		if err := ValidateStreamName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "with space", "slash/name", "ü", strings.Repeat("x", 257), "a\n"} {
		err := ValidateStreamName(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), StreamNamePattern.String()) {
			t.Errorf("error %q does not name the pattern", err)
		}
		if len(bad) < 10 && !strings.Contains(err.Error(), `"`) {
			t.Errorf("error %q does not quote the name", err)
		}
	}
}

func TestIsLoopbackHost(t *testing.T) {
	for h, want := range map[string]bool{
		"127.0.0.1": true, "127.255.255.254": true, "::1": true, "[::1]": true, "localhost": true,
		"0.0.0.0": false, "::": false, "10.0.0.1": false, "localhost.example": false, "": false, "example.com": false,
	} {
		if got := IsLoopbackHost(h); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", h, got, want)
		}
	}
}
