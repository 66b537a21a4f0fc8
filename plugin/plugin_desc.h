/* The C side of libgstkvsgo.so: only what go-gst v1.4.0 lacks or gets wrong
 * (see shared/reference/go-gst.md §3):
 *   - the plugin descriptor (go-gst's stores a Go string that is not
 *     NUL-terminated) and element registration under our own GType names;
 *   - element error/warning/info messages (go-gst's ErrorMessage puts the
 *     debug string in the text);
 *   - the streaming-type enum and its pspec, the boxed GstStructure pspec and
 *     the sync pspec (go-glib has no enum or override helpers);
 *   - the official element's signals, registered on our class (go-glib's
 *     SignalNew registers on G_TYPE_OBJECT, without arguments);
 *   - the kvssink debug category;
 *   - one-call buffer access (timestamps, flags and a zero-copy mapping) and
 *     GstStructure fields as plain data.
 * Everything else is Go. */
#ifndef KVSGO_PLUGIN_DESC_H
#define KVSGO_PLUGIN_DESC_H

#include <gst/gst.h>
#include <gst/base/gstbasesink.h>

/* Registration. */
gboolean kvsgo_register(GstPlugin *plugin, const char *name, guint rank, GType type);
void kvsgo_rename_default(GstElement *el, const char *from, const char *to);

/* Element messages (GST_ELEMENT_ERROR and friends, with text and debug).
 * kind: 0 error, 1 warning, 2 info. domain: 0 resource, 1 stream, 2 library, 3 core. */
void kvsgo_post(GstElement *el, int kind, int domain, int code, const char *text, const char *debug,
                const char *file, const char *func, int line);

/* Properties. */
GType kvsgo_streaming_type_get_type(void);
GParamSpec *kvsgo_pspec_streaming_type(const char *name, const char *nick, const char *blurb, gint def);
GParamSpec *kvsgo_pspec_structure(const char *name, const char *nick, const char *blurb);
GParamSpec *kvsgo_pspec_sync(void);
void kvsgo_base_sink_set_sync(GstElement *el, gboolean sync);
gboolean kvsgo_base_sink_get_sync(GstElement *el);
/* gst_base_sink_wait_preroll: a render unlocked by a state change to PAUSED
 * waits here; GST_FLOW_OK means PLAYING again (retry), else flushing. */
GstFlowReturn kvsgo_base_sink_wait_preroll(GstElement *el);
const gchar *kvsgo_value_get_string(const GValue *v);
gboolean kvsgo_value_get_boolean(const GValue *v);
guint kvsgo_value_get_uint(const GValue *v);
guint64 kvsgo_value_get_uint64(const GValue *v);
gint kvsgo_value_get_enum(const GValue *v);
const GstStructure *kvsgo_value_get_structure(const GValue *v);
void kvsgo_value_take_structure_string(GValue *v, const char *s);
gchar *kvsgo_structure_to_string(const GstStructure *s);

/* Signals: stream-error, fragment-ack, stream-client-metric. */
void kvsgo_class_init(gpointer klass);

/* The payload of fragment-ack: the official FragmentAck's layout (PIC
 * client/Include.h), so that handlers written for the official element read
 * it unchanged. */
#define KVSGO_MAX_FRAGMENT_SEQUENCE_NUMBER 128
typedef struct {
  guint32 version;  /* 0 */
  gint ack_type;    /* FRAGMENT_ACK_TYPE: 0 undefined, 1 BUFFERING, 2 RECEIVED, 3 PERSISTED, 4 ERROR, 5 IDLE */
  guint64 timestamp; /* the fragment's timecode, in Matroska timecode units (ms by default) */
  gchar sequence_number[KVSGO_MAX_FRAGMENT_SEQUENCE_NUMBER + 1]; /* fragment number, NUL-terminated */
  gint result;      /* SERVICE_CALL_RESULT: 200 for OK acks, the KVS ErrorId for ERROR acks */
} KvsgoFragmentAck;

void kvsgo_emit_stream_error(GstElement *el, guint64 status);
void kvsgo_emit_fragment_ack(GstElement *el, gint ack_type, guint64 timestamp, const char *number, gint result);
void kvsgo_emit_stream_client_metric(GstElement *el, gpointer metric);
gboolean kvsgo_has_handler(GstElement *el, const char *signal);

/* Bus messages. */
/* Element messages built field by field from Go (cgo cannot call varargs). */
GstStructure *kvsgo_msg_new(const char *name);
void kvsgo_msg_set_string(GstStructure *s, const char *field, const char *v);
void kvsgo_msg_set_uint64(GstStructure *s, const char *field, guint64 v);
void kvsgo_msg_set_int(GstStructure *s, const char *field, gint v);
void kvsgo_msg_set_boolean(GstStructure *s, const char *field, gboolean v);
void kvsgo_msg_post(GstElement *el, GstStructure *s); /* takes s */

/* The payload of stream-client-metric: the official KvsSinkMetric's layout
 * (gstkvssink.h: KinesisVideoStreamMetrics wraps PIC StreamMetrics v3,
 * KinesisVideoProducerMetrics wraps ClientMetrics v1, then frame_pts and a
 * C++ bool), so handlers written for the official element read it
 * unchanged. Durations are in 100 ns units as in PIC; fields kvsgo has no
 * value for are 0. */
typedef struct {
  guint32 version;              /* 3 */
  guint64 current_view_duration; /* not yet received by the service, 100 ns */
  guint64 overall_view_duration; /* whole store, 100 ns */
  guint64 current_view_size;
  guint64 overall_view_size;
  gdouble current_frame_rate;
  guint64 current_transfer_rate;
  guint64 uptime;
  guint64 transferred_bytes;
  guint64 total_sessions;
  guint64 total_active_sessions;
  guint64 avg_session_duration;
  guint64 buffered_acks;
  guint64 received_acks;
  guint64 persisted_acks;
  guint64 error_acks;
  guint64 dropped_frames;
  guint64 dropped_fragments;
  guint64 skipped_frames;
  guint64 storage_pressures;
  guint64 latency_pressures;
  guint64 buffer_pressures;
  guint64 stale_events;
  guint64 put_frame_errors;
  guint64 cpl_api_call_latency;
  guint64 data_api_call_latency;
  gdouble elementary_frame_rate;
  guint32 stream_api_call_retry_count;
} KvsgoStreamMetrics;

typedef struct {
  guint32 version; /* 1 */
  gdouble client_avg_api_call_retry_count;
  guint64 content_store_size;
  guint64 content_store_available_size;
  guint64 content_store_allocated_size;
  guint64 total_content_views_size;
  guint64 total_frame_rate;
  guint64 total_transfer_rate;
  gdouble total_elementary_frame_rate;
} KvsgoClientMetrics;

typedef struct {
  KvsgoStreamMetrics stream_metrics;
  KvsgoClientMetrics client_metrics;
  guint64 frame_pts;
  guint8 on_first_frame; /* C++ bool */
} KvsgoSinkMetric;

/* The kvssink debug category (GST_DEBUG=kvssink:5). level is a GstDebugLevel. */
void kvsgo_log(int level, const char *file, const char *func, int line, GstElement *el, const char *msg);
gboolean kvsgo_log_enabled(int level);

/* One call per buffer: timestamps and flags, and, unless one of skip_flags is
 * set, a read mapping (zero-copy for single-memory buffers). */
typedef struct {
  guint64 pts, dts, duration;
  guint flags;
  const guint8 *data;
  gsize size;
  gboolean mapped;
  GstMapInfo map;
} KvsgoBuffer;
gboolean kvsgo_buffer_map(GstBuffer *buf, guint skip_flags, KvsgoBuffer *out);
void kvsgo_buffer_unmap(GstBuffer *buf, KvsgoBuffer *b);

/* GstStructure fields as data: name, GType name, string value (the raw
 * string for G_TYPE_STRING, gst_value_serialize otherwise). */
const gchar *kvsgo_structure_name(const GstStructure *s);
gint kvsgo_structure_n_fields(const GstStructure *s);
const gchar *kvsgo_structure_field_name(const GstStructure *s, gint i);
const gchar *kvsgo_structure_field_type(const GstStructure *s, const gchar *field);
gchar *kvsgo_structure_field_string(const GstStructure *s, const gchar *field);
gboolean kvsgo_structure_get_int(const GstStructure *s, const gchar *field, gint *out);
gboolean kvsgo_structure_get_fraction(const GstStructure *s, const gchar *field, gint *num, gint *den);
GstBuffer *kvsgo_structure_get_buffer(const GstStructure *s, const gchar *field);
gchar *kvsgo_caps_to_string(const GstCaps *caps);
const GstStructure *kvsgo_event_structure(GstEvent *ev);

#endif
