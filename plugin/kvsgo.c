#include "kvsgo.h"
#include "_cgo_export.h"

GST_DEBUG_CATEGORY_STATIC(kvssink_debug);
#define GST_CAT_DEFAULT kvssink_debug

static gboolean plugin_init(GstPlugin *plugin) {
  GST_DEBUG_CATEGORY_INIT(kvssink_debug, "kvssink", 0, "kvsgo Kinesis Video Streams sink");
  return kvsgoPluginInit(plugin);
}

/* Defined statically in C: go-gst's generated descriptor stores a Go string
 * that is not NUL-terminated. "LGPL" is a licence string GStreamer knows;
 * kvsgo is LGPL-2.1-or-later and links go-gst (LGPL-2.1) and go-glib
 * (LGPL-3.0) statically. */
static const GstPluginDesc kvsgo_desc = {
  GST_VERSION_MAJOR, GST_VERSION_MINOR, "kvsgo",
  "Amazon Kinesis Video Streams elements written in Go (kvssink)",
  plugin_init, "0.1.0", "LGPL", "kvsgo", "kvsgo", "https://github.com/kvsgo/kvsgo", NULL, {NULL}
};

GST_PLUGIN_EXPORT const GstPluginDesc *gst_plugin_kvsgo_get_desc(void) { return &kvsgo_desc; }

void kvsgo_register(GstPlugin *plugin, const char *name, guint rank, GType type) {
  gst_element_register(plugin, name, rank, type);
}

static GQuark domain_quark(int domain) {
  switch (domain) {
  case 0: return GST_RESOURCE_ERROR;
  case 1: return GST_STREAM_ERROR;
  case 2: return GST_LIBRARY_ERROR;
  default: return GST_CORE_ERROR;
  }
}

void kvsgo_post(GstElement *el, int kind, int domain, int code, const char *text, const char *debug,
                const char *file, const char *func, int line) {
  GstMessageType t = kind == 0 ? GST_MESSAGE_ERROR : kind == 1 ? GST_MESSAGE_WARNING : GST_MESSAGE_INFO;
  gst_element_message_full(el, t, domain_quark(domain), code, g_strdup(text), debug ? g_strdup(debug) : NULL,
                           file, func, line);
}

void kvsgo_post_element_message(GstElement *el, GstStructure *s) {
  gst_element_post_message(el, gst_message_new_element(GST_OBJECT(el), s));
}

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

GParamSpec *kvsgo_pspec_streaming_type(const char *name, const char *nick, const char *blurb, gint def) {
  return g_param_spec_enum(name, nick, blurb, kvsgo_streaming_type_get_type(), def,
                           G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
}

GParamSpec *kvsgo_pspec_structure(const char *name, const char *nick, const char *blurb) {
  return g_param_spec_boxed(name, nick, blurb, GST_TYPE_STRUCTURE,
                            G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
}

/* Our own "sync" shadows GstBaseSink's so that gst-inspect shows its default,
 * FALSE: the official element never waits on the clock. */
GParamSpec *kvsgo_pspec_sync(void) {
  return g_param_spec_boolean("sync", "Sync",
      "Sync on the clock. Default false: kvssink, like the official element, streams as fast as it can",
      FALSE, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
}

void kvsgo_base_sink_set_sync(GstElement *el, gboolean sync) { gst_base_sink_set_sync(GST_BASE_SINK(el), sync); }
gboolean kvsgo_base_sink_get_sync(GstElement *el) { return gst_base_sink_get_sync(GST_BASE_SINK(el)); }

/* The official element's signals, with its signatures. */
void kvsgo_class_init(gpointer klass) {
  GType t = G_TYPE_FROM_CLASS(klass);
  g_signal_new("stream-error", t, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT64);
  g_signal_new("fragment-ack", t, G_SIGNAL_ACTION, 0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
  g_signal_new("stream-client-metric", t, G_SIGNAL_ACTION, 0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
}

void kvsgo_emit_stream_error(GstElement *el, guint64 status) {
  guint id = g_signal_lookup("stream-error", G_OBJECT_TYPE(el));
  if (id && g_signal_has_handler_pending(el, id, 0, FALSE))
    g_signal_emit(el, id, 0, status);
}

static GstDebugLevel level_of(int l) {
  switch (l) {
  case 1: return GST_LEVEL_ERROR;
  case 2: return GST_LEVEL_WARNING;
  case 3: return GST_LEVEL_FIXME;
  case 4: return GST_LEVEL_INFO;
  case 5: return GST_LEVEL_DEBUG;
  case 6: return GST_LEVEL_LOG;
  default: return GST_LEVEL_TRACE;
  }
}

gboolean kvsgo_log_enabled(int level) {
  return kvssink_debug && gst_debug_category_get_threshold(kvssink_debug) >= level_of(level);
}

void kvsgo_log(int level, const char *file, const char *func, int line, GstElement *el, const char *msg) {
  if (!kvssink_debug) return;
  gst_debug_log(kvssink_debug, level_of(level), file, func, line, el ? G_OBJECT(el) : NULL, "%s", msg);
}

gboolean kvsgo_buffer_map(GstBuffer *buf, KvsgoBuffer *out) {
  out->pts = GST_BUFFER_PTS(buf);
  out->dts = GST_BUFFER_DTS(buf);
  out->duration = GST_BUFFER_DURATION(buf);
  out->flags = GST_BUFFER_FLAGS(buf);
  if (!gst_buffer_map(buf, &out->map, GST_MAP_READ)) return FALSE;
  out->data = out->map.data;
  out->size = out->map.size;
  return TRUE;
}

void kvsgo_buffer_unmap(GstBuffer *buf, KvsgoBuffer *b) { gst_buffer_unmap(buf, &b->map); }

const gchar *kvsgo_value_get_string(const GValue *v) { return g_value_get_string(v); }
gboolean kvsgo_value_get_boolean(const GValue *v) { return g_value_get_boolean(v); }
guint kvsgo_value_get_uint(const GValue *v) { return g_value_get_uint(v); }
guint64 kvsgo_value_get_uint64(const GValue *v) { return g_value_get_uint64(v); }
gint kvsgo_value_get_enum(const GValue *v) { return g_value_get_enum(v); }
GstStructure *kvsgo_value_dup_structure(const GValue *v) {
  const GstStructure *s = g_value_get_boxed(v);
  return s ? gst_structure_copy(s) : NULL;
}
void kvsgo_value_take_structure(GValue *v, GstStructure *s) { g_value_take_boxed(v, s); }
GstStructure *kvsgo_structure_from_string(const char *s) { return gst_structure_from_string(s, NULL); }

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
GstBuffer *kvsgo_structure_get_buffer(const GstStructure *s, const gchar *field) {
  const GValue *v = gst_structure_get_value(s, field);
  return (v && GST_VALUE_HOLDS_BUFFER(v)) ? gst_value_get_buffer(v) : NULL;
}
gchar *kvsgo_caps_to_string(GstCaps *caps) { return gst_caps_to_string(caps); }
const GstStructure *kvsgo_event_structure(GstEvent *ev) { return gst_event_get_structure(ev); }
