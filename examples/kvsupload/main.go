// Command kvsupload uploads the H.264 frames of a Matroska file to a Kinesis
// video stream with kvsgo's pure-Go core (pkg/sink), without GStreamer: an
// example for Go programs that have frames of their own to send.
//
//	kvsupload -stream NAME -i in.mkv [-realtime]
//
// The file is what matroskamux, ffmpeg or mkvmerge write: one H.264 track
// with its avcC CodecPrivate. The endpoint, region and credentials come from
// the same places as the element's (AWS_ENDPOINT_URL_KINESIS_VIDEO,
// AWS_REGION, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ...). It waits for
// the last fragment to be persisted and exits 0, or prints the error and
// exits 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kvsgo/kvsgo/pkg/mkv"
	"github.com/kvsgo/kvsgo/pkg/sink"
)

func main() {
	stream := flag.String("stream", "", "stream name (required)")
	in := flag.String("i", "", "input Matroska file with one H.264 track (required)")
	realtime := flag.Bool("realtime", false, "pace the frames at their timestamps instead of as fast as the service takes them")
	flag.Parse()
	if *stream == "" || *in == "" {
		fmt.Fprintln(os.Stderr, "usage: kvsupload -stream NAME -i in.mkv [-realtime]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := upload(ctx, *stream, *in, *realtime); err != nil {
		fmt.Fprintln(os.Stderr, "kvsupload:", err)
		os.Exit(1)
	}
}

func upload(ctx context.Context, stream, path string, realtime bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()

	// The element's settings and defaults, resolved against the
	// environment as kvssink does (Config, then Open).
	st := sink.DefaultSettings()
	st.StreamName = stream
	if !realtime {
		st.StreamingType = sink.Offline // block instead of dropping when the service is slower
	}
	cfg, err := st.Config(os.Getenv)
	if err != nil {
		return err
	}
	// Then what the settings name: CA file, keys, credentials.
	if cfg, err = cfg.Open(ctx); err != nil {
		return err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var acked atomic.Int64
	cfg.OnEvent = func(ev sink.Event) { // called from the upload goroutine: do not block
		switch ev.Kind {
		case sink.EventAck:
			if ev.AckType == "PERSISTED" {
				acked.Add(1)
			}
		case sink.EventStreamError, sink.EventDropped, sink.EventConnectionLost:
			fmt.Fprintln(os.Stderr, "kvsupload:", ev.String())
		}
	}
	s, err := sink.New(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Start(ctx); err != nil {
		return err
	}

	rd := mkv.NewReader(f)
	var cluster uint64
	var scale time.Duration
	var track uint64
	frames := 0
	start := time.Now()
	for {
		ev, err := rd.NextEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		switch ev.Kind {
		case mkv.EventSegmentStart:
			t, err := h264Track(ev.Header)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			track, scale = t.Number, time.Duration(ev.Header.TimecodeScale)
			if err := s.SetFormat(sink.Format{Codec: "h264", StreamFormat: "avc", CodecData: t.CodecPrivate,
				Width: t.PixelWidth, Height: t.PixelHeight}); err != nil {
				return err
			}
		case mkv.EventClusterStart:
			cluster = ev.Timecode
		case mkv.EventBlock:
			if ev.Block.Track != track {
				continue
			}
			pts := time.Duration(int64(cluster)+int64(ev.Block.RelTimecode)) * scale
			if realtime {
				if d := time.Until(start.Add(pts)); d > 0 {
					select {
					case <-time.After(d):
					case <-ctx.Done():
						return ctx.Err()
					}
				}
			}
			if err := s.Put(ctx, sink.Frame{PTS: pts, DTS: sink.NoTime, Duration: sink.NoTime, Keyframe: ev.Block.Keyframe, Data: ev.Block.Data}); err != nil {
				return err
			}
			frames++
		}
	}
	if frames == 0 {
		return fmt.Errorf("%s has no H.264 frame", path)
	}
	if err := s.Finish(ctx); err != nil {
		return err
	}
	fmt.Printf("kvsupload: %d frames uploaded to %s, %d fragments persisted\n", frames, stream, acked.Load())
	return nil
}

// h264Track finds the H.264 track of a segment.
func h264Track(h *mkv.SegmentHeader) (mkv.Track, error) {
	for _, t := range h.Tracks {
		// Some muxers (matroskamux) store the CodecID with a trailing NUL.
		if strings.TrimRight(t.CodecID, "\x00") == "V_MPEG4/ISO/AVC" {
			if len(t.CodecPrivate) == 0 {
				return t, errors.New("the H.264 track has no CodecPrivate (avcC)")
			}
			return t, nil
		}
	}
	return mkv.Track{}, errors.New("no H.264 track (V_MPEG4/ISO/AVC)")
}
