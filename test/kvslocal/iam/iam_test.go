package iam

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/kvsgo/kvsgo/test/kvslocal"
	"github.com/kvsgo/kvsgo/test/testenv"
)

func TestMain(m *testing.M) {
	testenv.GuardLoopback()
	os.Exit(m.Run())
}

const (
	adminKey    = "AKIDIAMADMIN"
	adminSecret = "iam-admin-secret"
)

// env is a walkthrough with cam1 and cam2, the IoT endpoint, STS and a KVS
// endpoint that authorizes with it.
type env struct {
	dir      string
	ca       *CA
	file     *File
	devs     map[string]DeviceFiles
	iam      *Server
	iotEP    string // localhost:PORT
	stsURL   string
	kvsURL   string
	kvs      *kvslocal.Server
	serverCA *x509.CertPool
}

func setup(t *testing.T, o WalkthroughOptions, edit func(f *File, ca *CA, dir string)) *env {
	t.Helper()
	e := &env{dir: t.TempDir()}
	o.Admin = &User{Name: "admin", AccessKeyID: adminKey, SecretAccessKey: adminSecret, Policies: []Policy{AdminPolicy()}}
	var err error
	if e.ca, e.file, e.devs, err = Walkthrough(e.dir, []string{"cam1", "cam2"}, o); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(e.file, e.ca, e.dir)
	}
	path := filepath.Join(e.dir, "iam.json")
	if err := e.file.Save(path); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if e.iam, err = New(f, Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.iam.Close() })
	leaf, err := e.ca.Issue(IssueOptions{CommonName: "localhost", Hosts: []string{"localhost", "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := leaf.TLSCertificate()
	if e.iotEP, err = e.iam.StartIoT("127.0.0.1:0", "localhost", cert); err != nil {
		t.Fatal(err)
	}
	if e.stsURL, err = e.iam.StartSTS("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	e.kvs, err = kvslocal.New(kvslocal.Config{Dir: t.TempDir(), Authorizer: e.iam})
	if err != nil {
		t.Fatal(err)
	}
	if e.kvsURL, err = e.kvs.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.kvs.Close() })
	e.serverCA = x509.NewCertPool()
	e.serverCA.AddCert(e.ca.Cert)
	return e
}

// iotGet asks the credentials provider with a device's files, as producer-c does.
func (e *env) iotGet(t *testing.T, dev DeviceFiles, serverName, alias, thing string) (int, map[string]any, error) {
	t.Helper()
	var certs []tls.Certificate
	if dev.CertPath != "" {
		c, err := tls.LoadX509KeyPair(dev.CertPath, dev.KeyPath)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{Certificates: certs, RootCAs: e.serverCA, ServerName: serverName, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			_, port, _ := net.SplitHostPort(e.iotEP)
			return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+port)
		},
	}}
	req, _ := http.NewRequest("GET", "https://"+e.iotEP+"/role-aliases/"+alias+"/credentials", nil)
	if thing != "" {
		req.Header.Set("x-amzn-iot-thingname", thing)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &m)
	return resp.StatusCode, m, nil
}

// The credentials provider's answers follow AWS's table, in AWS's order of
// checks (local-aws.md §3.2).
func TestIoTErrorTable(t *testing.T) {
	var unregistered, inactive, wildcard, expired DeviceFiles
	e := setup(t, WalkthroughOptions{}, func(f *File, ca *CA, dir string) {
		var err error
		if unregistered, err = ca.WriteDevice(dir, "unregistered", IssueOptions{}); err != nil {
			t.Fatal(err)
		}
		if inactive, err = ca.WriteDevice(dir, "inactive", IssueOptions{}); err != nil {
			t.Fatal(err)
		}
		if wildcard, err = ca.WriteDevice(dir, "wildcard", IssueOptions{}); err != nil {
			t.Fatal(err)
		}
		if expired, err = ca.WriteDevice(dir, "expired", IssueOptions{NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
		f.Certificates = append(f.Certificates, Certificate{PEMFile: expired.CertPath, Policies: []string{GuideIoTPolicyName}})
		f.Things = append(f.Things, Thing{Name: "old", Principals: []string{expired.CertPath}})
		f.IoTPolicies["any"] = Policy{Statement: []Statement{{Effect: "Allow", Action: strings_{"iot:*"}, Resource: strings_{"*"}}}}
		f.Certificates = append(f.Certificates,
			Certificate{PEMFile: inactive.CertPath, Status: "INACTIVE", Policies: []string{GuideIoTPolicyName}},
			Certificate{PEMFile: wildcard.CertPath, Policies: []string{"any"}})
		f.Things = append(f.Things, Thing{Name: "wild", Principals: []string{wildcard.CertPath}})
		f.RoleAliases = append(f.RoleAliases, RoleAlias{Name: "NoRole", RoleARN: "arn:aws:iam::123456789012:role/Missing"},
			RoleAlias{Name: "TooLong", RoleARN: "arn:aws:iam::123456789012:role/" + GuideRoleName, CredentialDurationSeconds: 7200})
	})
	cam1 := e.devs["cam1"]
	status, body, err := e.iotGet(t, cam1, "localhost", GuideRoleAlias, "cam1")
	if err != nil || status != 200 {
		t.Fatalf("good request: %d %v %v", status, body, err)
	}
	creds, _ := body["credentials"].(map[string]any)
	exp, _ := creds["expiration"].(string)
	if !strings.HasPrefix(creds["accessKeyId"].(string), "ASIA") || creds["secretAccessKey"] == "" || creds["sessionToken"] == "" || len(exp) != 20 {
		t.Fatalf("credentials: %v", body)
	}
	cases := []struct {
		name        string
		dev         DeviceFiles
		alias, thin string
		status      int
		message     string
	}{
		{"no thing header", cam1, GuideRoleAlias, "", 200, ""},
		{"another thing", cam1, GuideRoleAlias, "cam2", 403, "Invalid thing name passed"},
		{"unknown thing", cam1, GuideRoleAlias, "nope", 403, "Invalid thing name passed"},
		{"alias not in the policy", cam1, "Other", "cam1", 403, "Access Denied"},
		{"unknown alias", wildcard, "Other", "wild", 404, "Role alias does not exist"},
		{"alias without role", wildcard, "NoRole", "wild", 400, "Unable to assume the role, or the role to assume does not exist"},
		{"duration above the role's", wildcard, "TooLong", "wild", 400, "The requested CredentialDurationSeconds exceeds the MaxSessionDuration set for the role"},
	}
	for _, c := range cases {
		status, body, err := e.iotGet(t, c.dev, "localhost", c.alias, c.thin)
		if err != nil || status != c.status || (c.message != "" && body["message"] != c.message) {
			t.Errorf("%s: %d %v %v; want %d %q", c.name, status, body, err, c.status, c.message)
		}
	}
	for name, dev := range map[string]DeviceFiles{"no client certificate": {}, "unregistered": unregistered, "inactive": inactive, "expired": expired} {
		if _, _, err := e.iotGet(t, dev, "localhost", GuideRoleAlias, ""); err == nil {
			t.Errorf("%s: the handshake succeeded", name)
		}
	}
	if _, _, err := e.iotGet(t, cam1, "other.example", GuideRoleAlias, "cam1"); err == nil {
		t.Errorf("a server name other than the endpoint's was accepted")
	}
}

func sdkError(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func kvsClient(url string, c aws.Credentials) *kinesisvideo.Client {
	return kinesisvideo.New(kinesisvideo.Options{Region: DefaultRegion, BaseEndpoint: aws.String(url),
		Credentials: awscreds.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)})
}

// Credentials from the IoT endpoint work on the KVS endpoint with the role's
// policy: cam1 may use stream cam1, not cam2, and not other operations.
func TestIssuedCredentialsOnKVS(t *testing.T) {
	e := setup(t, WalkthroughOptions{}, nil)
	ctx := context.Background()
	admin := kvsClient(e.kvsURL, aws.Credentials{AccessKeyID: adminKey, SecretAccessKey: adminSecret})
	for _, s := range []string{"cam1", "cam2"} {
		if _, err := admin.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String(s), DataRetentionInHours: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
	}
	_, body, err := e.iotGet(t, e.devs["cam1"], "localhost", GuideRoleAlias, "cam1")
	if err != nil {
		t.Fatal(err)
	}
	m := body["credentials"].(map[string]any)
	cam1 := kvsClient(e.kvsURL, aws.Credentials{AccessKeyID: m["accessKeyId"].(string), SecretAccessKey: m["secretAccessKey"].(string), SessionToken: m["sessionToken"].(string)})
	if _, err := cam1.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("cam1")}); err != nil {
		t.Fatalf("own stream: %v", err)
	}
	if _, err := cam1.GetDataEndpoint(ctx, &kinesisvideo.GetDataEndpointInput{StreamName: aws.String("cam1"), APIName: "PUT_MEDIA"}); err != nil {
		t.Fatalf("own stream: %v", err)
	}
	_, err = cam1.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("cam2")})
	if sdkError(err) != "AccessDeniedException" || !strings.Contains(err.Error(), "assumed-role/"+GuideRoleName+"/"+e.devs["cam1"].ID+" is not authorized to perform: kinesisvideo:DescribeStream on resource: arn:aws:kinesisvideo:us-west-2:123456789012:stream/cam2/") {
		t.Fatalf("other stream: %v", err)
	}
	if _, err := cam1.DeleteStream(ctx, &kinesisvideo.DeleteStreamInput{StreamARN: aws.String("arn:aws:kinesisvideo:us-west-2:123456789012:stream/cam1/1")}); sdkError(err) != "AccessDeniedException" {
		t.Fatalf("delete: %v", err)
	}
	if _, err := cam1.ListStreams(ctx, &kinesisvideo.ListStreamsInput{}); sdkError(err) != "AccessDeniedException" {
		t.Fatalf("list: %v", err)
	}
	bad := kvsClient(e.kvsURL, aws.Credentials{AccessKeyID: m["accessKeyId"].(string), SecretAccessKey: m["secretAccessKey"].(string), SessionToken: "wrong"})
	if _, err := bad.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("cam1")}); sdkError(err) != "UnrecognizedClientException" {
		t.Fatalf("wrong token: %v", err)
	}
}

// Issued credentials expire on the KVS endpoint.
func TestIssuedCredentialsExpire(t *testing.T) {
	e := setup(t, WalkthroughOptions{CredentialDuration: "2s"}, nil)
	_, body, err := e.iotGet(t, e.devs["cam1"], "localhost", GuideRoleAlias, "cam1")
	if err != nil {
		t.Fatal(err)
	}
	m := body["credentials"].(map[string]any)
	exp, _ := time.Parse(time.RFC3339, m["expiration"].(string))
	if d := time.Until(exp); d > 3*time.Second || d < -time.Second {
		t.Fatalf("expiration %v is not ~2 s away", exp)
	}
	c, ok := e.iam.Credential(m["accessKeyId"].(string))
	if !ok || !c.Expires.Equal(exp) {
		t.Fatalf("%v %v", ok, c.Expires)
	}
	e.iam.now = func() time.Time { return exp.Add(time.Second) }
	kvs, err := kvslocal.New(kvslocal.Config{Dir: t.TempDir(), Authorizer: e.iam, Now: func() time.Time { return exp.Add(time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	url, _ := kvs.Start("127.0.0.1:0")
	defer kvs.Close()
	cl := kvsClient(url, aws.Credentials{AccessKeyID: m["accessKeyId"].(string), SecretAccessKey: m["secretAccessKey"].(string), SessionToken: m["sessionToken"].(string)})
	_, err = cl.DescribeStream(context.Background(), &kinesisvideo.DescribeStreamInput{StreamName: aws.String("cam1")})
	if sdkError(err) != "ExpiredTokenException" {
		t.Fatalf("expired: %v", err)
	}
}

func stsClient(url string, p aws.CredentialsProvider) *sts.Client {
	return sts.New(sts.Options{Region: DefaultRegion, BaseEndpoint: aws.String(url), Credentials: p})
}

// STS AssumeRole and GetCallerIdentity through aws-sdk-go-v2, with trust
// policies and an external id condition.
func TestSTS(t *testing.T) {
	e := setup(t, WalkthroughOptions{}, func(f *File, _ *CA, _ string) {
		f.Users = append(f.Users, User{Name: "nobody", AccessKeyID: "AKIDNOBODY", SecretAccessKey: "nobody-secret"})
		f.Roles = append(f.Roles, Role{Name: "Uploader", MaxSessionDuration: 7200,
			TrustPolicy: Policy{Statement: []Statement{{Effect: "Allow", Action: strings_{"sts:AssumeRole"},
				Principal: &Principal{AWS: []string{"arn:aws:iam::123456789012:user/admin"}},
				Condition: map[string]map[string]strings_{"StringEquals": {"sts:ExternalId": {"ext-1"}}}}}},
			Policies: []Policy{{Statement: []Statement{{Effect: "Allow", Action: strings_{"kinesisvideo:*"}, Resource: strings_{"arn:aws:kinesisvideo:*:*:stream/up-*"}}}}},
		})
	})
	ctx := context.Background()
	admin := stsClient(e.stsURL, awscreds.NewStaticCredentialsProvider(adminKey, adminSecret, ""))
	id, err := admin.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Arn) != "arn:aws:iam::123456789012:user/admin" || aws.ToString(id.Account) != "123456789012" || !strings.HasPrefix(aws.ToString(id.UserId), "AIDA") {
		t.Fatalf("GetCallerIdentity: %+v %v", id, err)
	}
	roleARN := "arn:aws:iam::123456789012:role/Uploader"
	out, err := admin.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s1"), ExternalId: aws.String("ext-1"), DurationSeconds: aws.Int32(900)})
	if err != nil {
		t.Fatal(err)
	}
	c := out.Credentials
	if !strings.HasPrefix(aws.ToString(c.AccessKeyId), "ASIA") || time.Until(aws.ToTime(c.Expiration)) > 901*time.Second || aws.ToString(out.AssumedRoleUser.Arn) != "arn:aws:sts::123456789012:assumed-role/Uploader/s1" {
		t.Fatalf("AssumeRole: %+v %+v", c, out.AssumedRoleUser)
	}
	role := awscreds.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
	id, err = stsClient(e.stsURL, role).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Arn) != "arn:aws:sts::123456789012:assumed-role/Uploader/s1" {
		t.Fatalf("GetCallerIdentity as the role: %+v %v", id, err)
	}
	kc := kvsClient(e.kvsURL, aws.Credentials{AccessKeyID: aws.ToString(c.AccessKeyId), SecretAccessKey: aws.ToString(c.SecretAccessKey), SessionToken: aws.ToString(c.SessionToken)})
	if _, err := kc.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("up-1")}); err != nil {
		t.Fatalf("role's own resource: %v", err)
	}
	if _, err := kc.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("other")}); sdkError(err) != "AccessDeniedException" {
		t.Fatalf("outside the role's policy: %v", err)
	}
	for name, in := range map[string]*sts.AssumeRoleInput{
		"wrong external id": {RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s1"), ExternalId: aws.String("nope")},
		"no external id":    {RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s1")},
		"unknown role":      {RoleArn: aws.String("arn:aws:iam::123456789012:role/None"), RoleSessionName: aws.String("s1")},
		"IoT-only role":     {RoleArn: aws.String("arn:aws:iam::123456789012:role/" + GuideRoleName), RoleSessionName: aws.String("s1")},
	} {
		if _, err := admin.AssumeRole(ctx, in); sdkError(err) != "AccessDenied" {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := admin.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s1"), ExternalId: aws.String("ext-1"), DurationSeconds: aws.Int32(9000)}); sdkError(err) != "ValidationError" {
		t.Errorf("long duration: %v", err)
	}
	nobody := stsClient(e.stsURL, awscreds.NewStaticCredentialsProvider("AKIDNOBODY", "nobody-secret", ""))
	if _, err := nobody.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s1"), ExternalId: aws.String("ext-1")}); sdkError(err) != "AccessDenied" {
		t.Errorf("untrusted user: %v", err)
	}
	wrong := stsClient(e.stsURL, awscreds.NewStaticCredentialsProvider(adminKey, "wrong", ""))
	if _, err := wrong.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); sdkError(err) != "SignatureDoesNotMatch" {
		t.Errorf("wrong secret: %v", err)
	}
	unknown := stsClient(e.stsURL, awscreds.NewStaticCredentialsProvider("AKIDUNKNOWN", "x", ""))
	if _, err := unknown.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); sdkError(err) != "InvalidClientTokenId" {
		t.Errorf("unknown key: %v", err)
	}
}

// The guide's curl command and awscli with the credentials it returns.
func TestGuideCurlAndAWSCLI(t *testing.T) {
	curl := testenv.Tool(t, "curl", "curl")
	awscli := testenv.Tool(t, "aws", "awscli")
	e := setup(t, WalkthroughOptions{}, nil)
	admin := kvsClient(e.kvsURL, aws.Credentials{AccessKeyID: adminKey, SecretAccessKey: adminSecret})
	if _, err := admin.CreateStream(context.Background(), &kinesisvideo.CreateStreamInput{StreamName: aws.String("cam1"), DataRetentionInHours: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	dev := e.devs["cam1"]
	_, port, _ := net.SplitHostPort(e.iotEP)
	out, err := exec.Command(curl, "-sS", "--resolve", "localhost:"+port+":127.0.0.1", "-H", "x-amzn-iot-thingname:cam1",
		"--cert", dev.CertPath, "--key", dev.KeyPath, "--cacert", dev.CAPath,
		"https://"+e.iotEP+"/role-aliases/"+GuideRoleAlias+"/credentials").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	var r struct {
		Credentials struct{ AccessKeyID, SecretAccessKey, SessionToken, Expiration string } `json:"credentials"`
	}
	if err := json.Unmarshal(out, &r); err != nil || !strings.HasPrefix(r.Credentials.AccessKeyID, "ASIA") {
		t.Fatalf("curl answer: %v %.200s", err, out)
	}
	home := t.TempDir()
	cli := func(stream string) (string, error) {
		cmd := exec.Command(awscli, "--endpoint-url", e.kvsURL, "--region", DefaultRegion, "--output", "json", "kinesisvideo", "describe-stream", "--stream-name", stream)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + home, "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=",
			"AWS_CONFIG_FILE=" + filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"),
			"AWS_ACCESS_KEY_ID=" + r.Credentials.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + r.Credentials.SecretAccessKey, "AWS_SESSION_TOKEN=" + r.Credentials.SessionToken}
		var b bytes.Buffer
		cmd.Stdout, cmd.Stderr = &b, &b
		err := cmd.Run()
		return b.String(), err
	}
	if out, err := cli("cam1"); err != nil || !strings.Contains(out, `"StreamName": "cam1"`) {
		t.Fatalf("describe-stream cam1: %v\n%s", err, out)
	}
	if out, err := cli("cam2"); err == nil || !strings.Contains(out, "AccessDeniedException") {
		t.Fatalf("describe-stream cam2: %v\n%s", err, out)
	}
}
