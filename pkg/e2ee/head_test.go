package e2ee

import (
	"bytes"
	"errors"
	"testing"
)

func testHead() Head {
	return Head{TimecodeScale: 1_000_000, Tracks: []HeadTrack{
		{Number: 1, UID: 1, Type: 1, CodecID: "V_MPEG4/ISO/AVC", CodecPrivate: []byte{1, 2, 3}, PixelWidth: 640, PixelHeight: 360},
		{Number: 2, UID: 2, Type: 2, CodecID: "A_AAC", CodecPrivate: []byte{0x12, 0x10}, SamplingFrequency: 48000, Channels: 2}}}
}

// Every field of the head changes its digest; the order of the tracks
// does not.
func TestHeadDigestCoversEveryField(t *testing.T) {
	base := testHead().Digest()
	swapped := testHead()
	swapped.Tracks[0], swapped.Tracks[1] = swapped.Tracks[1], swapped.Tracks[0]
	if swapped.Digest() != base {
		t.Fatal("track order changes the digest")
	}
	for name, mod := range map[string]func(h *Head){
		"scale":         func(h *Head) { h.TimecodeScale = 2_000_000 },
		"no tracks":     func(h *Head) { h.Tracks = nil },
		"number":        func(h *Head) { h.Tracks[0].Number = 3 },
		"uid":           func(h *Head) { h.Tracks[0].UID = 9 },
		"type":          func(h *Head) { h.Tracks[0].Type = 2 },
		"not default":   func(h *Head) { h.Tracks[0].NotDefault = true },
		"codec":         func(h *Head) { h.Tracks[0].CodecID = "V_MPEGH/ISO/HEVC" },
		"codec private": func(h *Head) { h.Tracks[0].CodecPrivate = []byte{1, 2, 4} },
		"cpd moved":     func(h *Head) { h.Tracks[0].CodecID, h.Tracks[0].CodecPrivate = "V_MPEG4/ISO/AVC\x01", []byte{2, 3} },
		"name":          func(h *Head) { h.Tracks[0].Name = "x" },
		"width":         func(h *Head) { h.Tracks[0].PixelWidth = 641 },
		"height":        func(h *Head) { h.Tracks[0].PixelHeight = 361 },
		"rate":          func(h *Head) { h.Tracks[1].SamplingFrequency = 44100 },
		"channels":      func(h *Head) { h.Tracks[1].Channels = 1 },
		"bit depth":     func(h *Head) { h.Tracks[1].BitDepth = 16 },
		"duration":      func(h *Head) { h.Tracks[0].DefaultDuration = 1 },
	} {
		h := testHead()
		mod(&h)
		if h.Digest() == base {
			t.Errorf("%s: same digest", name)
		}
	}
}

// Frames open only under the head their epoch was signed for; a new head
// makes rotation due.
func TestHeadMismatch(t *testing.T) {
	e := testEncryptor(t, "cam-1")
	e.SetHead(testHead())
	bundle, frames := produce(t, e, 5000, 2)
	if e.RotationDue() {
		t.Fatal("rotation due with the same head")
	}
	d, _ := testDecryptor(t, "cam-1")
	if _, err := d.AddBundle(bundle); err != nil {
		t.Fatal(err)
	}
	f := frames[0]
	if _, err := d.Open(nil, f.track, f.keyframe, f.pts, f.payload); !errors.Is(err, ErrHeadMismatch) {
		t.Fatalf("no head declared: %v", err)
	}
	other := testHead()
	other.TimecodeScale *= 2
	d.SetHead(other)
	if _, err := d.Open(nil, f.track, f.keyframe, f.pts, f.payload); !errors.Is(err, ErrHeadMismatch) {
		t.Fatalf("doubled scale: %v", err)
	}
	d.SetHead(testHead())
	openAll(t, d, frames)
	e.SetHead(other)
	if !e.RotationDue() {
		t.Fatal("a new head does not make rotation due")
	}
	// The digest is signed: flipping one of its bytes breaks the signature.
	b, _ := ParseBundle(bundle)
	off := bytes.Index(bundle, b.HeadDigest[:])
	bad := bytes.Clone(bundle)
	bad[off] ^= 1
	d2, _ := testDecryptor(t, "cam-1")
	if _, err := d2.AddBundle(bad); !errors.Is(err, ErrBundleSignature) {
		t.Fatalf("flipped head digest: %v", err)
	}
}

// Version 1 bundles, which sign no head, are refused unless the consumer
// accepts them, and then each such epoch is a warning.
func TestV1Bundles(t *testing.T) {
	e := testEncryptor(t, "cam-1")
	e.v1 = true
	bundle, frames := produce(t, e, 5000, 2)
	if string(bundle[:4]) != BundleMagicV1 || len(bundle) != BundleFixedSizeV1+5+RecipientEntrySize(KEMX25519)+RecipientEntrySize(KEMXWing) {
		t.Fatalf("bundle %q... of %d bytes", bundle[:4], len(bundle))
	}
	d, _ := testDecryptor(t, "cam-1")
	if _, err := d.AddBundle(bundle); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("v1 bundle by default: %v", err)
	}
	var warns []error
	testKeys(t)
	d, err := NewDecryptor(DecryptorConfig{Stream: "cam-1", Devices: []*DeviceKey{tDevice.Public()}, Keys: []*PrivateKey{tX25519},
		AcceptV1Bundles: true, Warn: func(err error) { warns = append(warns, err) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.AddBundle(bundle); err != nil {
		t.Fatal(err)
	}
	d.SetHead(testHead())
	openAll(t, d, frames)
	if len(warns) != 1 || !errors.Is(warns[0], ErrHeadUnauthenticated) {
		t.Fatalf("warnings %v", warns)
	}
}

// TestHeadDigestVector reproduces SPEC.md §9.2 (computed independently from
// the encoding written there).
func TestHeadDigestVector(t *testing.T) {
	video := HeadTrack{Number: 1, UID: 1, Type: 1, CodecID: "V_MPEG4/ISO/AVC", CodecPrivate: []byte{1, 2, 3}, PixelWidth: 640, PixelHeight: 360}
	audio := HeadTrack{Number: 2, UID: 2, Type: 2, CodecID: "A_AAC", CodecPrivate: []byte{0x12, 0x10}, SamplingFrequency: 48000, Channels: 2}
	for _, c := range []struct {
		h    Head
		want string
	}{
		{Head{1_000_000, []HeadTrack{video}}, "e68504ba3ef18cc2d1f27d16e3dcd8988810d846bcfb25eac779cc90787782e2"},
		{Head{2_000_000, []HeadTrack{video}}, "762fe02adad9db557fc4f3b60b0ae3b119834f1ee015f1e1df774b470bc6566e"},
		{Head{1_000_000, []HeadTrack{audio, video}}, "9e8422ce90a6dccd44aa5ae3b1e8c9ac7538eea6dbf4f55b63ea00740da92b02"},
	} {
		if got := c.h.Digest(); !bytes.Equal(got[:], unhex(t, c.want)) {
			t.Errorf("digest %x, want %s", got, c.want)
		}
	}
}
