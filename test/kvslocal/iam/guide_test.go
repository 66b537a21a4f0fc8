package iam

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/test/kvslocal"
	"github.com/kvsgo/kvsgo/test/testenv"
)

// world is the endpoint as cmd/kvslocal runs it without a configuration:
// KVS, KMS, IoT, IAM and STS at one URL, starting empty, and the IoT
// credentials provider; the admin key is the endpoint's own.
type world struct {
	iam    *Server
	kvs    *kvslocal.Server
	url    string // the endpoint
	iotEP  string // the credentials provider, localhost:PORT
	caPEM  []byte // its CA, also served at /AmazonRootCA1.pem
	audit  string // the audit log
	dir    string // a scratch directory for the CLI's files
	awsDir string // HOME of the CLI
}

func startWorld(t *testing.T) *world {
	t.Helper()
	w := &world{dir: t.TempDir(), awsDir: t.TempDir()}
	var err error
	if w.iam, err = New(&File{}, Options{OwnUserName: "admin"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.iam.Close() })
	ca, err := NewCA("test IoT credentials provider CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(IssueOptions{CommonName: "localhost", Hosts: []string{"localhost", "127.0.0.1", "::1"}})
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := leaf.TLSCertificate()
	if w.iotEP, err = w.iam.StartIoT("127.0.0.1:0", "localhost", cert); err != nil {
		t.Fatal(err)
	}
	w.caPEM = ca.CertPEM
	w.audit = filepath.Join(t.TempDir(), "audit.jsonl")
	w.kvs, err = kvslocal.New(kvslocal.Config{Dir: t.TempDir(), Authorizer: w.iam, Services: w.iam.Services(), UserName: "admin",
		PublicFiles: map[string][]byte{"/AmazonRootCA1.pem": ca.CertPEM}, AuditLog: w.audit,
		Credentials: []kvslocal.Credential{{AccessKeyID: adminKey, SecretAccessKey: adminSecret}}})
	if err != nil {
		t.Fatal(err)
	}
	if w.url, err = w.kvs.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.kvs.Close() })
	w.iam.SetAudit(w.kvs.Audit)
	return w
}

// cliResult is one aws command's outcome.
type cliResult struct {
	out  string
	err  error
	json map[string]any
}

// awsCLI runs Debian's awscli v2 against url with the given keys, in dir.
func awsCLI(t *testing.T, home, dir, url string, env []string, args ...string) cliResult {
	t.Helper()
	cli := testenv.Tool(t, "/usr/bin/aws", "awscli")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, append([]string{"--endpoint-url", url, "--region", DefaultRegion}, args...)...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + home, "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=",
		"AWS_CONFIG_FILE=" + filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials")}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("aws %s timed out:\n%s", strings.Join(args, " "), out.String())
	}
	r := cliResult{out: out.String(), err: err}
	json.Unmarshal(out.Bytes(), &r.json)
	return r
}

func adminEnv() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + adminKey, "AWS_SECRET_ACCESS_KEY=" + adminSecret}
}

func (w *world) aws(t *testing.T, args ...string) cliResult {
	t.Helper()
	return awsCLI(t, w.awsDir, w.dir, w.url, adminEnv(), args...)
}

func (w *world) must(t *testing.T, args ...string) map[string]any {
	t.Helper()
	r := w.aws(t, args...)
	if r.err != nil {
		t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), r.err, r.out)
	}
	return r.json
}

// The guide's documents, as it writes them (with the role alias ARN that
// create-role-alias returned).
const (
	guideTrustPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"credentials.iot.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	guideRolePolicy  = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kinesisvideo:DescribeStream","kinesisvideo:PutMedia","kinesisvideo:TagStream","kinesisvideo:GetDataEndpoint"],"Resource":"arn:aws:kinesisvideo:*:*:stream/${credentials-iot:ThingName}/*"}]}`
)

func guideIoTPolicy(aliasARN string) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:Connect"],"Resource":"` + aliasARN +
		`"},{"Effect":"Allow","Action":["iot:AssumeRoleWithCertificate"],"Resource":"` + aliasARN + `"}]}`
}

func writeFile(t *testing.T, dir, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// guideSteps are the guide's control-plane commands, in order; arn(name)
// gives an ARN an earlier step returned. Each is run against moto and
// against the endpoint.
func guideSteps(dir string, out map[string]map[string]any) []struct {
	name string
	args func() []string
} {
	str := func(step, key string) string { s, _ := out[step][key].(string); return s }
	return []struct {
		name string
		args func() []string
	}{
		{"create-thing-type", func() []string {
			return []string{"iot", "create-thing-type", "--thing-type-name", "kvs_example_camera"}
		}},
		{"create-thing", func() []string {
			return []string{"iot", "create-thing", "--thing-name", "kvs_example_camera_stream", "--thing-type-name", "kvs_example_camera"}
		}},
		{"create-role", func() []string {
			return []string{"iam", "create-role", "--role-name", "KVSCameraCertificateBasedIAMRole", "--assume-role-policy-document", "file://iam-policy-document.json"}
		}},
		{"put-role-policy", func() []string {
			return []string{"iam", "put-role-policy", "--role-name", "KVSCameraCertificateBasedIAMRole", "--policy-name", "KVSCameraIAMPolicy", "--policy-document", "file://iam-permission-document.json"}
		}},
		{"create-role-alias", func() []string {
			role, _ := out["create-role"]["Role"].(map[string]any)
			return []string{"iot", "create-role-alias", "--role-alias", "KvsCameraIoTRoleAlias", "--role-arn", role["Arn"].(string), "--credential-duration-seconds", "3600"}
		}},
		{"create-policy", func() []string {
			os.WriteFile(filepath.Join(dir, "iot-policy-document.json"), []byte(guideIoTPolicy(str("create-role-alias", "roleAliasArn"))), 0o644)
			return []string{"iot", "create-policy", "--policy-name", "KvsCameraIoTPolicy", "--policy-document", "file://iot-policy-document.json"}
		}},
		{"create-keys-and-certificate", func() []string {
			return []string{"iot", "create-keys-and-certificate", "--set-as-active", "--certificate-pem-outfile", "certificate.pem",
				"--public-key-outfile", "public.pem.key", "--private-key-outfile", "private.pem.key"}
		}},
		{"attach-policy", func() []string {
			return []string{"iot", "attach-policy", "--policy-name", "KvsCameraIoTPolicy", "--target", str("create-keys-and-certificate", "certificateArn")}
		}},
		{"attach-thing-principal", func() []string {
			return []string{"iot", "attach-thing-principal", "--thing-name", "kvs_example_camera_stream", "--principal", str("create-keys-and-certificate", "certificateArn")}
		}},
		{"describe-endpoint", func() []string {
			return []string{"iot", "describe-endpoint", "--endpoint-type", "iot:CredentialProvider"}
		}},
		{"describe-thing-type", func() []string {
			return []string{"iot", "describe-thing-type", "--thing-type-name", "kvs_example_camera"}
		}},
		{"describe-thing", func() []string { return []string{"iot", "describe-thing", "--thing-name", "kvs_example_camera_stream"} }},
		{"list-things", func() []string { return []string{"iot", "list-things"} }},
		{"list-thing-types", func() []string { return []string{"iot", "list-thing-types"} }},
		{"get-role", func() []string { return []string{"iam", "get-role", "--role-name", "KVSCameraCertificateBasedIAMRole"} }},
		{"get-role-policy", func() []string {
			return []string{"iam", "get-role-policy", "--role-name", "KVSCameraCertificateBasedIAMRole", "--policy-name", "KVSCameraIAMPolicy"}
		}},
		{"list-role-policies", func() []string {
			return []string{"iam", "list-role-policies", "--role-name", "KVSCameraCertificateBasedIAMRole"}
		}},
		{"describe-role-alias", func() []string {
			return []string{"iot", "describe-role-alias", "--role-alias", "KvsCameraIoTRoleAlias"}
		}},
		{"list-role-aliases", func() []string { return []string{"iot", "list-role-aliases"} }},
		{"get-policy", func() []string { return []string{"iot", "get-policy", "--policy-name", "KvsCameraIoTPolicy"} }},
		{"list-policies", func() []string { return []string{"iot", "list-policies"} }},
		{"describe-certificate", func() []string {
			return []string{"iot", "describe-certificate", "--certificate-id", str("create-keys-and-certificate", "certificateId")}
		}},
		{"list-certificates", func() []string { return []string{"iot", "list-certificates"} }},
		{"list-attached-policies", func() []string {
			return []string{"iot", "list-attached-policies", "--target", str("create-keys-and-certificate", "certificateArn")}
		}},
		{"list-thing-principals", func() []string {
			return []string{"iot", "list-thing-principals", "--thing-name", "kvs_example_camera_stream"}
		}},
		{"list-principal-things", func() []string {
			return []string{"iot", "list-principal-things", "--principal", str("create-keys-and-certificate", "certificateArn")}
		}},
		{"create-thing-type again", func() []string {
			return []string{"iot", "create-thing-type", "--thing-type-name", "kvs_example_camera"}
		}},
		{"create-role again", func() []string {
			return []string{"iam", "create-role", "--role-name", "KVSCameraCertificateBasedIAMRole", "--assume-role-policy-document", "file://iam-policy-document.json"}
		}},
		{"create-role-alias again", func() []string {
			role, _ := out["create-role"]["Role"].(map[string]any)
			return []string{"iot", "create-role-alias", "--role-alias", "KvsCameraIoTRoleAlias", "--role-arn", role["Arn"].(string)}
		}},
		{"create-policy again", func() []string {
			return []string{"iot", "create-policy", "--policy-name", "KvsCameraIoTPolicy", "--policy-document", "file://iot-policy-document.json"}
		}},
		{"describe-thing missing", func() []string { return []string{"iot", "describe-thing", "--thing-name", "nope"} }},
		{"get-role missing", func() []string { return []string{"iam", "get-role", "--role-name", "nope"} }},
	}
}

// shape is the set of key paths of a JSON value (a.b[].c), without values.
func shape(v any, prefix string, out map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			p := prefix + "." + k
			out[p] = true
			shape(x, p, out)
		}
	case []any:
		for _, x := range v {
			shape(x, prefix+"[]", out)
		}
	}
}

func shapeOf(v map[string]any) []string {
	m := map[string]bool{}
	shape(v, "", m)
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// errorCode is what the CLI printed as the error code.
func errorCode(out string) string {
	_, rest, ok := strings.Cut(out, "An error occurred (")
	if !ok {
		return ""
	}
	code, _, _ := strings.Cut(rest, ")")
	return code
}

// The guide's IoT and IAM commands, verbatim with awscli v2 and one
// --endpoint-url, answer with moto's shapes (moto is the oracle for the
// shapes only: our ids, ARNs and certificate ids follow AWS's rules), and
// repeating a create answers AWS's already-exists errors.
func TestGuideCommandsMatchMoto(t *testing.T) {
	w := startWorld(t)
	motoURL := testenv.Moto(t)
	motoDir, motoHome := t.TempDir(), t.TempDir()
	for _, d := range []string{w.dir, motoDir} {
		writeFile(t, d, "iam-policy-document.json", guideTrustPolicy)
		writeFile(t, d, "iam-permission-document.json", guideRolePolicy)
	}
	ours, theirs := map[string]map[string]any{}, map[string]map[string]any{}
	oursSteps, motoSteps := guideSteps(w.dir, ours), guideSteps(motoDir, theirs)
	// moto differs from AWS here; the test says so rather than copy it.
	knownMoto := map[string]string{
		// moto omits these members that AWS's model has and we send.
		".certificateDescription.certificateMode": "", ".certificateDescription.customerVersion": "",
		".certificateDescription.generationId": "", ".certificateDescription.transferData": "", ".certificateDescription.validity": "",
		".certificateDescription.validity.notAfter": "", ".certificateDescription.validity.notBefore": "",
		".thingTypeProperties.searchableAttributes": "", ".thingTypes[].thingTypeProperties.searchableAttributes": "",
		".certificates[].certificateMode": "", ".roleAliasDescription.owner": "",
		".thingTypes[].thingTypeMetadata.deprecated": "", ".thingTypes[].thingTypeMetadata.creationDate": "", ".thingTypes[].thingTypeMetadata": "",
		".generationId": "", ".defaultClientId": "", ".creationDate": "", ".lastModifiedDate": "",
		// moto adds these, which AWS's model does not have for the call.
		".Role.RoleLastUsed": "", ".Role.Tags": "", ".Role.Description": "", ".thingTypeId": "",
		".certificateDescription.caCertificateId": "", ".certificateDescription.previousOwnedBy": "", ".certificateDescription.certificateMode ": "",
		".things[].thingId": "", ".thingTypes[].thingTypeId": "",
	}
	for i, step := range oursSteps {
		o := w.aws(t, append(step.args(), "--output", "json")...)
		m := awsCLI(t, motoHome, motoDir, motoURL, []string{"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing"}, append(motoSteps[i].args(), "--output", "json")...)
		ours[step.name], theirs[step.name] = o.json, m.json
		if step.name == "create-thing-type again" {
			// moto answers a second CreateThingType with the type; AWS
			// answers ResourceAlreadyExistsException (checked below).
			continue
		}
		if (o.err == nil) != (m.err == nil) || errorCode(o.out) != errorCode(m.out) {
			t.Errorf("%s: ours %v %q, moto %v %q\nours: %s\nmoto: %s", step.name, o.err, errorCode(o.out), m.err, errorCode(m.out), o.out, m.out)
			continue
		}
		os, ms := shapeOf(o.json), shapeOf(m.json)
		var diff []string
		for _, p := range os {
			if indexOf(ms, p) < 0 {
				if _, known := knownMoto[p]; !known {
					diff = append(diff, "extra "+p)
				}
			}
		}
		for _, p := range ms {
			if indexOf(os, p) < 0 {
				if _, known := knownMoto[p]; !known {
					diff = append(diff, "missing "+p)
				}
			}
		}
		if len(diff) > 0 {
			t.Errorf("%s: %v\nours: %s\nmoto: %s", step.name, diff, o.out, m.out)
		}
	}
	for step, code := range map[string]string{"create-thing-type again": "ResourceAlreadyExistsException", "create-role again": "EntityAlreadyExists",
		"create-role-alias again": "ResourceAlreadyExistsException", "create-policy again": "ResourceAlreadyExistsException",
		"describe-thing missing": "ResourceNotFoundException", "get-role missing": "NoSuchEntity"} {
		if errorCode(w.aws(t, append(oursSteps[stepIndex(oursSteps, step)].args(), "--output", "json")...).out) != code {
			t.Errorf("%s: want %s", step, code)
		}
	}
	// AWS's certificate id is the SHA-256 of the DER (moto hashes the PEM).
	ck := ours["create-keys-and-certificate"]
	pemText, err := os.ReadFile(filepath.Join(w.dir, "certificate.pem"))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := certificateIDFromPEM(pemText)
	if ck["certificateId"] != id || ck["certificateArn"] != "arn:aws:iot:us-west-2:123456789012:cert/"+id {
		t.Fatalf("certificate id %v, want sha256(DER) %s", ck["certificateId"], id)
	}
	for _, f := range []string{"public.pem.key", "private.pem.key"} {
		if b, err := os.ReadFile(filepath.Join(w.dir, f)); err != nil || !bytes.Contains(b, []byte("-----BEGIN")) {
			t.Errorf("%s: %v %.40s", f, err, b)
		}
	}
	if ep := ours["describe-endpoint"]["endpointAddress"]; ep != w.iotEP {
		t.Fatalf("describe-endpoint %v, want %s", ep, w.iotEP)
	}
	// --output text, as the guide writes it into a file.
	if r := w.aws(t, "iot", "describe-endpoint", "--endpoint-type", "iot:CredentialProvider", "--output", "text"); strings.TrimSpace(r.out) != w.iotEP {
		t.Fatalf("describe-endpoint --output text: %q", r.out)
	}
}

func stepIndex[T any](steps []struct {
	name string
	args T
}, name string) int {
	for i, s := range steps {
		if s.name == name {
			return i
		}
	}
	panic(fmt.Sprintf("no step %s", name))
}

// runGuide performs the guide's setup steps on w (the commands of
// TestGuideCommandsMatchMoto, without the checks) and returns the
// certificate's id and ARN.
func (w *world) runGuide(t *testing.T) (string, string) {
	t.Helper()
	writeFile(t, w.dir, "iam-policy-document.json", guideTrustPolicy)
	writeFile(t, w.dir, "iam-permission-document.json", guideRolePolicy)
	out := map[string]map[string]any{}
	for _, step := range guideSteps(w.dir, out)[:10] {
		out[step.name] = w.must(t, append(step.args(), "--output", "json")...)
	}
	ck := out["create-keys-and-certificate"]
	return ck["certificateId"].(string), ck["certificateArn"].(string)
}

// curlCredentials is the guide's curl command; host is localhost or
// 127.0.0.1. It returns curl's output and HTTP status (0: no answer).
func (w *world) curlCredentials(t *testing.T, host, thing string) (map[string]any, int, string) {
	t.Helper()
	curl := testenv.Tool(t, "curl", "curl")
	_, port, _ := net.SplitHostPort(w.iotEP)
	args := []string{"-sS", "-w", "\n%{http_code}", "--cert", "certificate.pem", "--key", "private.pem.key", "--cacert", "cacert.pem",
		"https://" + net.JoinHostPort(host, port) + "/role-aliases/KvsCameraIoTRoleAlias/credentials"}
	if thing != "" {
		args = append([]string{"-H", "x-amzn-iot-thingname:" + thing}, args...)
	}
	cmd := exec.Command(curl, args...)
	cmd.Dir = w.dir
	b, _ := cmd.CombinedOutput()
	body, code, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if i := strings.LastIndex(string(b), "\n"); i >= 0 {
		body, code = string(b[:i]), strings.TrimSpace(string(b[i+1:]))
	}
	var m map[string]any
	json.Unmarshal([]byte(body), &m)
	var status int
	fmt.Sscan(code, &status)
	return m, status, string(b)
}

// credsEnv turns the credentials provider's answer into the CLI's
// environment.
func credsEnv(t *testing.T, m map[string]any) []string {
	t.Helper()
	c, ok := m["credentials"].(map[string]any)
	if !ok {
		t.Fatalf("no credentials in %v", m)
	}
	return []string{"AWS_ACCESS_KEY_ID=" + c["accessKeyId"].(string), "AWS_SECRET_ACCESS_KEY=" + c["secretAccessKey"].(string),
		"AWS_SESSION_TOKEN=" + c["sessionToken"].(string)}
}

// The credentials provider enforces what AWS does, and every change made
// with the CLI applies at once: certificate status, the attached IoT
// policy, the thing attachment, the role's trust policy and permissions,
// the alias's duration.
func TestGuideCredentialsProviderEnforces(t *testing.T) {
	curl := testenv.Tool(t, "curl", "curl")
	w := startWorld(t)
	certID, certARN := w.runGuide(t)
	// The guide downloads the root CA with curl; here the endpoint serves it.
	if out, err := exec.Command(curl, "-sS", "--fail", w.url+"/AmazonRootCA1.pem", "--output", filepath.Join(w.dir, "cacert.pem")).CombinedOutput(); err != nil {
		t.Fatalf("curl the CA: %v %s", err, out)
	}
	w.must(t, "kinesisvideo", "create-stream", "--data-retention-in-hours", "24", "--stream-name", "kvs_example_camera_stream")
	w.must(t, "kinesisvideo", "create-stream", "--data-retention-in-hours", "24", "--stream-name", certID)
	w.must(t, "kinesisvideo", "create-stream", "--data-retention-in-hours", "24", "--stream-name", "other")

	m, status, out := w.curlCredentials(t, "localhost", "kvs_example_camera_stream")
	if status != 200 {
		t.Fatalf("guide's curl: %d %s", status, out)
	}
	exp, _ := time.Parse(time.RFC3339, m["credentials"].(map[string]any)["expiration"].(string))
	if d := time.Until(exp); d < 3590*time.Second || d > 3601*time.Second {
		t.Fatalf("expiration %v is not the alias's 3600 s away", exp)
	}
	cam := credsEnv(t, m)
	describe := func(env []string, stream string) cliResult {
		return awsCLI(t, w.awsDir, w.dir, w.url, env, "kinesisvideo", "describe-stream", "--stream-name", stream, "--output", "json")
	}
	if r := describe(cam, "kvs_example_camera_stream"); r.err != nil {
		t.Fatalf("describe-stream of the thing's stream: %s", r.out)
	}
	if r := describe(cam, "other"); errorCode(r.out) != "AccessDeniedException" {
		t.Fatalf("describe-stream of another stream: %s", r.out)
	}
	if _, status, out := w.curlCredentials(t, "127.0.0.1", "kvs_example_camera_stream"); status != 200 {
		t.Fatalf("curl to 127.0.0.1: %d %s", status, out)
	}

	// The CertificateId variant: put-role-policy applies at once, to the
	// credentials already issued.
	writeFile(t, w.dir, "cert-policy.json", strings.ReplaceAll(guideRolePolicy, "credentials-iot:ThingName", "credentials-iot:AwsCertificateId"))
	w.must(t, "iam", "put-role-policy", "--role-name", GuideRoleName, "--policy-name", "KVSCameraIAMPolicy", "--policy-document", "file://cert-policy.json")
	if r := describe(cam, certID); r.err != nil {
		t.Fatalf("describe-stream of the certificate's stream after put-role-policy: %s", r.out)
	}
	if r := describe(cam, "kvs_example_camera_stream"); errorCode(r.out) != "AccessDeniedException" {
		t.Fatalf("the thing's stream after put-role-policy: %s", r.out)
	}
	w.must(t, "iam", "put-role-policy", "--role-name", GuideRoleName, "--policy-name", "KVSCameraIAMPolicy", "--policy-document", "file://iam-permission-document.json")
	// A managed policy attached to the role applies at once too.
	writeFile(t, w.dir, "read-other.json", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kinesisvideo:DescribeStream","Resource":"arn:aws:kinesisvideo:*:*:stream/other/*"}]}`)
	arn := w.must(t, "iam", "create-policy", "--policy-name", "ReadOther", "--policy-document", "file://read-other.json", "--output", "json")["Policy"].(map[string]any)["Arn"].(string)
	w.must(t, "iam", "attach-role-policy", "--role-name", GuideRoleName, "--policy-arn", arn)
	if r := describe(cam, "other"); r.err != nil {
		t.Fatalf("describe-stream allowed by an attached managed policy: %s", r.out)
	}
	if lp := w.must(t, "iam", "list-attached-role-policies", "--role-name", GuideRoleName, "--output", "json"); len(lp["AttachedPolicies"].([]any)) != 1 {
		t.Fatalf("list-attached-role-policies: %v", lp)
	}
	w.must(t, "iam", "detach-role-policy", "--role-name", GuideRoleName, "--policy-arn", arn)
	if r := describe(cam, "other"); errorCode(r.out) != "AccessDeniedException" {
		t.Fatalf("describe-stream once the managed policy is detached: %s", r.out)
	}

	check := func(what string, wantStatus int, wantMsg string) {
		t.Helper()
		m, status, out := w.curlCredentials(t, "localhost", "kvs_example_camera_stream")
		if status != wantStatus || (wantMsg != "" && m["message"] != wantMsg) {
			t.Fatalf("%s: %d %s; want %d %q", what, status, out, wantStatus, wantMsg)
		}
	}
	for _, st := range []string{"INACTIVE", "REVOKED"} {
		w.must(t, "iot", "update-certificate", "--certificate-id", certID, "--new-status", st)
		check("certificate "+st, 0, "") // the handshake fails: no HTTP answer
		if st == "INACTIVE" {
			w.must(t, "iot", "update-certificate", "--certificate-id", certID, "--new-status", "ACTIVE")
			check("certificate ACTIVE again", 200, "")
		}
	}
	if r := w.aws(t, "iot", "update-certificate", "--certificate-id", certID, "--new-status", "ACTIVE"); errorCode(r.out) != "CertificateStateException" {
		t.Fatalf("activating a revoked certificate: %s", r.out)
	}
	// A second certificate for the rest (the first is revoked for good).
	ck := w.must(t, "iot", "create-keys-and-certificate", "--set-as-active", "--certificate-pem-outfile", "certificate.pem",
		"--public-key-outfile", "public.pem.key", "--private-key-outfile", "private.pem.key", "--output", "json")
	certARN = ck["certificateArn"].(string)
	check("certificate without policy or thing", 403, "Invalid thing name passed")
	w.must(t, "iot", "attach-thing-principal", "--thing-name", "kvs_example_camera_stream", "--principal", certARN)
	check("certificate without policy", 403, "Access Denied")
	w.must(t, "iot", "attach-policy", "--policy-name", GuideIoTPolicyName, "--target", certARN)
	check("certificate with policy and thing", 200, "")
	w.must(t, "iot", "detach-thing-principal", "--thing-name", "kvs_example_camera_stream", "--principal", certARN)
	check("thing detached", 403, "Invalid thing name passed")
	w.must(t, "iot", "attach-thing-principal", "--thing-name", "kvs_example_camera_stream", "--principal", certARN)

	w.must(t, "iot", "update-role-alias", "--role-alias", GuideRoleAlias, "--credential-duration-seconds", "7200")
	check("alias duration above the role's maximum", 400, "The requested CredentialDurationSeconds exceeds the MaxSessionDuration set for the role")
	w.must(t, "iot", "update-role-alias", "--role-alias", GuideRoleAlias, "--credential-duration-seconds", "900")
	m, _, _ = w.curlCredentials(t, "localhost", "kvs_example_camera_stream")
	exp, _ = time.Parse(time.RFC3339, m["credentials"].(map[string]any)["expiration"].(string))
	if d := time.Until(exp); d < 890*time.Second || d > 901*time.Second {
		t.Fatalf("expiration %v is not the alias's 900 s away", exp)
	}

	writeFile(t, w.dir, "untrusting.json", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
	w.must(t, "iam", "update-assume-role-policy", "--role-name", GuideRoleName, "--policy-document", "file://untrusting.json")
	check("trust policy without the IoT credentials provider", 400, "Unable to assume the role, or the role to assume does not exist")
	w.must(t, "iam", "update-assume-role-policy", "--role-name", GuideRoleName, "--policy-document", "file://iam-policy-document.json")
	check("trust restored", 200, "")

	if r := w.aws(t, "iam", "delete-role", "--role-name", GuideRoleName); errorCode(r.out) != "DeleteConflict" {
		t.Fatalf("deleting a role with policies: %s", r.out)
	}
	w.must(t, "iam", "delete-role-policy", "--role-name", GuideRoleName, "--policy-name", "KVSCameraIAMPolicy")
	if r := describe(cam, "kvs_example_camera_stream"); errorCode(r.out) != "AccessDeniedException" {
		t.Fatalf("describe-stream once the role has no policy: %s", r.out)
	}
	w.must(t, "iam", "delete-role", "--role-name", GuideRoleName)
	check("alias pointing at a deleted role", 400, "Unable to assume the role, or the role to assume does not exist")
	w.must(t, "iot", "delete-role-alias", "--role-alias", GuideRoleAlias)
	check("deleted alias", 404, "Role alias does not exist")
}

// The IAM user and managed-policy commands of the security model answer
// in moto's shapes and with its error codes.
func TestIAMUserCommandsMatchMoto(t *testing.T) {
	w := startWorld(t)
	motoURL := testenv.Moto(t)
	motoDir, motoHome := t.TempDir(), t.TempDir()
	const doc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kinesisvideo:PutMedia","Resource":"arn:aws:kinesisvideo:*:*:stream/cam/*"}]}`
	// ARN and KEY stand for the policy ARN and access key id each side
	// returned.
	steps := [][]string{
		{"create-user", "iam", "create-user", "--user-name", "producer"},
		{"create-access-key", "iam", "create-access-key", "--user-name", "producer"},
		{"list-access-keys", "iam", "list-access-keys", "--user-name", "producer"},
		{"put-user-policy", "iam", "put-user-policy", "--user-name", "producer", "--policy-name", "put", "--policy-document", doc},
		{"get-user-policy", "iam", "get-user-policy", "--user-name", "producer", "--policy-name", "put"},
		{"list-user-policies", "iam", "list-user-policies", "--user-name", "producer"},
		{"create-policy", "iam", "create-policy", "--policy-name", "ReadCam", "--policy-document", doc},
		{"get-policy", "iam", "get-policy", "--policy-arn", "ARN"},
		{"attach-user-policy", "iam", "attach-user-policy", "--user-name", "producer", "--policy-arn", "ARN"},
		{"list-attached-user-policies", "iam", "list-attached-user-policies", "--user-name", "producer"},
		{"get-user", "iam", "get-user", "--user-name", "producer"},
		{"list-users", "iam", "list-users"},
		{"create-user again", "iam", "create-user", "--user-name", "producer"},
		{"get-user missing", "iam", "get-user", "--user-name", "nobody"},
		{"detach-user-policy", "iam", "detach-user-policy", "--user-name", "producer", "--policy-arn", "ARN"},
		{"delete-user-policy", "iam", "delete-user-policy", "--user-name", "producer", "--policy-name", "put"},
		{"delete-access-key", "iam", "delete-access-key", "--user-name", "producer", "--access-key-id", "KEY"},
		{"delete-policy", "iam", "delete-policy", "--policy-arn", "ARN"},
		{"delete-user", "iam", "delete-user", "--user-name", "producer"},
	}
	ours, theirs := map[string]map[string]any{}, map[string]map[string]any{}
	resolve := func(args []string, out map[string]map[string]any) []string {
		r := append([]string(nil), args...)
		for i, a := range r {
			switch a {
			case "ARN":
				p, _ := out["create-policy"]["Policy"].(map[string]any)
				r[i], _ = p["Arn"].(string)
			case "KEY":
				k, _ := out["create-access-key"]["AccessKey"].(map[string]any)
				r[i], _ = k["AccessKeyId"].(string)
			}
		}
		return append(r, "--output", "json")
	}
	// moto adds members that AWS's model does not have for these calls.
	extraInMoto := map[string]bool{".User.Tags": true, ".Users[].Tags": true, ".Policy.Tags": true, ".Policy.Description": true,
		".User.PasswordLastUsed": true, ".Users[].PasswordLastUsed": true}
	for _, step := range steps {
		name, args := step[0], step[1:]
		o := w.aws(t, resolve(args, ours)...)
		m := awsCLI(t, motoHome, motoDir, motoURL, []string{"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing"}, resolve(args, theirs)...)
		ours[name], theirs[name] = o.json, m.json
		if errorCode(o.out) != errorCode(m.out) || (o.err == nil) != (m.err == nil) {
			t.Errorf("%s: ours %q, moto %q\nours: %s\nmoto: %s", name, errorCode(o.out), errorCode(m.out), o.out, m.out)
			continue
		}
		os, ms := shapeOf(o.json), shapeOf(m.json)
		for _, p := range ms {
			if indexOf(os, p) < 0 && !extraInMoto[p] {
				t.Errorf("%s: ours lacks %s\nours: %s\nmoto: %s", name, p, o.out, m.out)
			}
		}
		for _, p := range os {
			// AWS's Policy has PermissionsBoundaryUsageCount (the CLI
			// reference's create-policy example shows it); moto leaves it out.
			if indexOf(ms, p) < 0 && !strings.HasSuffix(p, ".PermissionsBoundaryUsageCount") {
				t.Errorf("%s: ours has %s, moto does not\nours: %s\nmoto: %s", name, p, o.out, m.out)
			}
		}
	}
}
