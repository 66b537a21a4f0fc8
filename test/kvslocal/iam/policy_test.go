package iam

import (
	"encoding/json"
	"testing"
)

func TestResourceMatch(t *testing.T) {
	ctx := map[string]string{VarThingName: "cam1", VarCertificateID: "ab12", "weird": "a*b"}
	cases := []struct {
		pattern, arn string
		want         bool
	}{
		{"arn:aws:kinesisvideo:*:*:stream/${credentials-iot:ThingName}/*", "arn:aws:kinesisvideo:us-west-2:123456789012:stream/cam1/1598784211076", true},
		{"arn:aws:kinesisvideo:*:*:stream/${credentials-iot:ThingName}/*", "arn:aws:kinesisvideo:us-west-2:123456789012:stream/cam2/1598784211076", false},
		{"arn:aws:kinesisvideo:*:*:stream/${credentials-iot:ThingName}/*", "arn:aws:kinesisvideo:us-west-2:123456789012:stream/cam1x/1", false},
		{"arn:aws:kinesisvideo:*:*:stream/${credentials-iot:AwsCertificateId}/*", "arn:aws:kinesisvideo:us-west-2:123456789012:stream/ab12/1", true},
		{"arn:aws:kinesisvideo:*:*:stream/${credentials-iot:ThingTypeName}/*", "arn:aws:kinesisvideo:us-west-2:123456789012:stream/cam1/1", false}, // unresolved: never matches
		{"arn:aws:kinesisvideo:*:*:stream/${credentials-iot:ThingTypeName, 'cam1'}/*", "arn:aws:kinesisvideo:us-west-2:123456789012:stream/cam1/1", true},
		{"arn:aws:kinesisvideo:*:*:stream/*", "arn:aws:kinesisvideo:us-west-2:123456789012:stream/a/b/c", true}, // * crosses '/'
		{"arn:aws:kinesisvideo:*:*:*", "arn:aws:kinesisvideo:us-west-2:1:stream/a/1", true},
		{"arn:aws:kinesisvideo:us-east-1:*:stream/*", "arn:aws:kinesisvideo:us-west-2:1:stream/a/1", false},
		{"arn:aws:kinesisvideo:us-*-2:*:stream/?/*", "arn:aws:kinesisvideo:us-west-2:1:stream/a/1", true},
		{"arn:aws:kinesisvideo:*:123456789012:stream/a/*", "arn:aws:kinesisvideo:us-west-2:999999999999:stream/a/1", false},
		{"arn:aws:kinesisvideo:*:*:stream/${weird}", "arn:aws:kinesisvideo:r:1:stream/aXb", false}, // a value is literal
		{"arn:aws:kinesisvideo:*:*:stream/${weird}", "arn:aws:kinesisvideo:r:1:stream/a*b", true},
		{"arn:aws:kinesisvideo:*:*:stream/${*}", "arn:aws:kinesisvideo:r:1:stream/x", false},
		{"ARN:AWS:KinesisVideo:*:*:stream/a/*", "arn:aws:kinesisvideo:r:1:stream/a/1", true},
		{"arn:aws:kinesisvideo:*:*:stream/A/*", "arn:aws:kinesisvideo:r:1:stream/a/1", false}, // the resource is case-sensitive
		{"*", "arn:aws:kinesisvideo:r:1:stream/a/1", true},
		{"*", "*", true},
		{"arn:aws:kinesisvideo:*:*:stream/a/*", "*", false},
	}
	for _, c := range cases {
		if got := ResourceMatch(c.pattern, c.arn, ctx); got != c.want {
			t.Errorf("ResourceMatch(%q, %q) = %v", c.pattern, c.arn, got)
		}
	}
}

func TestEvaluate(t *testing.T) {
	var allow, deny Policy
	if err := json.Unmarshal([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kinesisvideo:Describe*","kinesisvideo:putmedia"],"Resource":"arn:aws:kinesisvideo:*:*:stream/${credentials-iot:ThingName}/*"}]}`), &allow); err != nil {
		t.Fatal(err)
	}
	// A policy as a string, with a single statement object, as the CLI sends it.
	if err := json.Unmarshal([]byte(`"{\"Statement\":{\"Effect\":\"Deny\",\"Action\":\"kinesisvideo:PutMedia\",\"Resource\":\"*\",\"Condition\":{\"StringEquals\":{\"credentials-iot:ThingTypeName\":\"blocked\"}}}}"`), &deny); err != nil {
		t.Fatal(err)
	}
	arn := "arn:aws:kinesisvideo:us-west-2:123456789012:stream/cam1/1"
	cam1 := map[string]string{VarThingName: "cam1"}
	blocked := map[string]string{VarThingName: "cam1", VarThingTypeName: "blocked"}
	cases := []struct {
		action string
		ctx    map[string]string
		want   Decision
	}{
		{"kinesisvideo:PutMedia", cam1, Allowed},
		{"kinesisvideo:DescribeStream", cam1, Allowed},
		{"kinesisvideo:DeleteStream", cam1, ImplicitDeny},
		{"kinesisvideo:PutMedia", blocked, ExplicitDeny},
		{"kinesisvideo:PutMedia", map[string]string{}, ImplicitDeny},
	}
	for _, c := range cases {
		if got := Evaluate([]Policy{allow, deny}, Request{Action: c.action, Resource: arn, Context: c.ctx}); got != c.want {
			t.Errorf("%s %v: %v, want %v", c.action, c.ctx, got, c.want)
		}
	}
	var bad Policy
	for _, doc := range []string{`{"Statement":[{"Effect":"Maybe","Action":"*"}]}`, `{"Statement":[{"Effect":"Allow"}]}`, `[1]`} {
		if err := json.Unmarshal([]byte(doc), &bad); err == nil {
			t.Errorf("%s accepted", doc)
		}
	}
}
