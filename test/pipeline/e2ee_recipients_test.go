package pipeline

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/kvsgo/kvsgo/pkg/e2ee"
	"github.com/kvsgo/kvsgo/pkg/e2ee/mkvstream"
	"github.com/kvsgo/kvsgo/test/testenv"
)

// recipientsHost plays a pipeline whose kvssink is named "k", sets
// e2ee-recipients to $NEW_RECIPIENTS after argv[2] milliseconds of
// PLAYING, and runs to EOS, printing the element messages it sees.
const recipientsHost = `
#include <gst/gst.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static gboolean change(gpointer data) {
  GstElement *k = data;
  g_object_set(k, "e2ee-recipients", g_getenv("NEW_RECIPIENTS"), NULL);
  printf("recipients changed\n");
  fflush(stdout);
  return G_SOURCE_REMOVE;
}
int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  alarm(120);
  GError *err = NULL;
  GstElement *p = gst_parse_launch(argv[1], &err);
  if (!p) { printf("parse: %s\n", err->message); return 2; }
  GstElement *k = gst_bin_get_by_name(GST_BIN(p), "k");
  gst_element_set_state(p, GST_STATE_PLAYING);
  g_timeout_add(atoi(argv[2]), change, k);
  GstBus *bus = gst_element_get_bus(p);
  GMainContext *ctx = g_main_context_default();
  for (;;) {
    while (g_main_context_iteration(ctx, FALSE)) {}
    GstMessage *m = gst_bus_timed_pop(bus, 10 * GST_MSECOND);
    if (!m) continue;
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ELEMENT) {
      gchar *s = gst_structure_to_string(gst_message_get_structure(m));
      printf("element message: %s\n", s);
      g_free(s);
    } else if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
      GError *e; gst_message_parse_error(m, &e, NULL);
      printf("ERROR: %s\n", e->message);
      return 1;
    } else if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS) {
      printf("EOS\n");
      break;
    }
    gst_message_unref(m);
  }
  gst_element_set_state(p, GST_STATE_NULL);
  return 0;
}
`

// e2ee-recipients changed while PLAYING reaches the running stream: the
// next fragment starts an epoch for the new set only, so the old
// recipient can read what came before the change and the new one what
// came after, and together they account for every frame.
func TestE2EERecipientsChangeWhilePlaying(t *testing.T) {
	host := testenv.BuildGstHost(t, recipientsHost)
	plugin := testenv.PluginDir(t)
	dir := t.TempDir()
	keys := keyFiles(t, dir)
	ep := startEndpoint(t)
	const stream = "e2ee-change"
	pipeline := "videotestsrc is-live=true num-buffers=120 ! video/x-raw,width=160,height=120,framerate=30/1 ! " +
		"x264enc tune=zerolatency key-int-max=15 speed-preset=ultrafast ! h264parse ! kvssink name=k stream-name=" + stream +
		" e2ee-recipients=" + keys["alice.pub"] + " e2ee-signing-key=" + keys["cam"]
	cmd := exec.Command(host, pipeline, "2000")
	cmd.Env = append(gstEnv(plugin, ep), "NEW_RECIPIENTS="+keys["bob.pub"])
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "recipients changed") || !strings.Contains(string(out), "EOS") {
		t.Fatalf("%v:\n%s", err, tail(out))
	}
	if n := strings.Count(string(out), "kvs-e2ee-epoch"); n != 2 {
		t.Fatalf("%d kvs-e2ee-epoch messages, want 2:\n%s", n, tail(out))
	}
	raw, err := os.ReadFile(ep.getMedia(t, stream))
	if err != nil {
		t.Fatal(err)
	}
	open := func(who string) *mkvstream.Report {
		k, err := e2ee.LoadPrivateKey(keys[who])
		if err != nil {
			t.Fatal(err)
		}
		devs, err := e2ee.LoadDeviceKeys(keys["cam.pub"])
		if err != nil {
			t.Fatal(err)
		}
		rep, _ := mkvstream.Decrypt(io.Discard, bytes.NewReader(raw), e2ee.DecryptorConfig{Stream: stream, Devices: devs, Keys: []*e2ee.PrivateKey{k}}, mkvstream.Options{})
		return rep
	}
	a, b := open("alice"), open("bob")
	t.Logf("frames %d: alice opened %d, bob opened %d", a.Frames, a.Opened, b.Opened)
	if a.Frames != 120 || a.Opened == 0 || b.Opened == 0 || a.Opened+b.Opened != a.Frames ||
		a.Counts[e2ee.ErrNotRecipient] == 0 || b.Counts[e2ee.ErrNotRecipient] == 0 {
		t.Fatalf("alice %+v\nbob %+v", a, b)
	}
}
