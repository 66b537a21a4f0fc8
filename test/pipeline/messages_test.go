package pipeline

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/test/kvslocal"
	"github.com/kvsgo/kvsgo/test/testenv"
)

// Element messages, read the way any application reads them: gst-launch -m
// prints every element message's structure. The fragment refused with 4006
// is lost, so the stream ends with an error at EOS (loss is never silent).
func TestElementMessages(t *testing.T) {
	ep := startEndpoint(t)
	ep.srv.SetFaults(kvslocal.Faults{ErrorAck: kvslocal.ErrorAck{ID: 4006, Fragment: 1}})
	r := launch(t, ep, 60*time.Second, "-m videotestsrc num-buffers=120 ! x264enc key-int-max=30 ! h264parse ! "+
		kvssink("msgs", "get-kvs-metrics=true", "metrics-interval=100"))
	if r.rc == 0 {
		t.Fatalf("gst-launch exited 0 although a fragment was lost:\n%s", tail([]byte(r.output)))
	}
	for _, re := range []string{
		`the service refused fragments: the stream ended with fragments lost to non-retriable errors, the last INVALID_MKV_DATA \(4006\): \d+ fragment\(s\), \d+ frame\(s\) lost`,
		`kvs-fragment-ack, type=\(string\)BUFFERING, timecode=\(guint64\)\d+, fragment-number=\(string\)\d+`,
		`kvs-fragment-ack, type=\(string\)PERSISTED`,
		`kvs-stream-error, error-name=\(string\)INVALID_MKV_DATA, error-id=\(int\)4006, status=\(guint64\)1375731810, timecode=\(guint64\)\d+`,
		`retriable=\(boolean\)false`,
		`kvs-connection-restored, resume-timecode=\(guint64\)\d+`,
		`kvs-metrics, bytes-sent=\(guint64\)\d+, frames=\(guint64\)\d+, frames-dropped=\(guint64\)0, fragments-sent=\(guint64\)\d+, fragments-acked=\(guint64\)\d+`,
		`Kinesis Video Streams error 4006 INVALID_MKV_DATA`,
	} {
		if !regexp.MustCompile(re).MatchString(r.output) {
			t.Errorf("no match for %s", re)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", tail([]byte(r.output)))
	}
}

// A realtime stream whose store fills (no acknowledgement ever frees it)
// drops the oldest fragments: an element warning and a kvs-dropped-frames
// message that count the frames and name the time range. At 8 Mb/s the 120
// frames are about 4 MB, well over the 1 MiB store (at x264enc's default
// 2 Mb/s they came close to it, and the test failed when nothing dropped).
func TestDroppedFramesMessages(t *testing.T) {
	ep := startEndpoint(t)
	ep.srv.SetFaults(kvslocal.Faults{WithholdAcks: true})
	r := launch(t, ep, 60*time.Second, "-m videotestsrc pattern=snow num-buffers=120 ! video/x-raw,width=640,height=480 ! "+
		"x264enc key-int-max=10 speed-preset=ultrafast bitrate=8000 ! h264parse ! "+kvssink("drops", "storage-size=1", "stop-stream-timeout=1"))
	for _, re := range []string{
		`kvs-dropped-frames, frames=\(guint64\)\d+, fragments=\(guint64\)\d+, from=\(guint64\)\d+, to=\(guint64\)\d+, reason=\(string\)storage-size, tracks=\(string\)video, video-frames=\(guint64\)\d+, audio-frames=\(guint64\)0`,
		`Dropped \d+ frame\(s\) in \d+ fragment\(s\), stream time \S+ to \S+: the store is full`,
	} {
		if !regexp.MustCompile(re).MatchString(r.output) {
			t.Errorf("no match for %s", re)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", tail([]byte(r.output)))
	}
}

// The official signals with their official signatures, from a C program
// written against the official element's types: fragment-ack with a
// FragmentAck pointer, stream-error with a guint64 STATUS,
// stream-client-metric with a KvsSinkMetric pointer.
func TestOfficialSignals(t *testing.T) {
	host := testenv.BuildGstHost(t, signalHost)
	ep := startEndpoint(t)
	ep.srv.SetFaults(kvslocal.Faults{ErrorAck: kvslocal.ErrorAck{ID: 4006, Fragment: 1}})
	plugin := testenv.PluginDir(t)
	cmd := exec.Command(host, "videotestsrc num-buffers=120 ! x264enc key-int-max=30 ! h264parse ! "+
		"kvssink name=sink stream-name=signals restart-on-error=false get-kvs-metrics=true metrics-interval=10")
	cmd.Env = gstEnv(plugin, ep)
	out, _ := cmd.CombinedOutput()
	s := string(out)
	for _, re := range []string{
		`fragment-ack version=0 type=1 timestamp=\d+ number=\d+ result=200`,
		`fragment-ack version=0 type=3 timestamp=\d+ number=\d+ result=200`,
		`fragment-ack version=0 type=4 timestamp=\d+ number=\d* result=4006`,
		`stream-error status=0x52000062`,
		`stream-client-metric version=3 frame_pts=\d+ transferred=\d+ store_size=134217728`,
		`bus error: .*4006`,
	} {
		if !regexp.MustCompile(re).MatchString(s) {
			t.Errorf("no match for %s", re)
		}
	}
	// stream-client-metric comes per key frame (4 in 120 frames), never on
	// the metrics-interval ticks, which only post kvs-metrics messages.
	if n := strings.Count(s, "stream-client-metric version="); n > 4 {
		t.Errorf("%d stream-client-metric signals for at most 4 key frames", n)
	}
	if t.Failed() {
		t.Logf("output:\n%s", tail(out))
	}
}

const signalHost = `
#include <gst/gst.h>
#include <stdio.h>
/* The official element's types (PIC client/Include.h, gstkvssink.h). */
typedef struct { guint32 version; gint ackType; guint64 timestamp; gchar sequenceNumber[129]; gint result; } FragmentAck;
typedef struct { guint32 version; guint64 currentViewDuration, overallViewDuration, currentViewSize, overallViewSize;
  gdouble currentFrameRate; guint64 currentTransferRate, uptime, transferredBytes, totalSessions, totalActiveSessions,
  avgSessionDuration, bufferedAcks, receivedAcks, persistedAcks, errorAcks, droppedFrames, droppedFragments, skippedFrames,
  storagePressures, latencyPressures, bufferPressures, staleEvents, putFrameErrors, cplApiCallLatency, dataApiCallLatency;
  gdouble elementaryFrameRate; guint32 streamApiCallRetryCount; } StreamMetrics;
typedef struct { guint32 version; gdouble clientAvgApiCallRetryCount; guint64 contentStoreSize, contentStoreAvailableSize,
  contentStoreAllocatedSize, totalContentViewsSize, totalFrameRate, totalTransferRate; gdouble totalElementaryFrameRate; } ClientMetrics;
typedef struct { StreamMetrics stream_metrics; ClientMetrics client_metrics; guint64 frame_pts; guint8 on_first_frame; } KvsSinkMetric;

static void on_ack(GstElement *e, gpointer p, gpointer u) {
  FragmentAck *a = p;
  printf("fragment-ack version=%u type=%d timestamp=%llu number=%s result=%d\n", a->version, a->ackType,
         (unsigned long long)a->timestamp, a->sequenceNumber, a->result);
}
static void on_error(GstElement *e, guint64 status, gpointer u) { printf("stream-error status=0x%llx\n", (unsigned long long)status); }
static void on_metric(GstElement *e, gpointer p, gpointer u) {
  KvsSinkMetric *m = p;
  printf("stream-client-metric version=%u frame_pts=%llu transferred=%llu store_size=%llu\n", m->stream_metrics.version,
         (unsigned long long)m->frame_pts, (unsigned long long)m->stream_metrics.transferredBytes,
         (unsigned long long)m->client_metrics.contentStoreSize);
}
int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  GError *err = NULL;
  GstElement *p = gst_parse_launch(argv[1], &err);
  if (!p) { printf("parse: %s\n", err->message); return 2; }
  GstElement *sink = gst_bin_get_by_name(GST_BIN(p), "sink");
  g_signal_connect(sink, "fragment-ack", G_CALLBACK(on_ack), NULL);
  g_signal_connect(sink, "stream-error", G_CALLBACK(on_error), NULL);
  g_signal_connect(sink, "stream-client-metric", G_CALLBACK(on_metric), NULL);
  gst_element_set_state(p, GST_STATE_PLAYING);
  GstBus *bus = gst_element_get_bus(p);
  GstMessage *m = gst_bus_timed_pop_filtered(bus, 60 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  int rc = 0;
  if (m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
    GError *e; gchar *dbg; gst_message_parse_error(m, &e, &dbg);
    printf("bus error: %s\n", e->message); rc = 1;
  }
  fflush(stdout);
  gst_element_set_state(p, GST_STATE_NULL);
  return rc;
}
`

// kvs-metrics reports the frame-to-socket latency: render entry to the
// frame's last byte written to the connection. A live source's frames go
// out as they come, so the figures are set, ordered, and far below the
// frame interval's worth of seconds (this checks the wiring, not speed:
// scripts/bench measures it).
func TestSendLatencyMetrics(t *testing.T) {
	ep := startEndpoint(t)
	r := launch(t, ep, 60*time.Second, "-m videotestsrc is-live=true num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 ! "+
		"x264enc tune=zerolatency key-int-max=30 ! h264parse ! "+kvssink("latency", "metrics-interval=200"))
	if r.rc != 0 {
		t.Fatalf("gst-launch failed:\n%s", tail([]byte(r.output)))
	}
	re := regexp.MustCompile(`send-latency-p50=\(guint64\)(\d+), send-latency-p99=\(guint64\)(\d+)`)
	ms := re.FindAllStringSubmatch(r.output, -1)
	if len(ms) == 0 {
		t.Fatalf("no kvs-metrics with send-latency fields:\n%s", tail([]byte(r.output)))
	}
	last := ms[len(ms)-1]
	p50, _ := strconv.ParseUint(last[1], 10, 64)
	p99, _ := strconv.ParseUint(last[2], 10, 64)
	if p50 == 0 || p99 < p50 || time.Duration(p99) > 5*time.Second {
		t.Fatalf("send latency p50 %v p99 %v: want 0 < p50 <= p99 < 5s", time.Duration(p50), time.Duration(p99))
	}
	t.Logf("send latency p50 %v p99 %v", time.Duration(p50), time.Duration(p99))
}
