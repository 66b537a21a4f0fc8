package iam

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/kvsgo/kvsgo/test/testenv"
)

// elementPaths lists the element paths of an XML document (a/b/c), sorted,
// without values: the shape a client parses.
func elementPaths(t *testing.T, b []byte) []string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	var stack []string
	seen := map[string]bool{}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%v in %s", err, b)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			stack = append(stack, e.Name.Local)
			seen[strings.Join(stack, "/")] = true
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func stsCall(t *testing.T, url, form, key, secret string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	h := sha256.Sum256([]byte(form))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: key, SecretAccessKey: secret}, req, hex.EncodeToString(h[:]), "sts", DefaultRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// moto_server (preinstalled; local-aws.md §1) is the shape oracle for STS:
// our AssumeRole and GetCallerIdentity answers have the same elements.
func TestSTSShapesMatchMoto(t *testing.T) {
	motoURL := testenv.Moto(t)
	e := setup(t, WalkthroughOptions{}, func(f *File, _ *CA, _ string) {
		f.Roles = append(f.Roles, Role{Name: "R", TrustPolicy: Policy{Statement: []Statement{{Effect: "Allow", Action: strings_{"sts:AssumeRole"},
			Principal: &Principal{AWS: []string{"arn:aws:iam::123456789012:user/admin"}}}}}})
	})
	calls := []string{
		"Action=GetCallerIdentity&Version=2011-06-15",
		"Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2FR&RoleSessionName=s1",
	}
	for _, form := range calls {
		ms, mb := stsCall(t, motoURL, form, adminKey, adminSecret)
		os, ob := stsCall(t, e.stsURL, form, adminKey, adminSecret)
		if ms != 200 || os != 200 {
			t.Fatalf("%s: moto %d, ours %d\n%s\n%s", form, ms, os, mb, ob)
		}
		mp, op := elementPaths(t, mb), elementPaths(t, ob)
		// moto adds PackedPolicySize and SourceIdentity that clients ignore.
		var missing []string
		for _, p := range mp {
			if !contains(op, p) && !strings.HasSuffix(p, "/PackedPolicySize") && !strings.HasSuffix(p, "/SourceIdentity") {
				missing = append(missing, p)
			}
		}
		var extra []string
		for _, p := range op {
			if !contains(mp, p) {
				extra = append(extra, p)
			}
		}
		if len(missing) > 0 || len(extra) > 0 {
			t.Errorf("%s: missing %v, extra %v\nmoto: %s\nours: %s", form, missing, extra, mb, ob)
		}
	}
}
