/* C side of the kvsgo plugin: what go-gst v1.4.0 lacks or gets wrong
 * (plugin descriptor, element messages, enums, signals, debug category,
 * zero-copy buffer access, GstStructure fields as plain data). */
#ifndef KVSGO_H
#define KVSGO_H

#include <gst/gst.h>
#include <gst/base/gstbasesink.h>

void kvsgo_register(GstPlugin *plugin, const char *name, guint rank, GType type);

/* kind: 0 error, 1 warning, 2 info. domain: 0 resource, 1 stream, 2 library, 3 core. */
void kvsgo_post(GstElement *el, int kind, int domain, int code, const char *text, const char *debug,
                const char *file, const char *func, int line);
void kvsgo_post_element_message(GstElement *el, GstStructure *s);

GType kvsgo_streaming_type_get_type(void);
GParamSpec *kvsgo_pspec_streaming_type(const char *name, const char *nick, const char *blurb, gint def);
GParamSpec *kvsgo_pspec_structure(const char *name, const char *nick, const char *blurb);
GParamSpec *kvsgo_pspec_sync(void);

void kvsgo_class_init(gpointer klass);
void kvsgo_emit_stream_error(GstElement *el, guint64 status);

void kvsgo_log(int level, const char *file, const char *func, int line, GstElement *el, const char *msg);
gboolean kvsgo_log_enabled(int level);

typedef struct {
  guint64 pts, dts, duration;
  guint flags;
  const guint8 *data;
  gsize size;
  GstMapInfo map;
} KvsgoBuffer;
gboolean kvsgo_buffer_map(GstBuffer *buf, KvsgoBuffer *out);
void kvsgo_buffer_unmap(GstBuffer *buf, KvsgoBuffer *b);

/* GValue accessors for properties. */
const gchar *kvsgo_value_get_string(const GValue *v);
gboolean kvsgo_value_get_boolean(const GValue *v);
guint kvsgo_value_get_uint(const GValue *v);
guint64 kvsgo_value_get_uint64(const GValue *v);
gint kvsgo_value_get_enum(const GValue *v);
GstStructure *kvsgo_value_dup_structure(const GValue *v);
void kvsgo_value_take_structure(GValue *v, GstStructure *s);
GstStructure *kvsgo_structure_from_string(const char *s);

/* GstStructure fields as data: name, GType name, string value (serialised for non-strings). */
const gchar *kvsgo_structure_name(const GstStructure *s);
gint kvsgo_structure_n_fields(const GstStructure *s);
const gchar *kvsgo_structure_field_name(const GstStructure *s, gint i);
const gchar *kvsgo_structure_field_type(const GstStructure *s, const gchar *field);
gchar *kvsgo_structure_field_string(const GstStructure *s, const gchar *field);
gboolean kvsgo_structure_get_int(const GstStructure *s, const gchar *field, gint *out);
gboolean kvsgo_structure_get_fraction(const GstStructure *s, const gchar *field, gint *num, gint *den);
GstBuffer *kvsgo_structure_get_buffer(const GstStructure *s, const gchar *field);

void kvsgo_base_sink_set_sync(GstElement *el, gboolean sync);
gboolean kvsgo_base_sink_get_sync(GstElement *el);
gchar *kvsgo_caps_to_string(GstCaps *caps);
const GstStructure *kvsgo_event_structure(GstEvent *ev);

#endif
