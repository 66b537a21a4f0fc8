package kvs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestGetMedia(t *testing.T) {
	payload := bytes.Repeat([]byte("\x1a\x45\xdf\xa3 mkv "), 5000)
	tests := []struct {
		name string
		sel  StartSelector
		want string // the StartSelector JSON the server must see
	}{
		{"earliest", StartSelector{Type: "EARLIEST"}, `{"StartSelectorType":"EARLIEST"}`},
		{"now", StartSelector{Type: "NOW"}, `{"StartSelectorType":"NOW"}`},
		{"fragment", StartSelector{Type: "FRAGMENT_NUMBER", AfterFragmentNumber: "91343852333181432392682062607743920146264264921"},
			`{"AfterFragmentNumber":"91343852333181432392682062607743920146264264921","StartSelectorType":"FRAGMENT_NUMBER"}`},
		{"producer time", StartSelector{Type: "PRODUCER_TIMESTAMP", StartTimestamp: time.Unix(1793491200, 123_400_000)},
			`{"StartSelectorType":"PRODUCER_TIMESTAMP","StartTimestamp":1793491200.123}`},
		{"server time", StartSelector{Type: "SERVER_TIMESTAMP", StartTimestamp: time.Unix(1793491200, 0)},
			`{"StartSelectorType":"SERVER_TIMESTAMP","StartTimestamp":1793491200}`},
		{"token", StartSelector{Type: "CONTINUATION_TOKEN", ContinuationToken: "91343852333181432392682062607743920146264264921"},
			`{"ContinuationToken":"91343852333181432392682062607743920146264264921","StartSelectorType":"CONTINUATION_TOKEN"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if r.Method != http.MethodPost || r.URL.Path != "/getMedia" || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("%s %s %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
				}
				sig, err := verifySigV4(r, hashHex(body), testSecret, testRegion)
				if err != nil {
					t.Error(err)
				} else if sig.Date != "20261123T002242Z" || !contains(sig.SignedHeaders, "x-amz-security-token") || !contains(sig.SignedHeaders, "content-type") {
					t.Errorf("signature %+v", sig)
				}
				var m map[string]json.RawMessage
				if err := json.Unmarshal(body, &m); err != nil {
					t.Fatal(err)
				}
				if string(m["StreamName"]) != `"cam1"` {
					t.Errorf("StreamName %s", m["StreamName"])
				}
				var sel map[string]json.RawMessage // compared with sorted keys, numbers verbatim
				json.Unmarshal(m["StartSelector"], &sel)
				if canon, _ := json.Marshal(sel); string(canon) != tc.want {
					t.Errorf("selector %s, want %s", m["StartSelector"], tc.want)
				}
				w.Header().Set("Content-Type", "video/webm")
				w.Write(payload)
			}))
			defer srv.Close()
			rc, err := GetMedia(context.Background(), GetMediaConfig{Endpoint: srv.URL, StreamName: "cam1", Region: testRegion, Credentials: testCreds(),
				Start: tc.sel, Now: func() time.Time { return signTime }})
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(got, payload) {
				t.Errorf("read %d bytes, %v", len(got), err)
			}
		})
	}
}

func TestGetMediaErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeAWSError(w, 404, "ResourceNotFoundException", "Stream cam1 not found")
	}))
	defer srv.Close()
	cfg := GetMediaConfig{Endpoint: srv.URL, StreamName: "cam1", Region: testRegion, Credentials: testCreds(), Start: StartSelector{Type: "NOW"}}
	_, err := GetMedia(context.Background(), cfg)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Op != "GetMedia" || ae.StatusCode != 404 || !errors.Is(err, ErrStreamNotFound) {
		t.Errorf("got %v", err)
	}

	ep := "http://" + closedPort(t)
	cfg.Endpoint = ep
	if _, err := GetMedia(context.Background(), cfg); err == nil || err.Error() != "GetMedia: connect to "+ep+": connection refused" || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("refused: %v", err)
	}

	for name, sel := range map[string]StartSelector{
		"empty type":      {},
		"unknown type":    {Type: "LATEST"},
		"no fragment":     {Type: "FRAGMENT_NUMBER"},
		"bad fragment":    {Type: "FRAGMENT_NUMBER", AfterFragmentNumber: "12x"},
		"no timestamp":    {Type: "PRODUCER_TIMESTAMP"},
		"no continuation": {Type: "CONTINUATION_TOKEN"},
	} {
		cfg.Start = sel
		if _, err := GetMedia(context.Background(), cfg); err == nil || !strings.HasPrefix(err.Error(), "GetMedia: ") {
			t.Errorf("%s: %v", name, err)
		}
	}
	cfg.Start = StartSelector{Type: "NOW"}
	cfg.Endpoint = "http://kvs.example.com"
	if _, err := GetMedia(context.Background(), cfg); !errors.Is(err, ErrInsecureEndpoint) {
		t.Errorf("remote http: %v", err)
	}
}
