package sink

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/kvsgo/kvsgo/pkg/codec/h264"
	"github.com/kvsgo/kvsgo/pkg/codec/h265"
	"github.com/kvsgo/kvsgo/pkg/mkv"
)

// ErrFormat is wrapped by every error about the pad's media format.
var ErrFormat = fmt.Errorf("sink: unsupported or invalid media format")

// track is the Matroska track the Format maps to, plus how frames must be
// converted on the way in.
type track struct {
	kind      TrackKind
	entry     mkv.Track
	mediaType string // CreateStream MediaType
	video     bool
	hevc      bool
	annexB    bool // byte-stream: convert frames to length-prefixed NALs, CodecPrivate from in-band parameter sets
	needCPD   bool // CodecPrivate still unknown (byte-stream before the first parameter sets)
	// frameDuration comes from the caps' framerate (0 if unknown); it
	// timestamps frames that arrive without any.
	frameDuration time.Duration
	// spsWidth/spsHeight: picture size from the last in-band SPS.
	spsWidth, spsHeight int
	// lastPTS is the buffer time of the track's previous frame.
	lastPTS time.Duration
	// untimedWarned: a frame without timestamps was reported.
	untimedWarned bool
	backWarned    bool
	lastOrder     time.Duration // interleaving order time of the last frame
	orderSeen     bool
	// order derives presentation times of H.264/H.265 frames that arrive
	// without (nil for audio).
	order *presenter
}

// TrackKind is what a pad carries.
type TrackKind int

// Track kinds. In an audio and video stream the video track is Matroska
// track 1 and the audio track 2, as the official element numbers them.
const (
	TrackAny   TrackKind = iota // the one track of a single-track stream
	TrackVideo                  // H.264 or H.265
	TrackAudio                  // AAC, A-law or µ-law
)

func (k TrackKind) String() string {
	switch k {
	case TrackVideo:
		return "video"
	case TrackAudio:
		return "audio"
	}
	return "track"
}

// KindOf is the kind of track a codec makes.
func KindOf(codec string) TrackKind {
	switch codec {
	case "h264", "h265":
		return TrackVideo
	case "aac", "alaw", "mulaw":
		return TrackAudio
	}
	return TrackAny
}

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrFormat}, args...)...)
}

// trackFor maps caps to a track. codecID and name are the codec-id and
// track-name properties (applied to video, as the official element does).
func trackFor(f Format, codecID, name string) (*track, error) {
	t := &track{entry: mkv.Track{Number: 1, UID: 1}, kind: KindOf(f.Codec)}
	if f.FramerateNum > 0 && f.FramerateDen > 0 {
		t.frameDuration = time.Duration(int64(time.Second) * int64(f.FramerateDen) / int64(f.FramerateNum))
	}
	switch f.Codec {
	case "h264":
		t.video, t.mediaType = true, "video/h264"
		t.entry.Type, t.entry.CodecID = mkv.TrackTypeVideo, "V_MPEG4/ISO/AVC"
		switch f.StreamFormat {
		case "avc", "avc3", "":
			if len(f.CodecData) == 0 {
				return nil, formatErr("video/x-h264 stream-format=%s caps have no codec_data (the avcC record); use h264parse upstream", orDefault(f.StreamFormat, "avc"))
			}
			cfg, err := h264.ParseConfig(f.CodecData)
			if err != nil {
				return nil, formatErr("codec_data: %v", err)
			}
			t.entry.CodecPrivate = append([]byte(nil), f.CodecData...)
			if info, err := h264.ParseSPS(cfg.SPS[0]); err == nil {
				f.Width, f.Height = info.Width, info.Height
			}
		case "byte-stream":
			t.annexB, t.needCPD = true, true
		default:
			return nil, formatErr("H.264 stream-format %q", f.StreamFormat)
		}
	case "h265":
		t.video, t.mediaType = true, "video/h265"
		t.hevc = true
		t.entry.Type, t.entry.CodecID = mkv.TrackTypeVideo, "V_MPEGH/ISO/HEVC"
		switch {
		case f.StreamFormat == "byte-stream":
			t.annexB, t.needCPD = true, true
		case len(f.CodecData) == 0:
			return nil, formatErr("video/x-h265 stream-format=%s caps have no codec_data (the hvcC record); use h265parse upstream", orDefault(f.StreamFormat, "hvc1"))
		default:
			t.entry.CodecPrivate = append([]byte(nil), f.CodecData...)
		}
	case "aac":
		t.mediaType = "audio/aac"
		t.entry.Type, t.entry.CodecID = mkv.TrackTypeAudio, "A_AAC"
		if len(f.CodecData) < 2 {
			return nil, formatErr("audio/mpeg caps have no codec_data (AudioSpecificConfig); use aacparse upstream")
		}
		t.entry.CodecPrivate = append([]byte(nil), f.CodecData...)
	case "alaw", "mulaw":
		t.mediaType = "audio/" + f.Codec
		t.entry.Type, t.entry.CodecID = mkv.TrackTypeAudio, "A_MS/ACM"
		if f.Rate < 8000 || f.Rate > 192000 || f.Channels < 1 || f.Channels > 2 {
			return nil, formatErr("G.711 with rate %d and %d channels (need 8000..192000 Hz, 1 or 2 channels)", f.Rate, f.Channels)
		}
		tag := uint16(6) // WAVE_FORMAT_ALAW
		if f.Codec == "mulaw" {
			tag = 7 // WAVE_FORMAT_MULAW
		}
		t.entry.CodecPrivate = waveFormatEx(tag, f.Rate, f.Channels)
		t.entry.BitDepth = 8
	default:
		return nil, formatErr("codec %q (kvssink takes H.264, H.265, AAC, A-law and µ-law)", f.Codec)
	}
	if t.video {
		t.order = newPresenter(t.hevc, f, t.frameDuration)
		if codecID != "" && codecID != DefaultCodecID {
			t.entry.CodecID = codecID
		}
		t.entry.Name = name
		t.entry.PixelWidth, t.entry.PixelHeight = f.Width, f.Height
	} else {
		t.entry.Name = "audio"
		if f.Rate <= 0 || f.Channels <= 0 {
			return nil, formatErr("audio caps without rate or channels")
		}
		t.entry.SamplingFrequency = float64(f.Rate)
		t.entry.Channels = f.Channels
	}
	return t, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// waveFormatEx is the 18-byte WAVEFORMATEX CodecPrivate of A_MS/ACM.
func waveFormatEx(tag uint16, rate, channels int) []byte {
	b := make([]byte, 18)
	binary.LittleEndian.PutUint16(b[0:], tag)
	binary.LittleEndian.PutUint16(b[2:], uint16(channels))
	binary.LittleEndian.PutUint32(b[4:], uint32(rate))
	binary.LittleEndian.PutUint32(b[8:], uint32(rate*channels))
	binary.LittleEndian.PutUint16(b[12:], uint16(channels))
	binary.LittleEndian.PutUint16(b[14:], 8)
	return b
}

// convert turns one access unit into what goes in the SimpleBlock. For
// Annex-B input it converts to AVCC into dst and, on a key frame, collects
// the in-band SPS/PPS into a CodecPrivate (cpd != nil when it changed).
func (t *track) convert(dst, data []byte, key bool) (out []byte, cpd []byte, err error) {
	if !t.annexB {
		return data, nil, nil
	}
	var vps, sps, pps [][]byte
	dst = dst[:0]
	err = h264.SplitAnnexB(data, func(nal []byte) error {
		if t.hevc {
			switch h265.NALType(nal) {
			case h265.NALVPS:
				vps = append(vps, nal)
			case h265.NALSPS:
				sps = append(sps, nal)
			case h265.NALPPS:
				pps = append(pps, nal)
			}
		} else {
			switch nal[0] & h264.NALTypeMask {
			case h264.NALSPS:
				sps = append(sps, nal)
			case h264.NALPPS:
				pps = append(pps, nal)
			}
		}
		n := len(nal)
		dst = append(dst, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
		dst = append(dst, nal...)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if len(sps) > 0 && len(pps) > 0 && (!t.hevc || len(vps) > 0) {
		var c []byte
		var w, h int
		if t.hevc {
			c, err = h265.BuildConfig(vps, sps, pps)
			if info, e := h265.ParseSPS(sps[0]); e == nil {
				w, h = info.Width, info.Height
			}
		} else {
			c, err = h264.BuildConfig(sps, pps)
			if info, e := h264.ParseSPS(sps[0]); e == nil {
				w, h = info.Width, info.Height
			}
		}
		if err != nil {
			return nil, nil, err
		}
		if string(c) != string(t.entry.CodecPrivate) {
			cpd = c
			t.spsWidth, t.spsHeight = w, h
		}
	}
	return dst, cpd, nil
}

// setCodecPrivate installs a CodecPrivate found in-band, with the picture
// size its SPS gives.
func (t *track) setCodecPrivate(cpd []byte) {
	t.entry.CodecPrivate = cpd
	t.needCPD = false
	if t.spsWidth > 0 {
		t.entry.PixelWidth, t.entry.PixelHeight = t.spsWidth, t.spsHeight
	}
}
