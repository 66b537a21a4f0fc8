/* kvssrc's virtual methods written in C; see src.h. */
#include "src.h"
#include "_cgo_export.h" /* kvsgoSrcCreate, kvsgoSrcLatency, kvsgoSrcSeekable */

static GstBaseSrcClass *src_parent_class;

static GstFlowReturn src_create(GstBaseSrc *src, guint64 offset, guint size, GstBuffer **buf) {
  GstBuffer *out = NULL;
  GstFlowReturn ret = kvsgoSrcCreate(GST_ELEMENT(src), &out);
  if (ret == GST_FLOW_OK)
    *buf = out;
  else if (out)
    gst_buffer_unref(out);
  return ret;
}

static gboolean src_query(GstBaseSrc *src, GstQuery *q) {
  if (GST_QUERY_TYPE(q) == GST_QUERY_LATENCY) {
    guint64 min = 0;
    gboolean live = kvsgoSrcLatency(GST_ELEMENT(src), &min);
    /* max: the source queues nothing it cannot wait for. */
    gst_query_set_latency(q, live, live ? min : 0, GST_CLOCK_TIME_NONE);
    return TRUE;
  }
  return src_parent_class->query(src, q);
}

static gboolean src_is_seekable(GstBaseSrc *src) {
  return FALSE;
}

void kvsgo_src_class_init(gpointer klass) {
  GstBaseSrcClass *bc = GST_BASE_SRC_CLASS(klass);
  src_parent_class = GST_BASE_SRC_CLASS(g_type_class_peek_parent(klass));
  bc->create = src_create;
  bc->query = src_query;
  bc->is_seekable = src_is_seekable;
}

GstBuffer *kvsgo_src_buffer(const guint8 *data, gsize size) {
  return gst_buffer_new_memdup(data, size);
}

void kvsgo_src_set_live(GstElement *el, gboolean live) {
  gst_base_src_set_live(GST_BASE_SRC(el), live);
}

void kvsgo_msg_set_int64(GstStructure *s, const char *field, gint64 v) {
  gst_structure_set(s, field, G_TYPE_INT64, v, NULL);
}
