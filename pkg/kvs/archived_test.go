package kvs

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestListFragments(t *testing.T) {
	var pages []map[string]json.RawMessage
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, err := verifySigV4(r, hashHex(body), testSecret, testRegion); err != nil || r.URL.Path != "/listFragments" {
			t.Errorf("%s: %v", r.URL.Path, err)
		}
		var m map[string]json.RawMessage
		json.Unmarshal(body, &m)
		pages = append(pages, m)
		if len(pages) == 1 {
			io.WriteString(w, `{"Fragments":[{"FragmentNumber":"12","FragmentSizeInBytes":9,"ProducerTimestamp":1800000001.5,"ServerTimestamp":1800000002,"FragmentLengthInMilliseconds":500},`+
				`{"FragmentNumber":"11","ProducerTimestamp":1800000001.0}],"NextToken":"tok"}`)
			return
		}
		io.WriteString(w, `{"Fragments":[{"FragmentNumber":"9","ProducerTimestamp":1800000000.25},{"FragmentNumber":"12","ProducerTimestamp":1800000001.5}]}`)
	}))
	defer srv.Close()
	cfg := ArchiveConfig{Endpoint: srv.URL, StreamName: "cam1", Region: testRegion, Credentials: testCreds(), Now: func() time.Time { return time.Now() }}
	l, err := ListFragments(context.Background(), cfg, ListFragmentsInput{Start: time.Unix(1800000000, 0), End: time.Unix(1800000010, 0)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range l {
		got = append(got, f.Number)
	}
	if strings.Join(got, ",") != "9,11,12" || !l[0].ProducerTimestamp.Equal(time.UnixMilli(1800000000250)) || l[2].Duration != 500*time.Millisecond {
		t.Errorf("fragments %+v: want 9, 11, 12 in producer-time order, deduplicated", l)
	}
	if len(pages) != 2 || string(pages[1]["NextToken"]) != `"tok"` || !strings.Contains(string(pages[0]["FragmentSelector"]), `"FragmentSelectorType":"PRODUCER_TIMESTAMP"`) {
		t.Errorf("requests %v", pages)
	}

	_, err = ListFragments(context.Background(), cfg, ListFragmentsInput{Start: time.Unix(10, 0), End: time.Unix(5, 0)})
	if err == nil || !strings.Contains(err.Error(), "ends") {
		t.Errorf("reversed range: %v", err)
	}
	_, err = GetMediaForFragmentList(context.Background(), cfg, []string{"12", "x1"})
	if err == nil || !strings.Contains(err.Error(), `"x1"`) {
		t.Errorf("bad fragment number: %v", err)
	}
}

// FuzzListFragments: any answer is fragments with valid numbers or an
// error; never a panic.
func FuzzListFragments(f *testing.F) {
	f.Add(`{"Fragments":[{"FragmentNumber":"12","ProducerTimestamp":1800000001.5}]}`)
	f.Add(`{"Fragments":[{"FragmentNumber":"x"}]}`)
	f.Add(`{"Fragments":[],"NextToken":""}`)
	f.Add(`{"Fragments":[{"FragmentNumber":"1","ProducerTimestamp":1e300}]}`)
	f.Fuzz(func(t *testing.T, answer string) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, strings.ReplaceAll(answer, `"NextToken"`, `"Ignored"`)) // one page
		}))
		defer srv.Close()
		cfg := ArchiveConfig{Endpoint: srv.URL, StreamName: "cam1", Region: testRegion, Credentials: testCreds()}
		l, err := ListFragments(context.Background(), cfg, ListFragmentsInput{Start: time.Unix(1, 0), End: time.Unix(2, 0)})
		if err != nil {
			var ae *APIError
			if errors.As(err, &ae) {
				t.Fatalf("a 200 answer gave an APIError: %v", err)
			}
			return
		}
		for _, fr := range l {
			if !digits(fr.Number) {
				t.Fatalf("fragment number %q accepted", fr.Number)
			}
		}
	})
}
