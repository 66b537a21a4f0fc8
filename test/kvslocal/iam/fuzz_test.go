package iam

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/kvsgo/kvsgo/test/kvslocal"
)

// Policy documents as IAM and IoT take them: parsing never panics, and a
// document that parses can be evaluated against any request.
func FuzzPolicyDocument(f *testing.F) {
	for _, s := range []string{guideTrustPolicy, guideRolePolicy, guideIoTPolicy("arn:aws:iot:us-west-2:123456789012:rolealias/A"),
		`{"Statement":{"Effect":"Deny","NotAction":"iot:*","Resource":["*"]}}`,
		`{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::${aws:username, 'x'}/*","Condition":{"StringLike":{"aws:userid":"A*"}}}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Principal":{"AWS":["arn:aws:iam::1:root"]}}]}`,
		`"{\"Statement\":[]}"`, `{"Statement":[`, `[]`, `null`, ``, `{"Statement":[{"Effect":"Allow"}]}`} {
		f.Add(s, "kinesisvideo:PutMedia", "arn:aws:kinesisvideo:us-west-2:123456789012:stream/cam/1")
	}
	f.Fuzz(func(t *testing.T, doc, action, resource string) {
		ctx := map[string]string{VarThingName: "cam", "aws:username": "u"}
		for _, parse := range []func(string) (Policy, error){
			parsePolicyDoc,
			func(d string) (Policy, error) { p, e := parseIdentityPolicy(d); return p, errOf(e) },
			func(d string) (Policy, error) { p, e := parseTrustPolicy(d); return p, errOf(e) },
		} {
			p, err := parse(doc)
			if err != nil {
				continue
			}
			Evaluate([]Policy{p}, Request{Action: action, Resource: resource, Context: ctx})
			trusts(p, action, resource, false, ctx, DefaultAccountID)
		}
	})
}

func errOf(e *stsError) error {
	if e == nil {
		return nil
	}
	return &kvslocal.SigV4Error{Message: e.message}
}

// fuzzServices is the endpoint with its IoT, IAM, STS and KMS services.
func fuzzServices(f *testing.F) *kvslocal.Server {
	az, err := New(&File{}, Options{})
	if err != nil {
		f.Fatal(err)
	}
	s, err := kvslocal.New(kvslocal.Config{Dir: f.TempDir(), Authorizer: az, Services: az.Services(),
		Credentials: []kvslocal.Credential{{AccessKeyID: adminKey, SecretAccessKey: adminSecret}}})
	if err != nil {
		f.Fatal(err)
	}
	return s
}

var fuzzSigning = []string{"iot", "execute-api", "iam", "sts", "kms"}

// Fuzzed, validly signed requests to every service: no panic, no 5xx, and
// every error in the shape of the service's protocol (restJson1 for IoT,
// XML for IAM and STS, awsJson for KMS).
func FuzzServices(f *testing.F) {
	s := fuzzServices(f)
	seeds := []struct {
		svc          uint8
		method, path string
		body         string
	}{
		{0, "POST", "/thing-types/kvs_example_camera", `{}`},
		{1, "POST", "/things/cam", `{"thingTypeName":"kvs_example_camera"}`},
		{0, "POST", "/role-aliases/A", `{"roleArn":"arn:aws:iam::123456789012:role/R","credentialDurationSeconds":3600}`},
		{0, "POST", "/policies/P", `{"policyDocument":"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iot:*\",\"Resource\":\"*\"}]}"}`},
		{0, "PUT", "/target-policies/P", `{"target":"arn:aws:iot:us-west-2:123456789012:cert/00"}`},
		{0, "GET", "/endpoint?endpointType=iot:CredentialProvider", ``},
		{0, "PUT", "/certificates/" + strings.Repeat("a", 64) + "?newStatus=REVOKED", ``},
		{0, "DELETE", "/things/cam", ``},
		{0, "POST", "/attached-policies/arn%3Aaws%3Aiot%3Aus-west-2%3A123456789012%3Acert%2Fab", ``},
		{2, "POST", "/", "Action=CreateRole&Version=2010-05-08&RoleName=R&AssumeRolePolicyDocument=" + guideTrustPolicy},
		{2, "POST", "/", "Action=PutRolePolicy&Version=2010-05-08&RoleName=R&PolicyName=p&PolicyDocument=" + guideRolePolicy},
		{2, "POST", "/", "Action=CreateUser&UserName=u"},
		{2, "POST", "/", "Action=CreateAccessKey&UserName=u"},
		{2, "POST", "/", "Action=CreatePolicy&PolicyName=m&PolicyDocument=%7B%7D"},
		{2, "POST", "/", "Action=AttachUserPolicy&UserName=u&PolicyArn=arn:aws:iam::123456789012:policy/m"},
		{2, "POST", "/", "Action=DeleteRole&RoleName=R"},
		{3, "POST", "/", "Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::123456789012:role/R&RoleSessionName=s"},
		{3, "POST", "/", "Action=GetCallerIdentity&Version=2011-06-15"},
		{4, "POST", "/TrentService.CreateKey", `{"Description":"d"}`},
		{4, "POST", "/TrentService.ScheduleKeyDeletion", `{"KeyId":"alias/x","PendingWindowInDays":7}`},
		{4, "POST", "/TrentService.CreateAlias", `{"AliasName":"alias/x","TargetKeyId":"1"}`},
		{4, "POST", "/TrentService.ListAliases", `{"KeyId":null}`},
		{4, "POST", "/", `[]`},
	}
	for _, sd := range seeds {
		f.Add(sd.svc, sd.method, sd.path, []byte(sd.body))
	}
	f.Fuzz(func(t *testing.T, svc uint8, method, path string, body []byte) {
		name := fuzzSigning[int(svc)%len(fuzzSigning)]
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n#") {
			path = "/" + strings.NewReplacer(" ", "", "\r", "", "\n", "", "#", "").Replace(path)
		}
		switch method {
		case "GET", "POST", "PUT", "DELETE":
		default:
			method = "POST"
		}
		target := ""
		if name == "kms" {
			target, path = strings.TrimPrefix(path, "/"), "/"
		}
		req, err := http.NewRequest(method, "http://127.0.0.1:1"+path, bytes.NewReader(body))
		if err != nil {
			return // not a URL a client could send
		}
		switch name {
		case "kms":
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			req.Header.Set("X-Amz-Target", target)
		case "iam", "sts":
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		default:
			req.Header.Set("Content-Type", "application/json")
		}
		h := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: adminKey, SecretAccessKey: adminSecret}, req, hex.EncodeToString(h[:]), name, DefaultRegion, time.Now()); err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s %s %q: status %d %s", name, method, path, body, w.Code, w.Body.Bytes())
		}
		if w.Code < 300 {
			return
		}
		switch name {
		case "iam", "sts":
			var x struct {
				Error struct{ Code, Message string }
			}
			if xml.Unmarshal(w.Body.Bytes(), &x) != nil || x.Error.Code == "" {
				t.Fatalf("%s %q: status %d, not an awsquery error: %s", name, body, w.Code, w.Body.Bytes())
			}
		default:
			var m map[string]any
			if json.Unmarshal(w.Body.Bytes(), &m) != nil || (m["message"] == nil && m["Message"] == nil) || w.Header().Get("x-amzn-ErrorType") == "" {
				t.Fatalf("%s %s %s %q: status %d, not a JSON error: %s %v", name, method, path, body, w.Code, w.Body.Bytes(), w.Header())
			}
		}
	})
}
