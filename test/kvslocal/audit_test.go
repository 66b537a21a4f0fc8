package kvslocal

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
)

// readAudit reads the audit log's events.
func readAudit(t *testing.T, path string) ([]map[string]any, []byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var evs []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	return evs, raw
}

// Every call leaves a CloudTrail-shaped event: a success, authentication
// failures and a PutMedia; no secret, session token or signature is ever
// written.
func TestAuditLog(t *testing.T) {
	fx := loadFixture(t)
	const tokenKey, tokenSecret, token = "ASIAAUDITTEST", "audit-temporary-secret", "audit-session-token-FwoGZXIvYXdz"
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	cfg := testConfig(t.TempDir())
	cfg.AuditLog = path
	cfg.Credentials = append(cfg.Credentials, Credential{AccessKeyID: tokenKey, SecretAccessKey: tokenSecret, SessionToken: token})
	srv, url := startWith(t, cfg)
	ctx := context.Background()

	createStream(t, url, "audited", 1)
	// A success with a session token, whose signature we keep to look for.
	b := []byte(`{"StreamName":"audited"}`)
	req, _ := http.NewRequest(http.MethodPost, url+"/describeStream", bytes.NewReader(b))
	signJSON(t, req, b, aws.Credentials{AccessKeyID: tokenKey, SecretAccessKey: tokenSecret, SessionToken: token}, time.Now())
	signature := regexp.MustCompile(`Signature=([0-9a-f]{64})`).FindStringSubmatch(req.Header.Get("Authorization"))[1]
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("describeStream with a session token: %v %v", err, resp)
	}
	resp.Body.Close()
	// Authentication failures: a wrong secret, an unknown key.
	c := kinesisvideo.New(kinesisvideo.Options{Region: testRegion, BaseEndpoint: aws.String(url), RetryMaxAttempts: 1,
		Credentials: awscreds.NewStaticCredentialsProvider(tokenKey, "not-the-secret", token)})
	if _, err := c.ListStreams(ctx, &kinesisvideo.ListStreamsInput{}); code(err) != "InvalidSignatureException" {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := client(url, "AKIDUNKNOWN", "x").ListStreams(ctx, &kinesisvideo.ListStreamsInput{}); code(err) != "UnrecognizedClientException" {
		t.Fatalf("unknown key: %v", err)
	}
	// A modelled error.
	if _, err := client(url, testKey, testSecret).DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("absent")}); code(err) != "ResourceNotFoundException" {
		t.Fatal(err)
	}
	putAll(t, url, putOptions{stream: "audited"}, body(fx, fx.cluster(0), fx.data[fx.eofr:]), "", 0)
	srv.Close() // every event written

	evs, raw := readAudit(t, path)
	for _, secret := range []string{testSecret, tokenSecret, token, signature, "not-the-secret", "Signature="} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the audit log contains %q", secret)
		}
	}
	var names []string
	for _, ev := range evs {
		names = append(names, ev["eventName"].(string))
		for _, k := range []string{"eventVersion", "eventTime", "eventSource", "awsRegion", "sourceIPAddress", "userAgent", "requestID", "eventID", "userIdentity"} {
			if ev[k] == nil || ev[k] == "" {
				t.Errorf("event %v has no %s", ev["eventName"], k)
			}
		}
		if ev["eventSource"] == "kms.amazonaws.com" {
			continue // the service's use of KMS behind the fragment, checked below
		}
		if ev["eventSource"] != "kinesisvideo.amazonaws.com" || ev["awsRegion"] != testRegion || ev["sourceIPAddress"] != "127.0.0.1" {
			t.Errorf("event %v", ev)
		}
		if _, err := time.Parse(time.RFC3339, ev["eventTime"].(string)); err != nil {
			t.Errorf("eventTime: %v", err)
		}
	}
	if got := strings.Join(names, " "); got != "CreateStream DescribeStream ListStreams ListStreams DescribeStream GenerateDataKey PutMedia" {
		t.Fatalf("events %s", got)
	}
	ok, wrong, unknown, missing, gdk, put := evs[1], evs[2], evs[3], evs[4], evs[5], evs[6]
	// The data key of the stored fragment, generated on behalf of the
	// producer under the stream's (AWS-managed) key.
	def, _ := srv.KMS().DescribeKey(DefaultKMSAlias)
	if gdk["eventSource"] != "kms.amazonaws.com" || gdk["errorCode"] != nil || gdk["requestParameters"].(map[string]any)["keyId"] != def.ARN ||
		gdk["userIdentity"].(map[string]any)["accessKeyId"] != testKey || gdk["userIdentity"].(map[string]any)["invokedBy"] != "kinesisvideo.amazonaws.com" {
		t.Errorf("GenerateDataKey event: %v", gdk)
	}
	id := ok["userIdentity"].(map[string]any)
	if id["type"] != "IAMUser" || id["accessKeyId"] != tokenKey || id["accountId"] != DefaultAccountID || id["arn"] != "arn:aws:iam::123456789012:user/kvslocal" ||
		ok["errorCode"] != nil || ok["requestParameters"].(map[string]any)["StreamName"] != "audited" ||
		ok["responseElements"].(map[string]any)["StreamInfo"].(map[string]any)["StreamName"] != "audited" || ok["readOnly"] != true {
		t.Errorf("success event: %v", ok)
	}
	if wrong["errorCode"] != "InvalidSignatureException" || !strings.HasPrefix(wrong["errorMessage"].(string), "The request signature we calculated") ||
		wrong["userIdentity"].(map[string]any)["accessKeyId"] != tokenKey || wrong["responseElements"] != nil {
		t.Errorf("auth failure event: %v", wrong)
	}
	if unknown["errorCode"] != "UnrecognizedClientException" || unknown["userIdentity"].(map[string]any)["type"] != "Unknown" {
		t.Errorf("unknown key event: %v", unknown)
	}
	if missing["errorCode"] != "ResourceNotFoundException" || missing["errorMessage"] != "The requested stream is not found or not active." {
		t.Errorf("error event: %v", missing)
	}
	pp := put["requestParameters"].(map[string]any)
	if pp["streamName"] != "audited" || pp["fragmentTimecodeType"] != "ABSOLUTE" || put["eventCategory"] != "Data" || put["managementEvent"] != false ||
		put["errorCode"] != nil || put["userIdentity"].(map[string]any)["accessKeyId"] != testKey {
		t.Errorf("PutMedia event: %v", put)
	}
}

// scrub hides secret-looking members in nested objects and in arrays, and
// leaves everything else as it was.
func TestScrub(t *testing.T) {
	var m map[string]any
	in := `{"StreamName":"s","SecretAccessKey":"k1","Inner":{"SessionToken":"k2","Keep":1},` +
		`"Tags":[{"Key":"a","Value":"b"},{"Password":"k3"}],"Nested":[[{"x":{"PrivateKey":"k4"}}],"plain"]}`
	if err := json.Unmarshal([]byte(in), &m); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(scrub(m))
	if err != nil {
		t.Fatal(err)
	}
	const h = `"HIDDEN_DUE_TO_SECURITY_REASONS"`
	want := `{"Inner":{"Keep":1,"SessionToken":` + h + `},"Nested":[[{"x":{"PrivateKey":` + h + `}}],"plain"],` +
		`"SecretAccessKey":` + h + `,"StreamName":"s","Tags":[{"Key":"a","Value":"b"},{"Password":` + h + `}]}`
	if string(out) != want {
		t.Fatalf("scrubbed\n%s\nwant\n%s", out, want)
	}
}
