/* C side of kvssrc, a GstBaseSrc: create, query (latency) and is_seekable
 * are set in C because go-gst v1.4.0's create trampoline copies a GstBuffer
 * struct over the caller's pointer (shared/reference/go-gst.md lists the
 * other gaps), and GstBaseSrc's query must chain up to the parent class. */
#ifndef KVSGO_SRC_H
#define KVSGO_SRC_H

#include <gst/gst.h>
#include <gst/base/gstbasesrc.h>

/* Overrides create, query, is_seekable, prepare_seek_segment and do_seek
 * of a GstBaseSrc subclass. */
void kvsgo_src_class_init(gpointer klass);
/* A buffer holding a copy of data. */
GstBuffer *kvsgo_src_buffer(const guint8 *data, gsize size);
void kvsgo_src_set_live(GstElement *el, gboolean live);
void kvsgo_msg_set_int64(GstStructure *s, const char *field, gint64 v);

#endif
