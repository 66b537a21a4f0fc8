package credentials

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func ptr(s string) *string { return &s }

func TestResolvePrecedence(t *testing.T) {
	env := map[string]string{"AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "envsecret", "AWS_SESSION_TOKEN": "envtoken"}
	getenv := func(k string) string { return env[k] }
	noenv := func(string) string { return "" }
	cases := []struct {
		name       string
		src        Sources
		getenv     func(string) string
		wantKey    string
		wantToken  string
		wantSource string
		wantErr    string
	}{
		{"properties win", Sources{AccessKey: ptr("AKIAPROP"), SecretKey: ptr("propsecret")}, getenv, "AKIAPROP", "", "properties", ""},
		{"properties with token", Sources{AccessKey: ptr("AKIAPROP"), SecretKey: ptr("s"), SessionToken: ptr("tok")}, getenv, "AKIAPROP", "tok", "properties", ""},
		{"environment", Sources{}, getenv, "AKIAENV", "envtoken", "environment", ""},
		{"empty strings are unset", Sources{AccessKey: ptr(""), SecretKey: ptr("")}, getenv, "AKIAENV", "envtoken", "environment", ""},
		{"half-set properties", Sources{AccessKey: ptr("AKIAPROP")}, getenv, "", "", "", "is set but secret-key is not"},
		{"nothing", Sources{}, noenv, "", "", "", "no AWS credentials"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := c.src
			src.NoDefaultChain = true
			r, err := Resolve(context.Background(), src, Options{Getenv: c.getenv})
			p, source := r.Provider, r.Source
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Retrieve(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got.AccessKeyID != c.wantKey || got.SessionToken != c.wantToken || source != c.wantSource {
				t.Fatalf("got %s/%s from %s", got.AccessKeyID, got.SessionToken, source)
			}
		})
	}
	if _, err := Resolve(context.Background(), Sources{NoDefaultChain: true}, Options{Getenv: noenv}); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("err = %v", err)
	}
}

func TestSecretsNotPrinted(t *testing.T) {
	p := static{}
	p.c.AccessKeyID, p.c.SecretAccessKey, p.c.SessionToken = "AKIAEXAMPLEKEY", "topsecretvalue", "tokentokentoken"
	for _, s := range []string{p.String(), fmt.Sprintf("%v", p), fmt.Sprint(p)} {
		if strings.Contains(s, "topsecretvalue") || strings.Contains(s, "tokentokentoken") || strings.Contains(s, "EXAMPLEKEY") {
			t.Fatalf("secret in %q", s)
		}
	}
	_, err := Resolve(context.Background(), Sources{AccessKey: ptr("AKIAEXAMPLEKEY")}, Options{Getenv: func(string) string { return "" }})
	if err == nil || strings.Contains(err.Error(), "EXAMPLEKEY") {
		t.Fatalf("error %v shows the key", err)
	}
}
