package credentials

import (
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// isolate points every default-chain source at nothing: no shared files, no
// container or instance metadata, no web identity. Tests then enable one.
func isolate(t *testing.T) string {
	dir := t.TempDir()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_REGION", "AWS_DEFAULT_REGION"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return dir
}

// fakeAWS answers as the ECS container endpoint, the instance metadata
// service and STS, on loopback.
type fakeAWS struct {
	*httptest.Server
	hits atomic.Int32
	form atomic.Value
	ua   atomic.Value // User-Agent of the last STS call
}

func newFakeAWS(t *testing.T) *fakeAWS {
	f := &fakeAWS{}
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		switch {
		case r.URL.Path == "/ecs" && r.Header.Get("Authorization") == "ecs-token":
			fmt.Fprintf(w, `{"AccessKeyId":"ASIAECS","SecretAccessKey":"s","Token":"t","Expiration":"%s"}`, exp)
		case r.Method == "PUT" && r.URL.Path == "/latest/api/token":
			w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "21600")
			fmt.Fprint(w, "imds-token")
		case strings.HasPrefix(r.URL.Path, "/latest/meta-data/iam/security-credentials") && strings.HasSuffix(r.URL.Path, "/") && r.Header.Get("X-Aws-Ec2-Metadata-Token") == "imds-token":
			fmt.Fprint(w, "instance-role")
		case strings.HasPrefix(r.URL.Path, "/latest/meta-data/iam/security-credentials") && strings.HasSuffix(r.URL.Path, "/instance-role"):
			fmt.Fprintf(w, `{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIAIMDS","SecretAccessKey":"s","Token":"t","Expiration":"%s"}`, exp)
		case r.Method == "POST" && r.URL.Path == "/":
			b, _ := io.ReadAll(r.Body)
			form, _ := url.ParseQuery(string(b))
			f.form.Store(form)
			f.ua.Store(r.Header.Get("User-Agent"))
			op := form.Get("Action")
			if op == "AssumeRole" && !strings.Contains(r.Header.Get("Authorization"), "Credential=AKIDBASE/") {
				w.WriteHeader(403)
				fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not the base key</Message></Error></ErrorResponse>`)
				return
			}
			fmt.Fprintf(w, `<%sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><%sResult><Credentials><AccessKeyId>ASIA%s</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken><Expiration>%s</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROA1:x</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/R/x</Arn></AssumedRoleUser></%sResult></%sResponse>`,
				op, op, strings.ToUpper(op[:6]), exp, op, op)
		default:
			http.Error(w, "not here", 404)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func retrieveKey(t *testing.T, src Sources, o Options) (string, Resolved) {
	t.Helper()
	r, err := Resolve(context.Background(), src, o)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Provider.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c.AccessKeyID, r
}

func TestDefaultChain(t *testing.T) {
	f := newFakeAWS(t)
	t.Run("nothing", func(t *testing.T) {
		isolate(t)
		_, err := Resolve(context.Background(), Sources{}, Options{Region: "us-west-2"})
		if !errors.Is(err, ErrNoCredentials) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ECS container credentials", func(t *testing.T) {
		isolate(t)
		t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f.URL+"/ecs")
		t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-token")
		if k, _ := retrieveKey(t, Sources{}, Options{Region: "us-west-2", HTTPClient: f.Client()}); k != "ASIAECS" {
			t.Fatalf("%s", k)
		}
	})
	t.Run("instance metadata", func(t *testing.T) {
		isolate(t)
		t.Setenv("AWS_EC2_METADATA_DISABLED", "false")
		t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f.URL)
		if k, _ := retrieveKey(t, Sources{}, Options{Region: "us-west-2", HTTPClient: f.Client()}); k != "ASIAIMDS" {
			t.Fatalf("%s", k)
		}
	})
	t.Run("web identity", func(t *testing.T) {
		dir := isolate(t)
		token := filepath.Join(dir, "token")
		os.WriteFile(token, []byte("a-jwt"), 0o600)
		t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", token)
		t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/Web")
		t.Setenv("AWS_ENDPOINT_URL_STS", f.URL)
		if k, _ := retrieveKey(t, Sources{}, Options{Region: "us-west-2", HTTPClient: f.Client()}); k != "ASIAASSUME" {
			t.Fatalf("%s", k)
		}
		if form := f.form.Load().(url.Values); form.Get("WebIdentityToken") != "a-jwt" || form.Get("RoleArn") != "arn:aws:iam::123456789012:role/Web" {
			t.Fatalf("%v", form)
		}
	})
}

// A role ARN wraps whichever source won; the base credentials sign the
// AssumeRole call.
func TestAssumeRole(t *testing.T) {
	isolate(t)
	f := newFakeAWS(t)
	role := &AssumeRole{ARN: "arn:aws:iam::123456789012:role/Uploader", SessionName: "cam1", ExternalID: "ext-secret", Duration: 20 * time.Minute}
	product := func(st *middleware.Stack) error {
		return st.Build.Add(middleware.BuildMiddlewareFunc("product", func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
			in.Request.(*smithyhttp.Request).Header.Set("User-Agent", "cam-fleet/2")
			return next.HandleBuild(ctx, in)
		}), middleware.After)
	}
	k, r := retrieveKey(t, Sources{AccessKey: ptr("AKIDBASE"), SecretKey: ptr("s"), Role: role}, Options{Region: "us-west-2", STSEndpoint: f.URL, HTTPClient: f.Client(),
		APIOptions: []func(*middleware.Stack) error{product}})
	if ua := f.ua.Load(); ua != "cam-fleet/2" {
		t.Errorf("STS call's User-Agent %q: APIOptions were not applied", ua)
	}
	if k != "ASIAASSUME" || r.Source != "role arn:aws:iam::123456789012:role/Uploader assumed with properties" {
		t.Fatalf("%s from %s", k, r.Source)
	}
	form := f.form.Load().(url.Values)
	if form.Get("RoleSessionName") != "cam1" || form.Get("ExternalId") != "ext-secret" || form.Get("DurationSeconds") != "1200" {
		t.Fatalf("%v", form)
	}
	if strings.Contains(fmt.Sprint(role), "ext-secret") {
		t.Fatal("external id shown")
	}
	_, err := Resolve(context.Background(), Sources{AccessKey: ptr("AKIDOTHER"), SecretKey: ptr("s"), Role: role}, Options{Region: "us-west-2", STSEndpoint: f.URL, HTTPClient: f.Client()})
	if err == nil || !strings.Contains(err.Error(), "AccessDenied") || !strings.Contains(err.Error(), "role arn:aws:iam::123456789012:role/Uploader") {
		t.Fatalf("denied: %v", err)
	}
	for _, bad := range []AssumeRole{{ARN: "Uploader"}, {ARN: role.ARN, Duration: time.Minute}, {ARN: role.ARN, SessionName: "x"}} {
		if _, err := Resolve(context.Background(), Sources{AccessKey: ptr("AKIDBASE"), SecretKey: ptr("s"), Role: &bad}, Options{STSEndpoint: f.URL}); !errors.Is(err, ErrAssumeRole) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

// The default chain's credentials are cached once, by the SDK's cache:
// Invalidate on the resolved provider reaches it, so the next Retrieve
// fetches from the source again.
func TestDefaultChainInvalidate(t *testing.T) {
	f := newFakeAWS(t)
	isolate(t)
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f.URL+"/ecs")
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-token")
	_, r := retrieveKey(t, Sources{}, Options{Region: "us-west-2", HTTPClient: f.Client()})
	before := f.hits.Load()
	if _, err := r.Provider.Retrieve(context.Background()); err != nil || f.hits.Load() != before {
		t.Fatalf("a cached retrieve went to the source (err %v, %d fetches, %d before)", err, f.hits.Load(), before)
	}
	inv, ok := r.Provider.(interface{ Invalidate() })
	if !ok {
		t.Fatalf("the default chain's provider %T cannot be invalidated", r.Provider)
	}
	inv.Invalidate()
	if _, err := r.Provider.Retrieve(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.hits.Load() != before+1 {
		t.Fatalf("after Invalidate: %d fetches from the source, want %d", f.hits.Load(), before+1)
	}
}

// The default chain trusts the CAs of Options.HTTPClient: container
// credentials over HTTPS from an endpoint only those CAs verify.
func TestDefaultChainTrustsTheClientsCAs(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"AccessKeyId":"ASIATLS","SecretAccessKey":"s","Token":"t","Expiration":"%s"}`, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	}))
	t.Cleanup(srv.Close)
	isolate(t)
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", srv.URL+"/ecs")
	if k, _ := retrieveKey(t, Sources{}, Options{Region: "us-west-2", HTTPClient: srv.Client()}); k != "ASIATLS" {
		t.Fatalf("%s", k)
	}
}

// A configured source never sets the default chain up: with keys in the
// properties, the environment or a credential file, a shared config file the
// SDK could not parse is not read, and neither the container endpoint nor
// instance metadata is asked, while without them the chain is consulted.
func TestConfiguredSourcesSkipTheDefaultChain(t *testing.T) {
	f := newFakeAWS(t)
	dir := isolate(t)
	os.WriteFile(filepath.Join(dir, "config"), []byte("[profile cam\nthis is not a config file\n"), 0o600)
	t.Setenv("AWS_PROFILE", "cam")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f.URL+"/ecs")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "false")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f.URL)
	credFile := filepath.Join(dir, "kvs-credential")
	os.WriteFile(credFile, []byte("CREDENTIALS AKIDFILE SECRETFILE"), 0o600)
	o := Options{Region: "us-west-2", HTTPClient: f.Client()}
	for _, c := range []struct {
		name   string
		src    Sources
		getenv map[string]string
		want   string
	}{
		{"properties", Sources{AccessKey: ptr("AKIDPROP"), SecretKey: ptr("s")}, nil, "AKIDPROP"},
		{"environment", Sources{}, map[string]string{"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "s"}, "AKIDENV"},
		{"credential file", Sources{CredentialPath: &credFile}, nil, "AKIDFILE"},
	} {
		o := o
		o.Getenv = func(k string) string { return c.getenv[k] }
		if k, _ := retrieveKey(t, c.src, o); k != c.want {
			t.Fatalf("%s: %s", c.name, k)
		}
		if n := f.hits.Load(); n != 0 {
			t.Fatalf("%s: the default chain's endpoints were asked %d times", c.name, n)
		}
	}
	// The control: with no configured source, the same environment is
	// consulted (the broken profile is the chain's error).
	o.Getenv = func(string) string { return "" }
	if _, err := Resolve(context.Background(), Sources{}, o); !errors.Is(err, ErrNoCredentials) || !strings.Contains(err.Error(), "default chain") {
		t.Fatalf("without a configured source: %v", err)
	}
}
