package pipeline

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/test/kvslocal"
	"github.com/kvsgo/kvsgo/test/testenv"
)

// stateHost drives a live pipeline through PLAYING, PAUSED, PLAYING, READY
// and NULL in a loop; each state change must complete within 30 s, or the
// host reports a deadlock (a change slower than 5 s is logged). A watchdog
// alarm ends a host that hangs outside a state change.
const stateHost = `
#include <gst/gst.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static int tolerate; /* a failed start is fine (dead endpoint); a hang is not */
static int change(GstElement *p, GstState s, int round) {
  GstStateChangeReturn r = gst_element_set_state(p, s);
  if (r == GST_STATE_CHANGE_FAILURE) {
    printf("round %d: change to %s failed\n", round, gst_element_state_get_name(s));
    if (!tolerate) return 1;
    gst_element_set_state(p, GST_STATE_NULL);
    return 0;
  }
  gint64 t0 = g_get_monotonic_time();
  r = gst_element_get_state(p, NULL, NULL, 30 * GST_SECOND);
  if (r == GST_STATE_CHANGE_ASYNC) { printf("round %d: DEADLOCK going to %s\n", round, gst_element_state_get_name(s)); return 1; }
  gint64 ms = (g_get_monotonic_time() - t0) / 1000;
  if (ms > 5000) printf("round %d: SLOW going to %s: %" G_GINT64_FORMAT " ms\n", round, gst_element_state_get_name(s), ms);
  return 0;
}
int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  alarm(240);
  int rounds = atoi(argv[2]);
  tolerate = argc > 3;
  GError *err = NULL;
  GstElement *p = gst_parse_launch(argv[1], &err);
  if (!p) { printf("parse: %s\n", err->message); return 2; }
  for (int i = 0; i < rounds; i++) {
    if (change(p, GST_STATE_PLAYING, i)) return 1;
    g_usleep(((i % 4) * 60 + 20) * 1000);
    if (change(p, GST_STATE_PAUSED, i)) return 1;
    /* PAUSED then straight back to PLAYING, after a short pause: with no
     * pause, GstBaseSrc 1.22 can lose a live source's task (its loop,
     * woken by PAUSED, pauses the task just after PLAYING restarted it),
     * and no buffer ever flows again, whatever the sink. */
    if (i % 2 == 0) { g_usleep(30000); if (change(p, GST_STATE_PLAYING, i)) return 1; g_usleep(50000); }
    if (change(p, i % 3 == 0 ? GST_STATE_NULL : GST_STATE_READY, i)) return 1;
  }
  gst_element_set_state(p, GST_STATE_NULL);
  printf("done %d rounds\n", rounds);
  return 0;
}
`

// PAUSED/PLAYING/READY/NULL transitions never deadlock: with a working
// endpoint, and with one that refuses every connection (the streaming
// thread then waits in the core, and the state change must wake it).
func TestStateChangesDoNotDeadlock(t *testing.T) {
	host := testenv.BuildGstHost(t, stateHost)
	plugin := testenv.PluginDir(t)
	for _, c := range []struct {
		name   string
		faults kvslocal.Faults
		props  string
	}{ // connection-timeout and completion-timeout keep failed starts short
		{"working", kvslocal.Faults{}, ""},
		{"refusing", kvslocal.Faults{Refuse: true}, "streaming-type=offline storage-size=1 connection-timeout=1 completion-timeout=2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ep := startEndpoint(t)
			pipeline := "videotestsrc is-live=true pattern=snow ! video/x-raw,width=320,height=240,framerate=30/1 ! " +
				"x264enc tune=zerolatency key-int-max=10 speed-preset=ultrafast ! h264parse ! " + kvssink("states-"+c.name, c.props)
			if c.faults.Refuse {
				// Let the stream start, then refuse for a while: the upload is
				// down while the streaming thread blocks on the full offline
				// store, and starts in that window fail.
				go func() {
					time.Sleep(300 * time.Millisecond)
					ep.srv.SetFaults(c.faults)
					time.Sleep(2500 * time.Millisecond)
					ep.srv.SetFaults(kvslocal.Faults{})
				}()
			}
			args := []string{pipeline, "12"}
			if c.faults.Refuse {
				args = append(args, "tolerate-failed-start")
			}
			cmd := exec.Command(host, args...)
			cmd.Env = gstEnv(plugin, ep)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "done 12 rounds") || strings.Contains(string(out), "CRITICAL") {
				t.Fatalf("%v:\n%s", err, tail(out))
			}
			for _, l := range strings.Split(string(out), "\n") {
				if strings.Contains(l, "SLOW") {
					t.Log(l)
				}
			}
		})
	}
}
