/* C side of libgstkvsgo.so; see plugin_desc.h for why each piece is in C. */
#include "plugin_desc.h"
#include "_cgo_export.h" /* kvsgoPluginInit */
#include <string.h>

GST_DEBUG_CATEGORY_STATIC(kvssink_debug);
#define GST_CAT_DEFAULT kvssink_debug

static gboolean plugin_init(GstPlugin *plugin) {
  GST_DEBUG_CATEGORY_INIT(kvssink_debug, "kvssink", 0, "kvsgo Kinesis Video Streams sink");
  return kvsgoPluginInit(plugin);
}

/* The descriptor is defined statically in C (go-gst's stores a Go string that
 * is not NUL-terminated). name must equal the file stem: libgstkvsgo.so ->
 * "kvsgo" -> gst_plugin_kvsgo_get_desc.
 *
 * Licence: "LGPL" is one of the licence strings GStreamer knows (it means any
 * version of the LGPL). kvsgo is LGPL-2.1-or-later, and the .so statically
 * links go-gst v1.4.0 (LGPL-2.1) and go-glib v1.4.0 (LGPL-3.0), so the
 * combined plugin is distributed under LGPL terms (LGPL-3.0 for the whole,
 * which LGPL-2.1-or-later allows). GStreamer refuses to load a plugin whose
 * licence string it does not know. */
static const GstPluginDesc kvsgo_desc = {
  GST_VERSION_MAJOR,
  GST_VERSION_MINOR,
  "kvsgo",
  "Amazon Kinesis Video Streams elements written in Go (kvssink, kvsgosink, kvsdecrypt, kvssrc)",
  plugin_init,
  "0.1.0",
  "LGPL",
  "kvsgo",                          /* source module */
  "kvsgo",                          /* package */
  "https://github.com/kvsgo/kvsgo", /* origin */
  NULL,                             /* release datetime */
  {NULL}
};

GST_PLUGIN_EXPORT const GstPluginDesc *gst_plugin_kvsgo_get_desc(void) { return &kvsgo_desc; }

gboolean kvsgo_register(GstPlugin *plugin, const char *name, guint rank, GType type) {
  return gst_element_register(plugin, name, rank, type);
}

/* GStreamer names an element after its GType ("GstKvsgoSink" -> "kvsgosink0").
 * The official element's instances are "kvssink0", "kvssink1", ... and
 * applications look them up by that name, so a default name "<from><N>" is
 * renamed "<to><N>" (called from GObject's constructed; names set by the
 * application are left alone). */
void kvsgo_rename_default(GstElement *el, const char *from, const char *to) {
  gchar *name = gst_object_get_name(GST_OBJECT(el));
  gsize n = strlen(from);
  if (name && g_str_has_prefix(name, from) && name[n] != '\0') {
    const gchar *p = name + n;
    while (g_ascii_isdigit(*p)) p++;
    if (*p == '\0') {
      gchar *renamed = g_strconcat(to, name + n, NULL);
      gst_object_set_name(GST_OBJECT(el), renamed);
      g_free(renamed);
    }
  }
  g_free(name);
}

/* ---- element messages ---- */

static GQuark domain_quark(int domain) {
  switch (domain) {
  case 0: return GST_RESOURCE_ERROR;
  case 1: return GST_STREAM_ERROR;
  case 2: return GST_LIBRARY_ERROR;
  default: return GST_CORE_ERROR;
  }
}

/* What GST_ELEMENT_ERROR/WARNING/INFO expand to, with the caller's Go file,
 * function and line. gst_element_message_full takes the strings. */
void kvsgo_post(GstElement *el, int kind, int domain, int code, const char *text, const char *debug,
                const char *file, const char *func, int line) {
  GstMessageType t = kind == 0 ? GST_MESSAGE_ERROR : kind == 1 ? GST_MESSAGE_WARNING : GST_MESSAGE_INFO;
  gst_element_message_full(el, t, domain_quark(domain), code, g_strdup(text),
                           (debug && *debug) ? g_strdup(debug) : NULL, file, func, line);
}

/* ---- properties ---- */

/* Same values and nicks as the official GstKvsSinkStreamingType, under our
 * own type name so that both plugins can live in one process. */
GType kvsgo_streaming_type_get_type(void) {
  static gsize id = 0;
  static const GEnumValue values[] = {
    {0, "streaming type realtime", "realtime"},
    {1, "streaming type near realtime", "near-realtime"},
    {2, "streaming type offline", "offline"},
    {0, NULL, NULL}};
  if (g_once_init_enter(&id)) {
    GType t = g_enum_register_static("GstKvsgoSinkStreamingType", values);
    g_once_init_leave(&id, t);
  }
  return (GType)id;
}

#define KVSGO_PARAM_FLAGS (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)

GParamSpec *kvsgo_pspec_streaming_type(const char *name, const char *nick, const char *blurb, gint def) {
  return g_param_spec_enum(name, nick, blurb, kvsgo_streaming_type_get_type(), def, KVSGO_PARAM_FLAGS);
}

GParamSpec *kvsgo_pspec_structure(const char *name, const char *nick, const char *blurb) {
  return g_param_spec_boxed(name, nick, blurb, GST_TYPE_STRUCTURE, KVSGO_PARAM_FLAGS);
}

/* GstBaseSink's "sync" defaults to TRUE. Installing a property of the same
 * name on the subclass shadows it, so gst-inspect shows our default, FALSE;
 * get/set forward to gst_base_sink_{get,set}_sync. */
GParamSpec *kvsgo_pspec_sync(void) {
  return g_param_spec_boolean("sync", "Sync",
      "Sync on the clock. Default false: like the official kvssink, the element uploads buffers as they "
      "arrive and never waits on the clock",
      FALSE, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
}

void kvsgo_base_sink_set_sync(GstElement *el, gboolean sync) { gst_base_sink_set_sync(GST_BASE_SINK(el), sync); }
gboolean kvsgo_base_sink_get_sync(GstElement *el) { return gst_base_sink_get_sync(GST_BASE_SINK(el)); }

const gchar *kvsgo_value_get_string(const GValue *v) { return g_value_get_string(v); }
gboolean kvsgo_value_get_boolean(const GValue *v) { return g_value_get_boolean(v); }
guint kvsgo_value_get_uint(const GValue *v) { return g_value_get_uint(v); }
guint64 kvsgo_value_get_uint64(const GValue *v) { return g_value_get_uint64(v); }
gint kvsgo_value_get_enum(const GValue *v) { return g_value_get_enum(v); }
const GstStructure *kvsgo_value_get_structure(const GValue *v) { return g_value_get_boxed(v); }

/* Parses a structure serialised by kvsgo_structure_to_string into a boxed
 * GValue (left NULL if s is NULL or does not parse). */
void kvsgo_value_take_structure_string(GValue *v, const char *s) {
  GstStructure *st = s ? gst_structure_from_string(s, NULL) : NULL;
  if (st) g_value_take_boxed(v, st);
}

gchar *kvsgo_structure_to_string(const GstStructure *s) { return gst_structure_to_string(s); }

/* ---- signals: the official element's, with its signatures ---- */

void kvsgo_class_init(gpointer klass) {
  GType t = G_TYPE_FROM_CLASS(klass);
  /* stream-error (guint64 status): the stream failed and will not recover. */
  g_signal_new("stream-error", t, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT64);
  /* fragment-ack (KvsgoFragmentAck *): every acknowledgement from the service. */
  g_signal_new("fragment-ack", t, G_SIGNAL_ACTION, 0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
  /* stream-client-metric (gpointer): metrics on key frames with get-kvs-metrics. */
  g_signal_new("stream-client-metric", t, G_SIGNAL_ACTION, 0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
}

/* Returns the id of signal on el's class if a handler is connected, else 0. */
static guint pending(GstElement *el, const char *signal) {
  guint id = g_signal_lookup(signal, G_OBJECT_TYPE(el));
  return (id && g_signal_has_handler_pending(el, id, 0, FALSE)) ? id : 0;
}

gboolean kvsgo_has_handler(GstElement *el, const char *signal) { return pending(el, signal) != 0; }

void kvsgo_emit_stream_error(GstElement *el, guint64 status) {
  guint id = pending(el, "stream-error");
  if (id) g_signal_emit(el, id, 0, status);
}

void kvsgo_emit_fragment_ack(GstElement *el, gint ack_type, guint64 timestamp, const char *number, gint result) {
  guint id = pending(el, "fragment-ack");
  if (!id) return;
  KvsgoFragmentAck ack = {0};
  ack.ack_type = ack_type;
  ack.timestamp = timestamp;
  if (number) g_strlcpy(ack.sequence_number, number, sizeof ack.sequence_number);
  ack.result = result;
  g_signal_emit(el, id, 0, &ack); /* valid during the emission only */
}

void kvsgo_emit_stream_client_metric(GstElement *el, gpointer metric) {
  guint id = pending(el, "stream-client-metric");
  if (id) g_signal_emit(el, id, 0, metric);
}

/* An element message per acknowledgement:
 * kvs-fragment-ack, type=(string)PERSISTED, timecode=(guint64)…, fragment-number=(string)…[, error-id=(int)…] */
GstStructure *kvsgo_msg_new(const char *name) { return gst_structure_new_empty(name); }
void kvsgo_msg_set_string(GstStructure *s, const char *f, const char *v) { gst_structure_set(s, f, G_TYPE_STRING, v, NULL); }
void kvsgo_msg_set_uint64(GstStructure *s, const char *f, guint64 v) { gst_structure_set(s, f, G_TYPE_UINT64, v, NULL); }
void kvsgo_msg_set_int(GstStructure *s, const char *f, gint v) { gst_structure_set(s, f, G_TYPE_INT, v, NULL); }
void kvsgo_msg_set_boolean(GstStructure *s, const char *f, gboolean v) { gst_structure_set(s, f, G_TYPE_BOOLEAN, v, NULL); }
void kvsgo_msg_post(GstElement *el, GstStructure *s) {
  gst_element_post_message(el, gst_message_new_element(GST_OBJECT(el), s));
}

/* ---- logging ---- */

gboolean kvsgo_log_enabled(int level) {
  return kvssink_debug && gst_debug_category_get_threshold(kvssink_debug) >= (GstDebugLevel)level;
}

void kvsgo_log(int level, const char *file, const char *func, int line, GstElement *el, const char *msg) {
  if (!kvssink_debug) return;
  gst_debug_log(kvssink_debug, (GstDebugLevel)level, file, func, line, el ? G_OBJECT(el) : NULL, "%s", msg);
}

/* ---- buffers ---- */

gboolean kvsgo_buffer_map(GstBuffer *buf, guint skip_flags, KvsgoBuffer *out) {
  out->pts = GST_BUFFER_PTS(buf);
  out->dts = GST_BUFFER_DTS(buf);
  out->duration = GST_BUFFER_DURATION(buf);
  out->flags = GST_BUFFER_FLAGS(buf);
  out->data = NULL;
  out->size = 0;
  out->mapped = FALSE;
  if (out->flags & skip_flags) return TRUE;
  if (!gst_buffer_map(buf, &out->map, GST_MAP_READ)) return FALSE;
  out->mapped = TRUE;
  out->data = out->map.data;
  out->size = out->map.size;
  return TRUE;
}

void kvsgo_buffer_unmap(GstBuffer *buf, KvsgoBuffer *b) {
  if (b->mapped) gst_buffer_unmap(buf, &b->map);
  b->mapped = FALSE;
}

/* ---- structures and caps ---- */

const gchar *kvsgo_structure_name(const GstStructure *s) { return gst_structure_get_name(s); }
gint kvsgo_structure_n_fields(const GstStructure *s) { return gst_structure_n_fields(s); }
const gchar *kvsgo_structure_field_name(const GstStructure *s, gint i) { return gst_structure_nth_field_name(s, i); }

const gchar *kvsgo_structure_field_type(const GstStructure *s, const gchar *field) {
  const GValue *v = gst_structure_get_value(s, field);
  return v ? G_VALUE_TYPE_NAME(v) : NULL;
}

gchar *kvsgo_structure_field_string(const GstStructure *s, const gchar *field) {
  const GValue *v = gst_structure_get_value(s, field);
  if (!v) return NULL;
  if (G_VALUE_HOLDS_STRING(v)) return g_value_dup_string(v);
  return gst_value_serialize(v);
}

gboolean kvsgo_structure_get_int(const GstStructure *s, const gchar *field, gint *out) {
  return gst_structure_get_int(s, field, out);
}

gboolean kvsgo_structure_get_fraction(const GstStructure *s, const gchar *field, gint *num, gint *den) {
  return gst_structure_get_fraction(s, field, num, den);
}

/* The GstBuffer of a field (codec_data), borrowed from the structure. */
GstBuffer *kvsgo_structure_get_buffer(const GstStructure *s, const gchar *field) {
  const GValue *v = gst_structure_get_value(s, field);
  return (v && GST_VALUE_HOLDS_BUFFER(v)) ? gst_value_get_buffer(v) : NULL;
}

gchar *kvsgo_caps_to_string(const GstCaps *caps) { return gst_caps_to_string(caps); }
const GstStructure *kvsgo_event_structure(GstEvent *ev) { return gst_event_get_structure(ev); }

GstFlowReturn kvsgo_base_sink_wait_preroll(GstElement *el) { return gst_base_sink_wait_preroll(GST_BASE_SINK(el)); }
