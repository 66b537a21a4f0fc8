/* kvssrc's virtual methods written in C; see src.h. */
#include "src.h"
#include "_cgo_export.h" /* kvsgoSrcCreate, kvsgoSrcLatency, kvsgoSrcSeekable, kvsgoSrcPrepareSeek, kvsgoSrcDoSeek */

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
  if (GST_QUERY_TYPE(q) == GST_QUERY_SCHEDULING) {
    /* Push mode only: create ignores offsets, so no random access
     * (pull mode) although archived playback is seekable in time. */
    gst_query_set_scheduling(q, GST_SCHEDULING_FLAG_SEQUENTIAL, 1, -1, 0);
    gst_query_add_scheduling_mode(q, GST_PAD_MODE_PUSH);
    return TRUE;
  }
  return src_parent_class->query(src, q);
}

static gboolean src_is_seekable(GstBaseSrc *src) {
  return kvsgoSrcSeekable(GST_ELEMENT(src));
}

/* A TIME seek (archived playback) becomes a restart of the reading at the
 * fragment that holds the target; the byte segment downstream starts anew.
 * Other formats are GstBaseSrc's (its initial seek to byte 0). */
static gboolean src_prepare_seek_segment(GstBaseSrc *src, GstEvent *seek, GstSegment *segment) {
  gdouble rate;
  GstFormat fmt;
  GstSeekFlags flags;
  GstSeekType st, et;
  gint64 start, stop;
  gst_event_parse_seek(seek, &rate, &fmt, &flags, &st, &start, &et, &stop);
  if (fmt != GST_FORMAT_TIME)
    return src_parent_class->prepare_seek_segment(src, seek, segment);
  if (rate != 1.0 || st != GST_SEEK_TYPE_SET || start < 0)
    return FALSE;
  if (!kvsgoSrcPrepareSeek(GST_ELEMENT(src), (guint64)start))
    return FALSE;
  gst_segment_init(segment, GST_FORMAT_BYTES);
  return TRUE;
}

/* A byte seek (matroskademux seeking to a cluster of the index that
 * archived playback writes) is mapped back to its fragment in Go. */
static gboolean src_do_seek(GstBaseSrc *src, GstSegment *segment) {
  gint64 offset = segment->format == GST_FORMAT_BYTES ? (gint64)segment->start : 0;
  return kvsgoSrcDoSeek(GST_ELEMENT(src), offset);
}

void kvsgo_src_class_init(gpointer klass) {
  GstBaseSrcClass *bc = GST_BASE_SRC_CLASS(klass);
  src_parent_class = GST_BASE_SRC_CLASS(g_type_class_peek_parent(klass));
  bc->create = src_create;
  bc->query = src_query;
  bc->is_seekable = src_is_seekable;
  bc->prepare_seek_segment = src_prepare_seek_segment;
  bc->do_seek = src_do_seek;
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
