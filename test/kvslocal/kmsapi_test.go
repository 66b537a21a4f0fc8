package kvslocal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/test/testenv"
)

// cliRun runs awscli v2 against url with the test's keys and returns its
// output parsed (nil if not JSON) and its error code ("" on success).
func cliRun(t *testing.T, url string, env []string, args ...string) (map[string]any, string, string) {
	t.Helper()
	testenv.Tool(t, awsCLI, "awscli")
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, awsCLI, append([]string{"--endpoint-url", url, "--region", testRegion, "--output", "json"}, args...)...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + home, "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=",
		"AWS_CONFIG_FILE=" + filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials")}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("aws %s timed out:\n%s", strings.Join(args, " "), out.String())
	}
	var m map[string]any
	json.Unmarshal(out.Bytes(), &m)
	code := ""
	if err != nil {
		code = "?"
		if _, rest, ok := strings.Cut(out.String(), "An error occurred ("); ok {
			code, _, _ = strings.Cut(rest, ")")
		}
	}
	return m, code, out.String()
}

func jsonShape(v any, prefix string, out map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			out[prefix+"."+k] = true
			jsonShape(x, prefix+"."+k, out)
		}
	case []any:
		for _, x := range v {
			jsonShape(x, prefix+"[]", out)
		}
	}
}

func shapeList(v map[string]any) []string {
	m := map[string]bool{}
	jsonShape(v, "", m)
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// The KMS calls the security model uses, with awscli v2 at the endpoint's
// one URL, answer in moto's shapes (moto: the oracle of shapes only) and
// with AWS's errors; a stream created with --kms-key-id (id, ARN or alias)
// stores every fragment under a data key wrapped by that key, not by
// alias/aws/kinesisvideo; disabling the key refuses the next fragments
// with 4501; a key pending deletion with 4505.
func TestKMSWithAWSCLI(t *testing.T) {
	fx := loadFixture(t)
	motoURL := testenv.Moto(t)
	cfg := testConfig(t.TempDir())
	cfg.AuditLog = filepath.Join(t.TempDir(), "audit.jsonl")
	srv, url := startWith(t, cfg)
	ours := []string{"AWS_ACCESS_KEY_ID=" + testKey, "AWS_SECRET_ACCESS_KEY=" + testSecret}
	motoEnv := []string{"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing"}

	both := func(args func(id string) []string, oursID, motoID string) (map[string]any, string) {
		t.Helper()
		o, oc, oout := cliRun(t, url, ours, args(oursID)...)
		m, mc, mout := cliRun(t, motoURL, motoEnv, args(motoID)...)
		if oc != mc {
			t.Errorf("aws %v: ours %q, moto %q\nours: %s\nmoto: %s", args(oursID), oc, mc, oout, mout)
		}
		os, ms := shapeList(o), shapeList(m)
		// moto reports a few members AWS sends only for other key kinds.
		extraInMoto := map[string]bool{".KeyMetadata.SigningAlgorithms": true, ".KeyMetadata.MacAlgorithms": true, ".KeyMetadata.KeyAgreementAlgorithms": true,
			".Aliases[].CreationDate": true, ".Aliases[].LastUpdatedDate": true}
		for _, p := range ms {
			if !contains(os, p) && !extraInMoto[p] {
				t.Errorf("aws %v: ours lacks %s\nours: %s\nmoto: %s", args(oursID), p, oout, mout)
			}
		}
		// AWS's KeyMetadata has KeyUsage and MultiRegion; moto leaves them out.
		awsNotMoto := map[string]bool{".KeyMetadata.KeyUsage": true, ".KeyMetadata.MultiRegion": true}
		for _, p := range os {
			if !contains(ms, p) && !awsNotMoto[p] {
				t.Errorf("aws %v: ours has %s, moto does not\nours: %s\nmoto: %s", args(oursID), p, oout, mout)
			}
		}
		return o, oc
	}
	none := func(string) []string { return []string{"kms", "create-key", "--description", "cameras"} }
	created, _ := both(none, "", "")
	m, _, _ := cliRun(t, motoURL, motoEnv, "kms", "create-key", "--description", "cameras")
	keyID := created["KeyMetadata"].(map[string]any)["KeyId"].(string)
	keyArn := created["KeyMetadata"].(map[string]any)["Arn"].(string)
	motoID := m["KeyMetadata"].(map[string]any)["KeyId"].(string)
	if !keyARN.MatchString(keyArn) || created["KeyMetadata"].(map[string]any)["KeyState"] != "Enabled" {
		t.Fatalf("create-key: %v", created)
	}
	both(func(id string) []string {
		return []string{"kms", "create-alias", "--alias-name", "alias/cams", "--target-key-id", id}
	}, keyID, motoID)
	both(func(id string) []string { return []string{"kms", "describe-key", "--key-id", id} }, keyID, motoID)
	both(func(string) []string { return []string{"kms", "describe-key", "--key-id", "alias/cams"} }, "", "")
	both(func(string) []string { return []string{"kms", "list-keys"} }, "", "")
	both(func(id string) []string { return []string{"kms", "list-aliases", "--key-id", id} }, keyID, motoID)
	both(func(string) []string {
		return []string{"kms", "describe-key", "--key-id", "00000000-0000-4000-8000-000000000000"}
	}, "", "") // NotFoundException
	both(func(string) []string {
		return []string{"kms", "create-alias", "--alias-name", "alias/cams", "--target-key-id", "alias/cams"}
	}, "", "")
	if _, c := both(func(id string) []string {
		return []string{"kms", "create-alias", "--alias-name", "alias/cams", "--target-key-id", id}
	}, keyID, motoID); c != "AlreadyExistsException" {
		t.Errorf("create-alias twice: %q", c)
	}
	both(func(id string) []string { return []string{"kms", "disable-key", "--key-id", id} }, keyID, motoID)
	both(func(id string) []string { return []string{"kms", "enable-key", "--key-id", id} }, keyID, motoID)

	// Streams under the key, named by id, ARN and alias; one under the default.
	for name, ref := range map[string]string{"byid": keyID, "byarn": keyArn, "byalias": "alias/cams"} {
		if _, c, out := cliRun(t, url, ours, "kinesisvideo", "create-stream", "--stream-name", name, "--data-retention-in-hours", "1", "--kms-key-id", ref); c != "" {
			t.Fatalf("create-stream --kms-key-id %s: %s", ref, out)
		}
	}
	createStream(t, url, "default", 1)
	def := ""
	for _, name := range []string{"byid", "byarn", "byalias", "default"} {
		putAll(t, url, putOptions{stream: name}, body(fx, fx.cluster(0), fx.data[fx.eofr:]), "PERSISTED", 1)
		frags, _ := srv.store.fragments(name)
		if len(frags) != 1 || frags[0].DataKey == nil {
			t.Fatalf("%s: %v", name, frags)
		}
		got := frags[0].DataKey.KeyID
		if name == "default" {
			def = got
			if got == keyID {
				t.Fatalf("the default stream's data key is wrapped by the customer key")
			}
			continue
		}
		if got != keyID {
			t.Fatalf("%s: data key wrapped by %s, want the customer key %s", name, got, keyID)
		}
		if chunks := getMediaFrames(t, url, name); len(chunks) != 1 || !bytes.Equal(chunks[0].blocks[0], fx.payloads[0]) {
			t.Fatalf("%s: GetMedia gave %d chunks", name, len(chunks))
		}
	}
	if di, err := srv.KMS().DescribeKey(DefaultKMSAlias); err != nil || di.KeyID != def {
		t.Fatalf("the default stream's key %s is not alias/aws/kinesisvideo's: %+v %v", def, di, err)
	}

	// Disabled while streaming: the next fragments are refused with 4501.
	if _, c, out := cliRun(t, url, ours, "kms", "disable-key", "--key-id", "alias/cams"); c != "" {
		t.Fatal(out)
	}
	if acks := putAll(t, url, putOptions{stream: "byalias"}, body(fx, fx.cluster(1)), "", 0); ackTypes(acks) != "ERROR/4501" {
		t.Fatalf("a fragment under a disabled key: %v", acks)
	}
	cliRun(t, url, ours, "kms", "enable-key", "--key-id", keyID)
	sched, c, out := cliRun(t, url, ours, "kms", "schedule-key-deletion", "--key-id", keyID, "--pending-window-in-days", "7")
	if c != "" || sched["KeyState"] != "PendingDeletion" || sched["KeyId"] != keyArn {
		t.Fatalf("schedule-key-deletion: %s", out)
	}
	if acks := putAll(t, url, putOptions{stream: "byid"}, body(fx, fx.cluster(1)), "", 0); ackTypes(acks) != "ERROR/4505" {
		t.Fatalf("a fragment under a key pending deletion: %v", acks)
	}
	for _, args := range [][]string{{"kms", "enable-key", "--key-id", keyID}, {"kms", "schedule-key-deletion", "--key-id", keyID}, {"kms", "disable-key", "--key-id", keyID}} {
		if _, c, out := cliRun(t, url, ours, args...); c != "KMSInvalidStateException" {
			t.Errorf("%v on a key pending deletion: %s", args, out)
		}
	}
	d, _, _ := cliRun(t, url, ours, "kms", "describe-key", "--key-id", keyID)
	if md := d["KeyMetadata"].(map[string]any); md["KeyState"] != "PendingDeletion" || md["DeletionDate"] == nil || md["Enabled"] != false {
		t.Fatalf("describe-key of a key pending deletion: %v", d)
	}
	if _, c, out := cliRun(t, url, ours, "kms", "cancel-key-deletion", "--key-id", keyID); c != "" {
		t.Fatal(out)
	}
	if ki, _ := srv.KMS().DescribeKey(keyID); ki.State != KeyDisabled {
		t.Fatalf("after cancel-key-deletion: %s, want Disabled as in KMS", ki.State)
	}
	// Bad input: an unknown operation, a JSON body that is not an object.
	for _, args := range [][]string{{"kms", "disable-key", "--key-id", "alias/aws/kinesisvideo"}, {"kms", "create-alias", "--alias-name", "alias/aws/x", "--target-key-id", keyID}} {
		if _, c, out := cliRun(t, url, ours, args...); c != "NotAuthorizedException" {
			t.Errorf("%v: %s", args, out)
		}
	}

	srv.Close()
	evs, _ := readAudit(t, cfg.AuditLog)
	count := map[string]int{}
	for _, ev := range evs {
		if ev["eventSource"] != "kms.amazonaws.com" {
			continue
		}
		k := ev["eventName"].(string)
		if rp, ok := ev["requestParameters"].(map[string]any); ok && rp["keyId"] == keyArn {
			k += " " + keyArn
		}
		if ev["errorCode"] != nil {
			k += " " + ev["errorCode"].(string)
		}
		count[k]++
	}
	for k, n := range map[string]int{"CreateKey": 1, "DisableKey": 2, "GenerateDataKey " + keyArn: 3, "Decrypt " + keyArn: 3,
		"GenerateDataKey " + keyArn + " DisabledException": 1, "GenerateDataKey " + keyArn + " KMSInvalidStateException": 1,
		"EnableKey KMSInvalidStateException": 1, "DescribeKey NotFoundException": 1} {
		if count[k] != n {
			t.Errorf("audit: %d %q events, want %d (all: %v)", count[k], k, n, count)
		}
	}
}

// denyKMS is an Authorizer that denies the actions set.
type denyKMS struct {
	mu     sync.Mutex
	denied map[string]bool
}

func (d *denyKMS) set(action string, deny bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.denied[action] = deny
}

func (d *denyKMS) Credential(string) (Credential, bool) { return Credential{}, false }
func (d *denyKMS) Authorize(r AuthzRequest) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.denied[r.Action] {
		return errors.New("User: test is not authorized to perform: " + r.Action + " on resource: " + r.Resource)
	}
	return nil
}

// Under a customer-managed key the producer needs kms:GenerateDataKey (else
// 4500 KMS_KEY_ACCESS_DENIED) and the consumer kms:Decrypt on it; the
// AWS-managed default key needs neither.
func TestKMSPermissionsOfCustomerKeys(t *testing.T) {
	fx := loadFixture(t)
	cfg := testConfig(t.TempDir())
	deny := &denyKMS{denied: map[string]bool{}}
	cfg.Authorizer = deny
	srv, url := startWith(t, cfg)
	key, _ := srv.KMS().CreateKey("cameras")
	signedPost(t, url, "/createStream", map[string]any{"StreamName": "cmk", "KmsKeyId": key.ARN, "DataRetentionInHours": 1}).Body.Close()
	createStream(t, url, "managed", 1)
	deny.set("kms:GenerateDataKey", true)
	deny.set("kms:Decrypt", true)
	acks := putAll(t, url, putOptions{stream: "cmk"}, body(fx, fx.cluster(0)), "", 0)
	if ackTypes(acks) != "ERROR/4500" || !strings.Contains(acks[0].raw, `"ErrorCode":"KMS_KEY_ACCESS_DENIED"`) {
		t.Fatalf("PutMedia without kms:GenerateDataKey: %v", acks)
	}
	putAll(t, url, putOptions{stream: "managed"}, body(fx, fx.cluster(0), fx.data[fx.eofr:]), "PERSISTED", 1)
	if got := getMediaFrames(t, url, "managed"); len(got) != 1 {
		t.Fatalf("the AWS-managed key needed a KMS permission: %d chunks", len(got))
	}
	deny.set("kms:GenerateDataKey", false)
	putAll(t, url, putOptions{stream: "cmk"}, body(fx, fx.cluster(0), fx.data[fx.eofr:]), "PERSISTED", 1)
	resp := signedPost(t, url, "/getMedia", map[string]any{"StreamName": "cmk", "StartSelector": map[string]string{"StartSelectorType": "EARLIEST"}})
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("x-amzn-ErrorType"), "AccessDeniedException") {
		t.Fatalf("GetMedia without kms:Decrypt: %d %s", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"))
	}
	deny.set("kms:Decrypt", false)
	if got := getMediaFrames(t, url, "cmk"); len(got) != 1 {
		t.Fatalf("GetMedia with kms:Decrypt: %d chunks", len(got))
	}
	// The KMS API itself is authorized as kms:<Operation>.
	deny.set("kms:CreateKey", true)
	if _, c, out := cliRun(t, url, []string{"AWS_ACCESS_KEY_ID=" + testKey, "AWS_SECRET_ACCESS_KEY=" + testSecret}, "kms", "create-key"); c != "AccessDeniedException" {
		t.Fatalf("create-key denied: %s", out)
	}
}
