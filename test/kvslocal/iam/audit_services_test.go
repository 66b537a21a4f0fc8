package iam

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/kvsgo/kvsgo/test/testenv"
)

// rawCall signs body for service with the admin key and sends it to the
// endpoint; edit may change the request after signing.
func rawCall(t *testing.T, url, service, path, contentType, target, body string, edit func(*http.Request)) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	h := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: adminKey, SecretAccessKey: adminSecret}, req, hex.EncodeToString(h[:]), service, DefaultRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

type auditEv struct {
	EventSource, EventName, ErrorCode, ErrorMessage string
	UserIdentity                                    struct{ Type, ARN, AccessKeyID, UserName, InvokedBy string }
	RequestParameters                               map[string]any
}

func readEvents(t *testing.T, path string) ([]auditEv, []byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var evs []auditEv
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev auditEv
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	return evs, raw
}

// Every call of every service is an audit event with CloudTrail's
// eventSource and eventName and the principal as IAM names it, denied and
// unauthenticated ones included, and so are the credentials provider's
// issuances and refusals; bad input (wrong protocol, a signature for
// another service) gets the service's error shape, never a 500, and an
// event too. No secret reaches the log.
func TestAuditEveryService(t *testing.T) {
	w := startWorld(t)
	_, _ = w.runGuide(t)
	w.must(t, "kinesisvideo", "create-stream", "--stream-name", "kvs_example_camera_stream", "--data-retention-in-hours", "1")
	if out, err := exec.Command(testenv.Tool(t, "curl", "curl"), "-sS", "--fail", w.url+"/AmazonRootCA1.pem", "--output", w.dir+"/cacert.pem").CombinedOutput(); err != nil {
		t.Fatalf("curl: %v %s", err, out)
	}
	if _, status, out := w.curlCredentials(t, "localhost", "kvs_example_camera_stream"); status != 200 {
		t.Fatalf("curl credentials: %s", out)
	}
	if _, status, _ := w.curlCredentials(t, "localhost", "not_my_thing"); status != 403 {
		t.Fatalf("curl with another thing: %d", status)
	}
	// A revoked certificate: the handshake fails, and is audited.
	ck := w.must(t, "iot", "create-keys-and-certificate", "--set-as-active", "--certificate-pem-outfile", "revoked.pem", "--private-key-outfile", "revoked.key", "--output", "json")
	w.must(t, "iot", "update-certificate", "--certificate-id", ck["certificateId"].(string), "--new-status", "REVOKED")
	if out, err := exec.Command(testenv.Tool(t, "curl", "curl"), "-sS", "--cert", w.dir+"/revoked.pem", "--key", w.dir+"/revoked.key", "--cacert", w.dir+"/cacert.pem",
		"https://"+w.iotEP+"/role-aliases/"+GuideRoleAlias+"/credentials").CombinedOutput(); err == nil {
		t.Fatalf("a revoked certificate got an answer: %s", out)
	}
	w.must(t, "kms", "create-key")
	id := w.must(t, "sts", "get-caller-identity")
	if id["Arn"] != "arn:aws:iam::123456789012:user/admin" {
		t.Fatalf("get-caller-identity with the endpoint's own key: %v", id)
	}
	// A user without permissions: denied everywhere but STS.
	w.must(t, "iam", "create-user", "--user-name", "nobody")
	k := w.must(t, "iam", "create-access-key", "--user-name", "nobody")["AccessKey"].(map[string]any)
	secret := k["SecretAccessKey"].(string)
	nobody := []string{"AWS_ACCESS_KEY_ID=" + k["AccessKeyId"].(string), "AWS_SECRET_ACCESS_KEY=" + secret}
	for _, args := range [][]string{{"iot", "list-things"}, {"iam", "list-users"}, {"kms", "list-keys"}, {"kinesisvideo", "list-streams"}} {
		if r := awsCLI(t, w.awsDir, w.dir, w.url, nobody, args...); r.err == nil {
			t.Fatalf("%v allowed without a policy: %s", args, r.out)
		}
	}
	if r := awsCLI(t, w.awsDir, w.dir, w.url, nobody, "sts", "get-caller-identity", "--output", "json"); r.err != nil || r.json["Arn"] != "arn:aws:iam::123456789012:user/nobody" {
		t.Fatalf("sts get-caller-identity as nobody: %s", r.out)
	}
	// STS on its own port (STS_URL) is audited too.
	stsURL, err := w.iam.StartSTS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if r := awsCLI(t, w.awsDir, w.dir, stsURL, nobody, "sts", "assume-role", "--role-arn", "arn:aws:iam::123456789012:role/"+GuideRoleName, "--role-session-name", "s1"); errorCode(r.out) != "AccessDenied" {
		t.Fatalf("assume-role by nobody on the STS port: %v %q", r.err, r.out)
	}
	wrong := []string{"AWS_ACCESS_KEY_ID=" + adminKey, "AWS_SECRET_ACCESS_KEY=wrong"}
	for _, args := range [][]string{{"iot", "list-things"}, {"iam", "list-roles"}, {"kms", "list-keys"}} {
		if r := awsCLI(t, w.awsDir, w.dir, w.url, wrong, args...); r.err == nil {
			t.Fatalf("%v with a wrong secret: %s", args, r.out)
		}
	}
	if r := w.aws(t, "iam", "create-role", "--role-name", "Bad", "--assume-role-policy-document", `{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}`); errorCode(r.out) != "MalformedPolicyDocument" {
		t.Fatalf("a trust policy without a principal: %s", r.out)
	}
	if r := w.aws(t, "iot", "create-policy", "--policy-name", "Bad", "--policy-document", `{"Statement":`); errorCode(r.out) != "MalformedPolicyException" {
		t.Fatalf("a malformed IoT policy: %s", r.out)
	}

	// Bad input on the wire.
	for _, c := range []struct {
		name, service, path, ctype, target, body string
		edit                                     func(*http.Request)
		status                                   int
		want                                     string
	}{
		{"JSON to IAM", "iam", "/", "application/json", "", `{"Action":"ListUsers"}`, nil, 400, "<Code>InvalidAction</Code>"},
		{"form to KMS", "kms", "/", "application/x-www-form-urlencoded", "", "Action=ListKeys", nil, 400, `"__type":"UnknownOperationException"`},
		{"KMS body not JSON", "kms", "/", "application/x-amz-json-1.1", "TrentService.ListKeys", "nope", nil, 400, `"__type":"SerializationException"`},
		{"IoT path unknown", "iot", "/no-such-thing", "application/json", "", "{}", nil, 404, "UnknownOperationException"},
		{"IoT body not JSON", "iot", "/thing-types/x", "application/json", "", "nope", nil, 400, "InvalidRequestException"},
		{"signed for sts, sent to iam", "sts", "/", "application/x-www-form-urlencoded", "", "Action=ListUsers&Version=2010-05-08",
			func(r *http.Request) {
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/sts/", "/iam/", 1))
			}, 403, "<Code>SignatureDoesNotMatch</Code>"},
		{"signed for iot, sent to kinesisvideo", "iot", "/listStreams", "application/json", "", "{}",
			func(r *http.Request) {
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/iot/", "/kinesisvideo/", 1))
			}, 403, "InvalidSignatureException"},
		{"an unknown service", "s3", "/", "application/json", "", "{}", nil, 403, "Credential should be scoped to correct service"},
	} {
		status, body, hdr := rawCall(t, w.url, c.service, c.path, c.ctype, c.target, c.body, c.edit)
		if status != c.status || !strings.Contains(body+hdr.Get("x-amzn-ErrorType"), c.want) {
			t.Errorf("%s: %d %s %s; want %d %s", c.name, status, hdr.Get("x-amzn-ErrorType"), body, c.status, c.want)
		}
	}

	w.kvs.Close() // flush the log
	evs, raw := readEvents(t, w.audit)
	for _, s := range []string{adminSecret, secret, "wrong\"", "PRIVATE KEY"} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("the audit log contains %q", s)
		}
	}
	seen := map[string]auditEv{}
	for _, ev := range evs {
		seen[ev.EventSource+" "+ev.EventName+" "+ev.ErrorCode] = ev
	}
	admin, nob := "arn:aws:iam::123456789012:user/admin", "arn:aws:iam::123456789012:user/nobody"
	for key, principal := range map[string]string{
		"iot.amazonaws.com CreateThingType ":                               admin,
		"iot.amazonaws.com CreateKeysAndCertificate ":                      admin,
		"iot.amazonaws.com AttachThingPrincipal ":                          admin,
		"iot.amazonaws.com DescribeEndpoint ":                              admin,
		"iam.amazonaws.com CreateRole ":                                    admin,
		"iam.amazonaws.com PutRolePolicy ":                                 admin,
		"iam.amazonaws.com CreateAccessKey ":                               admin,
		"kms.amazonaws.com CreateKey ":                                     admin,
		"sts.amazonaws.com GetCallerIdentity ":                             nob,
		"kinesisvideo.amazonaws.com CreateStream ":                         admin,
		"iot.amazonaws.com ListThings AccessDeniedException":               nob,
		"iam.amazonaws.com ListUsers AccessDenied":                         nob,
		"kms.amazonaws.com ListKeys AccessDeniedException":                 nob,
		"kinesisvideo.amazonaws.com ListStreams AccessDeniedException":     nob,
		"iot.amazonaws.com ListThings InvalidSignatureException":           admin,
		"iam.amazonaws.com ListRoles SignatureDoesNotMatch":                admin,
		"kms.amazonaws.com ListKeys InvalidSignatureException":             admin,
		"iam.amazonaws.com CreateRole MalformedPolicyDocument":             admin,
		"iot.amazonaws.com CreatePolicy MalformedPolicyException":          admin,
		"iam.amazonaws.com  InvalidAction":                                 admin,
		"kms.amazonaws.com  UnknownOperationException":                     admin,
		"iam.amazonaws.com ListUsers SignatureDoesNotMatch":                admin,
		"kinesisvideo.amazonaws.com ListStreams InvalidSignatureException": admin,
		"sts.amazonaws.com AssumeRole ":                                    "",
		"sts.amazonaws.com AssumeRole AccessDeniedException":               "",
	} {
		ev, ok := seen[key]
		if !ok {
			t.Errorf("no audit event %q", key)
			continue
		}
		if ev.UserIdentity.ARN != principal {
			t.Errorf("%q by %+v, want %s", key, ev.UserIdentity, principal)
		}
	}
	handshake := false
	for _, ev := range evs {
		handshake = handshake || ev.ErrorCode == "AccessDenied" && strings.Contains(ev.ErrorMessage, "TLS handshake was refused: the certificate "+ck["certificateId"].(string)+" is not registered or not ACTIVE")
	}
	if !handshake {
		t.Errorf("no audit event for the revoked certificate's refused handshake")
	}
	issued := seen["sts.amazonaws.com AssumeRole "]
	if issued.UserIdentity.Type != "AWSService" || issued.UserIdentity.InvokedBy != "credentials.iot.amazonaws.com" ||
		issued.RequestParameters["roleAlias"] != GuideRoleAlias || issued.RequestParameters["thingName"] != "kvs_example_camera_stream" {
		t.Errorf("credential issuance event: %+v", issued)
	}
	if ref := seen["sts.amazonaws.com AssumeRole AccessDeniedException"]; ref.ErrorMessage != "Invalid thing name passed" {
		t.Errorf("credential refusal event: %+v", ref)
	}
}
