/* kvssink_app: a C application that streams a test pattern to Kinesis Video
 * Streams with kvssink, and shows what an application embedding the element
 * does: set properties (including iot-certificate from a structure string),
 * react to the stream-error and fragment-ack signals and to the kvs-* bus
 * messages, and shut down cleanly on EOS and on error.
 *
 *   cc -o kvssink_app kvssink_app.c $(pkg-config --cflags --libs gstreamer-1.0)
 *   ./kvssink_app STREAM [FRAMES] [IOT_CERTIFICATE]
 *
 * IOT_CERTIFICATE is a GstStructure string, e.g.
 *   "iot-certificate, endpoint=xxx.credentials.iot.us-west-2.amazonaws.com,
 *    cert-path=cert.pem, key-path=key.pem, ca-path=ca.pem, role-aliases=KvsCameraIoTRoleAlias"
 * Without it the element takes credentials from the environment
 * (AWS_ACCESS_KEY_ID, ...). The exit status is 0 after EOS, 1 after an error.
 */
#include <gst/gst.h>
#include <stdio.h>
#include <stdlib.h>

/* The payload of fragment-ack, as kvssink declares it (the official
 * element's KvsSinkFragmentAck layout). It is valid during the emission
 * only: copy what you need. */
typedef struct {
  guint32 version;
  gint ack_type; /* 1 BUFFERING, 2 RECEIVED, 3 PERSISTED, 4 ERROR, 5 IDLE */
  guint64 timestamp; /* the fragment's timecode (ms) */
  gchar sequence_number[129]; /* the fragment number */
  gint result; /* 200, or the service's error id for ERROR */
} FragmentAck;

typedef struct {
  GMainLoop *loop;
  GstElement *pipeline;
  int rc;
  guint persisted;
} App;

static void on_fragment_ack(GstElement *sink, gpointer payload, gpointer data) {
  const FragmentAck *ack = payload;
  App *app = data;
  static const char *types[] = {"UNDEFINED", "BUFFERING", "RECEIVED", "PERSISTED", "ERROR", "IDLE"};
  const char *type = ack->ack_type >= 0 && ack->ack_type <= 5 ? types[ack->ack_type] : "?";
  if (ack->ack_type == 3) app->persisted++;
  printf("signal fragment-ack %s timecode=%" G_GUINT64_FORMAT " fragment=%s result=%d\n", type, ack->timestamp,
         ack->sequence_number, ack->result);
}

static void on_stream_error(GstElement *sink, guint64 status, gpointer data) {
  /* The stream has failed: an element error follows on the bus. */
  printf("signal stream-error status=0x%08" G_GINT64_MODIFIER "x\n", status);
}

static gboolean on_bus(GstBus *bus, GstMessage *msg, gpointer data) {
  App *app = data;
  switch (GST_MESSAGE_TYPE(msg)) {
  case GST_MESSAGE_ELEMENT: {
    const GstStructure *s = gst_message_get_structure(msg);
    if (s && g_str_has_prefix(gst_structure_get_name(s), "kvs-")) {
      gchar *text = gst_structure_to_string(s);
      printf("message %s\n", text);
      g_free(text);
    }
    break;
  }
  case GST_MESSAGE_WARNING: {
    GError *err;
    gchar *dbg;
    gst_message_parse_warning(msg, &err, &dbg);
    printf("warning %s\n", err->message);
    g_error_free(err);
    g_free(dbg);
    break;
  }
  case GST_MESSAGE_ERROR: {
    GError *err;
    gchar *dbg;
    gst_message_parse_error(msg, &err, &dbg);
    printf("error from %s: %s (%s %d)\n", GST_OBJECT_NAME(msg->src), err->message, g_quark_to_string(err->domain),
           err->code);
    g_error_free(err);
    g_free(dbg);
    app->rc = 1;
    g_main_loop_quit(app->loop);
    break;
  }
  case GST_MESSAGE_EOS:
    /* kvssink posts EOS once the last fragment is acknowledged. */
    printf("eos: %u fragments persisted\n", app->persisted);
    g_main_loop_quit(app->loop);
    break;
  default:
    break;
  }
  return TRUE;
}

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  if (argc < 2) {
    fprintf(stderr, "usage: %s STREAM [FRAMES] [IOT_CERTIFICATE]\n", argv[0]);
    return 2;
  }
  int frames = argc > 2 ? atoi(argv[2]) : 150;
  App app = {0};
  app.loop = g_main_loop_new(NULL, FALSE);

  GError *err = NULL;
  gchar *desc = g_strdup_printf(
      "videotestsrc num-buffers=%d ! video/x-raw,width=320,height=240,framerate=30/1 ! "
      "x264enc key-int-max=30 tune=zerolatency ! h264parse ! kvssink name=sink",
      frames);
  app.pipeline = gst_parse_launch(desc, &err);
  g_free(desc);
  if (!app.pipeline) {
    fprintf(stderr, "pipeline: %s\n", err->message);
    return 1;
  }
  GstElement *sink = gst_bin_get_by_name(GST_BIN(app.pipeline), "sink");
  g_object_set(sink, "stream-name", argv[1], "retention-period", 2, "storage-size", 64, NULL);
  if (argc > 3) {
    GstStructure *iot = gst_structure_from_string(argv[3], NULL);
    if (!iot) {
      fprintf(stderr, "not a GstStructure: %s\n", argv[3]);
      return 2;
    }
    g_object_set(sink, "iot-certificate", iot, NULL); /* the element copies it */
    gst_structure_free(iot);
  }
  g_signal_connect(sink, "fragment-ack", G_CALLBACK(on_fragment_ack), &app);
  g_signal_connect(sink, "stream-error", G_CALLBACK(on_stream_error), &app);
  gst_object_unref(sink);

  GstBus *bus = gst_element_get_bus(app.pipeline);
  gst_bus_add_watch(bus, on_bus, &app);
  gst_object_unref(bus);

  if (gst_element_set_state(app.pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    /* The error message is on the bus: let the loop report it. */
    printf("could not start\n");
  }
  g_main_loop_run(app.loop);

  gst_element_set_state(app.pipeline, GST_STATE_NULL);
  gst_object_unref(app.pipeline);
  g_main_loop_unref(app.loop);
  gst_deinit();
  return app.rc;
}
