package kvs

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

const (
	persistedAck = `{"EventType":"PERSISTED","FragmentTimecode":1584744514887,"FragmentNumber":"91343852333191697455860699043390064069604354508"}`
	errorAck     = `{"EventType":"ERROR","FragmentTimecode":1565810137603,"FragmentNumber":"91343852333181432392682062607743920146264264921","ErrorCode":"MAX_FRAGMENT_DURATION_REACHED","ErrorId":4002}`
)

func TestParseAck(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Ack
		wantErr string // substring; "" means success
	}{
		{name: "persisted", in: persistedAck,
			want: Ack{EventType: AckPersisted, FragmentTimecode: 1584744514887, FragmentNumber: "91343852333191697455860699043390064069604354508"}},
		{name: "error", in: errorAck,
			want: Ack{EventType: AckErrorEvent, FragmentTimecode: 1565810137603, FragmentNumber: "91343852333181432392682062607743920146264264921", ErrorID: 4002, ErrorCode: "MAX_FRAGMENT_DURATION_REACHED"}},
		{name: "buffering", in: `{"EventType":"BUFFERING","FragmentTimecode":0,"FragmentNumber":"1"}`,
			want: Ack{EventType: AckBuffering, FragmentNumber: "1"}},
		{name: "received", in: `{"EventType":"RECEIVED","FragmentTimecode":18446744073709551615,"FragmentNumber":"2"}`,
			want: Ack{EventType: AckReceived, FragmentTimecode: 18446744073709551615, FragmentNumber: "2"}},
		{name: "idle alone", in: `{"EventType":"IDLE"}`, want: Ack{EventType: AckIdle}},
		{name: "whitespace everywhere", in: " \n{ \"EventType\" :\t\"IDLE\" ,\r\n \"FragmentTimecode\" : 5 }\n ",
			want: Ack{EventType: AckIdle, FragmentTimecode: 5}},
		{name: "key order free", in: `{"ErrorId":5000,"FragmentNumber":"7","EventType":"ERROR"}`,
			want: Ack{EventType: AckErrorEvent, FragmentNumber: "7", ErrorID: 5000}},
		{name: "unknown keys ignored", in: `{"Future":1,"EventType":"RECEIVED","Other":"x","Null":null,"Bool":true,"FragmentNumber":"3"}`,
			want: Ack{EventType: AckReceived, FragmentNumber: "3"}},
		{name: "nested objects skipped", in: `{"Meta":{"EventType":"ERROR","a":[1,{"b":"}"}]},"EventType":"PERSISTED","List":[[],{}],"FragmentNumber":"4"}`,
			want: Ack{EventType: AckPersisted, FragmentNumber: "4"}},
		{name: "escaped key", in: `{"Event\u0054ype":"IDLE"}`, want: Ack{EventType: AckIdle}},
		{name: "128 digits", in: `{"EventType":"RECEIVED","FragmentNumber":"` + strings.Repeat("9", 128) + `"}`,
			want: Ack{EventType: AckReceived, FragmentNumber: strings.Repeat("9", 128)}},
		{name: "ErrorId on a non-error ack kept", in: `{"EventType":"PERSISTED","ErrorId":0}`, want: Ack{EventType: AckPersisted}},

		{name: "empty", in: ``, wantErr: "not a JSON object"},
		{name: "garbage", in: `hello`, wantErr: "not a JSON object"},
		{name: "array", in: `[{"EventType":"IDLE"}]`, wantErr: "not a JSON object"},
		{name: "truncated", in: `{"EventType":"PERSISTED","FragmentTimecode":15847`, wantErr: "malformed"},
		{name: "truncated string", in: `{"EventType":"PERSI`, wantErr: "malformed"},
		{name: "missing colon", in: `{"EventType" "IDLE"}`, wantErr: "malformed"},
		{name: "trailing comma", in: `{"EventType":"IDLE",}`, wantErr: "malformed"},
		{name: "two objects", in: `{"EventType":"IDLE"}{"EventType":"IDLE"}`, wantErr: "data after the object"},
		{name: "trailing garbage", in: `{"EventType":"IDLE"} x`, wantErr: "data after the object"},
		{name: "duplicate known key", in: `{"EventType":"IDLE","EventType":"ERROR"}`, wantErr: `duplicate key "EventType"`},
		{name: "duplicate escaped key", in: `{"FragmentTimecode":1,"Fragment\u0054imecode":2,"EventType":"IDLE"}`, wantErr: `duplicate key "FragmentTimecode"`},
		{name: "duplicate unknown key", in: `{"EventType":"IDLE","x":1,"x":2}`, wantErr: `duplicate key "x"`},
		{name: "no event type", in: `{"FragmentTimecode":1}`, wantErr: "no EventType"},
		{name: "null event type", in: `{"EventType":null}`, wantErr: "EventType is not a string"},
		{name: "unknown event type", in: `{"EventType":"DONE"}`, wantErr: `unknown EventType "DONE"`},
		{name: "lower-case event type", in: `{"EventType":"persisted"}`, wantErr: "unknown EventType"},
		{name: "event type number", in: `{"EventType":3}`, wantErr: "EventType is not a string"},
		{name: "event type object", in: `{"EventType":{"a":1}}`, wantErr: "EventType is not a string"},
		{name: "ERROR without ErrorId", in: `{"EventType":"ERROR","FragmentTimecode":1,"FragmentNumber":"1"}`, wantErr: "ERROR without ErrorId"},
		{name: "ERROR with ErrorId 0", in: `{"EventType":"ERROR","ErrorId":0}`, wantErr: "ERROR without ErrorId"},
		{name: "ErrorId string", in: `{"EventType":"ERROR","ErrorId":"4002"}`, wantErr: "ErrorId"},
		{name: "ErrorId negative", in: `{"EventType":"ERROR","ErrorId":-1}`, wantErr: "ErrorId -1"},
		{name: "ErrorId fraction", in: `{"EventType":"ERROR","ErrorId":4002.5}`, wantErr: "ErrorId"},
		{name: "ErrorId huge", in: `{"EventType":"ERROR","ErrorId":99999999999}`, wantErr: "ErrorId"},
		{name: "timecode negative", in: `{"EventType":"IDLE","FragmentTimecode":-5}`, wantErr: "FragmentTimecode -5"},
		{name: "timecode overflow", in: `{"EventType":"IDLE","FragmentTimecode":18446744073709551616}`, wantErr: "FragmentTimecode"},
		{name: "timecode float", in: `{"EventType":"IDLE","FragmentTimecode":1.5}`, wantErr: "FragmentTimecode"},
		{name: "timecode exponent", in: `{"EventType":"IDLE","FragmentTimecode":1e3}`, wantErr: "FragmentTimecode"},
		{name: "timecode string", in: `{"EventType":"IDLE","FragmentTimecode":"15"}`, wantErr: "FragmentTimecode"},
		{name: "fragment number 129 digits", in: `{"EventType":"RECEIVED","FragmentNumber":"` + strings.Repeat("1", 129) + `"}`, wantErr: "FragmentNumber"},
		{name: "fragment number empty", in: `{"EventType":"RECEIVED","FragmentNumber":""}`, wantErr: "FragmentNumber"},
		{name: "fragment number letters", in: `{"EventType":"RECEIVED","FragmentNumber":"12a"}`, wantErr: "FragmentNumber"},
		{name: "fragment number number", in: `{"EventType":"RECEIVED","FragmentNumber":12}`, wantErr: "FragmentNumber"},
		{name: "ErrorCode number", in: `{"EventType":"ERROR","ErrorId":4000,"ErrorCode":1}`, wantErr: "ErrorCode"},
		{name: "invalid json literal", in: `{"EventType":"IDLE","x":tru}`, wantErr: "malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAck([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("got %+v, want an error containing %q", got, tc.wantErr)
				}
				if !errors.Is(err, ErrMalformedAck) {
					t.Errorf("%v does not wrap ErrMalformedAck", err)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %q does not contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseAckHugeInput(t *testing.T) {
	// ParseAck itself takes whatever it is given (AckDecoder bounds it): a
	// megabyte of nesting or a huge string must fail or succeed, not crash.
	deep := strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000)
	if _, err := ParseAck([]byte(deep)); err == nil {
		t.Error("deep nesting accepted")
	}
	big := `{"EventType":"IDLE","x":"` + strings.Repeat("a", 1<<20) + `"}`
	if a, err := ParseAck([]byte(big)); err != nil || a.EventType != AckIdle {
		t.Errorf("big unknown value: %+v, %v", a, err)
	}
	if _, err := ParseAck([]byte(`{"EventType":"` + strings.Repeat("A", 1<<20) + `"}`)); err == nil || len(err.Error()) > 300 {
		t.Errorf("huge EventType: error %d bytes", len(err.Error()))
	}
}

func decodeAll(t *testing.T, d *AckDecoder) ([]Ack, []error) {
	t.Helper()
	var acks []Ack
	var errs []error
	for i := 0; i < 1000; i++ {
		a, err := d.Next()
		if err == io.EOF {
			return acks, errs
		}
		if err != nil {
			errs = append(errs, err)
			if len(errs) > 1 && errs[len(errs)-1] == errs[len(errs)-2] {
				return acks, errs // sticky
			}
			continue
		}
		acks = append(acks, a)
	}
	t.Fatal("decoder does not terminate")
	return nil, nil
}

func TestAckDecoder(t *testing.T) {
	stream := persistedAck + "\n" + errorAck + "\r\n\n" + `{"EventType":"IDLE"}{"EventType":"BUFFERING","FragmentNumber":"5","X":{"y":"}\"{"}}` + "  \t\n"
	for name, r := range map[string]io.Reader{
		"whole":    strings.NewReader(stream),
		"one byte": iotest.OneByteReader(strings.NewReader(stream)),
		"half":     iotest.HalfReader(strings.NewReader(stream)),
	} {
		t.Run(name, func(t *testing.T) {
			acks, errs := decodeAll(t, NewAckDecoder(r, 0))
			if len(errs) != 0 {
				t.Fatalf("errors: %v", errs)
			}
			want := []AckEventType{AckPersisted, AckErrorEvent, AckIdle, AckBuffering}
			if len(acks) != len(want) {
				t.Fatalf("got %d acks: %+v", len(acks), acks)
			}
			for i, a := range acks {
				if a.EventType != want[i] {
					t.Errorf("ack %d: %s, want %s", i, a.EventType, want[i])
				}
			}
			if acks[1].ErrorID != 4002 || acks[3].FragmentNumber != "5" {
				t.Errorf("fields: %+v", acks)
			}
		})
	}
}

func TestAckDecoderErrors(t *testing.T) {
	t.Run("empty stream", func(t *testing.T) {
		if _, err := NewAckDecoder(strings.NewReader(" \n"), 0).Next(); err != io.EOF {
			t.Fatalf("got %v, want io.EOF", err)
		}
	})
	t.Run("invalid ack is skipped", func(t *testing.T) {
		d := NewAckDecoder(strings.NewReader(`{"EventType":"NEW"}`+"\n"+`{"EventType":"ERROR"}`+"\n"+persistedAck), 0)
		if _, err := d.Next(); err == nil || !strings.Contains(err.Error(), `unknown EventType "NEW"`) {
			t.Fatalf("first: %v", err)
		}
		if _, err := d.Next(); err == nil || !strings.Contains(err.Error(), "ERROR without ErrorId") {
			t.Fatalf("second: %v", err)
		}
		if a, err := d.Next(); err != nil || a.EventType != AckPersisted {
			t.Fatalf("third: %+v, %v", a, err)
		}
		if _, err := d.Next(); err != io.EOF {
			t.Fatalf("end: %v", err)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		d := NewAckDecoder(strings.NewReader(persistedAck+"\n"+persistedAck[:40]), 0)
		if _, err := d.Next(); err != nil {
			t.Fatal(err)
		}
		_, err := d.Next()
		if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, ErrMalformedAck) {
			t.Fatalf("got %v, want ErrUnexpectedEOF and ErrMalformedAck", err)
		}
		if _, err2 := d.Next(); err2 != err {
			t.Fatalf("not sticky: %v", err2)
		}
	})
	t.Run("garbage between acks", func(t *testing.T) {
		d := NewAckDecoder(strings.NewReader(persistedAck+"\nHTTP/1.1 200 OK\n"+persistedAck), 0)
		if _, err := d.Next(); err != nil {
			t.Fatal(err)
		}
		_, err := d.Next()
		if err == nil || !strings.Contains(err.Error(), `unexpected byte 'H'`) {
			t.Fatalf("got %v", err)
		}
		if _, err2 := d.Next(); err2 != err {
			t.Fatalf("not sticky: %v", err2)
		}
	})
	t.Run("huge line bounded", func(t *testing.T) {
		// An endless object: the decoder must stop after maxLen bytes
		// instead of buffering everything.
		r := &countingReader{r: io.MultiReader(strings.NewReader(`{"EventType":"IDLE","x":"`), endless('a'))}
		_, err := NewAckDecoder(r, 1024).Next()
		if err == nil || !strings.Contains(err.Error(), "longer than 1024 bytes") {
			t.Fatalf("got %v", err)
		}
		if r.n > 1024+8192 {
			t.Errorf("read %d bytes for a 1024-byte bound", r.n)
		}
	})
	t.Run("object at the bound", func(t *testing.T) {
		a := `{"EventType":"IDLE"}`
		if _, err := NewAckDecoder(strings.NewReader(a), len(a)).Next(); err != nil {
			t.Fatalf("exact size: %v", err)
		}
		if _, err := NewAckDecoder(strings.NewReader(a), len(a)-1).Next(); err == nil {
			t.Fatal("one byte over accepted")
		}
	})
	t.Run("read error", func(t *testing.T) {
		boom := errors.New("connection reset")
		d := NewAckDecoder(io.MultiReader(strings.NewReader(persistedAck), iotest.ErrReader(boom)), 0)
		if _, err := d.Next(); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Next(); !errors.Is(err, boom) {
			t.Fatalf("got %v", err)
		}
	})
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

type endless byte

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(e)
	}
	return len(p), nil
}

func TestLookupAckError(t *testing.T) {
	// kvssink.md §4.3: retried only for 4000, 4003, 5000, 5001 and unknown ids.
	retriable := map[int]bool{4000: true, 4003: true, 5000: true, 5001: true}
	ids := []int{5000, 5001}
	for id := 4000; id <= 4012; id++ {
		ids = append(ids, id)
	}
	for id := 4500; id <= 4507; id++ {
		ids = append(ids, id)
	}
	names := map[string]int{}
	for _, id := range ids {
		info := LookupAckError(id)
		if info.ID != id || info.Name == "" || info.Name == "UNKNOWN_ACK_ERROR" {
			t.Errorf("%d: %+v", id, info)
		}
		if info.Retriable != retriable[id] {
			t.Errorf("%d %s: retriable %v", id, info.Name, info.Retriable)
		}
		if prev, dup := names[info.Name]; dup {
			t.Errorf("%d and %d share the name %s", prev, id, info.Name)
		}
		names[info.Name] = id
	}
	for id, want := range map[int]string{4002: "FRAGMENT_DURATION_REACHED", 4004: "FRAGMENT_TIMECODE_NOT_MONOTONIC", 4006: "INVALID_MKV_DATA", 4507: "STREAM_DELETED", 5000: "ACK_INTERNAL_ERROR"} {
		if got := LookupAckError(id).Name; got != want {
			t.Errorf("%d: %s, want %s", id, got, want)
		}
	}
	for _, id := range []int{0, 1, 3999, 4013, 4499, 4508, 4999, 5002, 7000, -1} {
		if info := LookupAckError(id); info.Name != "UNKNOWN_ACK_ERROR" || !info.Retriable || info.ID != id {
			t.Errorf("%d: %+v", id, info)
		}
	}
}

// checkAck holds for every ack ParseAck accepts.
func checkAck(t *testing.T, a Ack) {
	t.Helper()
	switch a.EventType {
	case AckBuffering, AckReceived, AckPersisted, AckIdle:
	case AckErrorEvent:
		if a.ErrorID <= 0 {
			t.Fatalf("ERROR ack with ErrorId %d", a.ErrorID)
		}
	default:
		t.Fatalf("accepted EventType %q", a.EventType)
	}
	if a.FragmentNumber != "" && !digits(a.FragmentNumber) {
		t.Fatalf("accepted FragmentNumber %q", a.FragmentNumber)
	}
	if a.ErrorID < 0 {
		t.Fatalf("negative ErrorId %d", a.ErrorID)
	}
}

func FuzzParseAck(f *testing.F) {
	for _, s := range []string{persistedAck, errorAck, `{"EventType":"IDLE"}`, `{"a":{"b":[1,2,{"c":"}"}]},"EventType":"RECEIVED"}`,
		`{"EventType":"ERROR","ErrorId":0}`, `{"EventType":"IDLE","EventType":"IDLE"}`, `{"FragmentTimecode":18446744073709551615,"EventType":"IDLE"}`, `{`, ``, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAck(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedAck) {
				t.Fatalf("error %v does not wrap ErrMalformedAck", err)
			}
			if len(err.Error()) > 512 {
				t.Fatalf("error text of %d bytes", len(err.Error()))
			}
			return
		}
		checkAck(t, a)
		if !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		// Round trip: what we accept, re-encoded, parses to the same ack.
		m := map[string]any{"EventType": string(a.EventType), "FragmentTimecode": a.FragmentTimecode}
		if a.FragmentNumber != "" {
			m["FragmentNumber"] = a.FragmentNumber
		}
		if a.ErrorID != 0 {
			m["ErrorId"] = a.ErrorID
		}
		if a.ErrorCode != "" {
			m["ErrorCode"] = a.ErrorCode
		}
		re, _ := json.Marshal(m)
		b2, err := ParseAck(re)
		if err != nil || b2 != a {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", re, b2, err, a)
		}
	})
}

func FuzzAckDecoder(f *testing.F) {
	f.Add([]byte(persistedAck+"\n"+errorAck+"\n"+`{"EventType":"IDLE"}`), uint16(0))
	f.Add([]byte(`{"EventType":"IDLE"}{"EventType":"IDLE"}`), uint16(20))
	f.Add([]byte(`{"x":"\"}"}`+"\n"+`{"EventType":"BUFFERING"}`), uint16(30))
	f.Add([]byte("{[}]}\n{\"EventType\":\"IDLE\"}"), uint16(5))
	f.Add([]byte(`{"EventType":"PERSI`), uint16(100))
	f.Fuzz(func(t *testing.T, b []byte, max uint16) {
		limit := int(max % 2048)
		d := NewAckDecoder(iotest.HalfReader(bytes.NewReader(b)), limit)
		var last error
		for i := 0; i <= len(b)+1; i++ {
			a, err := d.Next()
			if err == nil {
				checkAck(t, a)
				continue
			}
			if err == io.EOF {
				return
			}
			if !errors.Is(err, ErrMalformedAck) {
				t.Fatalf("error %v does not wrap ErrMalformedAck", err)
			}
			if err == last {
				return // sticky framing error
			}
			last = err
		}
		t.Fatalf("no end after %d calls on %d bytes", len(b)+2, len(b))
	})
}

func BenchmarkParseAck(b *testing.B) {
	for _, bc := range []struct{ name, in string }{{"persisted", persistedAck}, {"error", errorAck}, {"idle", `{"EventType":"IDLE"}`}} {
		in := []byte(bc.in)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, err := ParseAck(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAckDecoder(b *testing.B) {
	stream := []byte(strings.Repeat(`{"EventType":"BUFFERING","FragmentTimecode":1584744514887,"FragmentNumber":"91343852333191697455860699043390064069604354508"}`+"\n"+
		`{"EventType":"RECEIVED","FragmentTimecode":1584744514887,"FragmentNumber":"91343852333191697455860699043390064069604354508"}`+"\n"+
		persistedAck+"\n", 100))
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		d := NewAckDecoder(bytes.NewReader(stream), 0)
		for {
			if _, err := d.Next(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
	}
}

// The acknowledgements the service sends take the decoder-free path.
func TestCanonicalAcksTakeTheFastPath(t *testing.T) {
	for _, s := range []string{persistedAck, errorAck, `{"EventType":"IDLE"}`,
		`{"EventType":"BUFFERING","FragmentTimecode":1584744514887,"FragmentNumber":"91343852333191697455860699043390064069604354508"}`} {
		a, _, ok := parseCanonicalAck([]byte(s))
		if !ok {
			t.Fatalf("%s: not read by parseCanonicalAck", s)
		}
		want, err := parseAckJSON([]byte(s))
		if err != nil || a != want {
			t.Fatalf("%s: %+v, the decoder read %+v (%v)", s, a, want, err)
		}
	}
	for _, s := range []string{`{ "EventType":"IDLE"}`, `{"EventType":"ID\u004cE"}`, `{"EventType":"IDLE","EventType":"IDLE"}`,
		`{"EventType":"IDLE","x":1}`, `{"FragmentTimecode":01,"EventType":"IDLE"}`, `{"EventType":"IDLE",}`, `{"ErrorId":2147483648}`} {
		if _, _, ok := parseCanonicalAck([]byte(s)); ok {
			t.Fatalf("%s: read by parseCanonicalAck, which takes the service's form only", s)
		}
	}
}

// Whatever parseCanonicalAck reads, the JSON decoder reads the same way,
// errors included.
func FuzzCanonicalAck(f *testing.F) {
	for _, s := range []string{persistedAck, errorAck, `{"EventType":"IDLE"}`, `{}`, `{"EventType":"ERROR","ErrorId":0}`,
		`{"FragmentTimecode":18446744073709551615,"EventType":"IDLE"}`, `{"ErrorCode":"x","EventType":"NOPE"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, seen, ok := parseCanonicalAck(b)
		if !ok {
			return
		}
		err := validateAck(&a, seen)
		want, werr := parseAckJSON(b)
		if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
			t.Fatalf("%q: error %v, the decoder's %v", b, err, werr)
		}
		if err == nil && a != want {
			t.Fatalf("%q: %+v, the decoder read %+v", b, a, want)
		}
	})
}
