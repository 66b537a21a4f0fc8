/* kvssink's request pads video_%u and audio_%u next to GstBaseSink's always
 * "sink" pad (go-gst v1.4.0 has no request-pad or pad-function support that
 * avoids its double unref; threads and locks are described in av.c).
 *
 * The first pad that carries media is GstBaseSink's own "sink" pad: linked
 * directly, or through a requested video_N/audio_N that is a ghost pad
 * targeting it. So a single-track stream, video or audio, always has
 * GstBaseSink's preroll, clock, latency, queries and EOS. The second track
 * comes through one plain request pad with C chain and event functions that
 * call Go. */
#ifndef KVSGO_AV_H
#define KVSGO_AV_H

#include <gst/gst.h>
#include <gst/base/gstbasesink.h>
#include "plugin_desc.h"

#define KVSGO_KIND_VIDEO 1
#define KVSGO_KIND_AUDIO 2
/* Returned by kvsgoAvChain when a state change unlocked the core while the
 * pad is not flushing: wait for PLAYING and put the buffer again. */
#define KVSGO_FLOW_RETRY 1000

/* From ClassInit, after go-gst installed its vfuncs. */
void kvsgo_av_class_init(gpointer klass);
/* From InstanceInit (GstBaseSink's pad exists). */
void kvsgo_av_instance_init(GstElement *el);
/* How long a fed second pad may stay silent while the first has ended
 * before the end of stream stops waiting for it (microseconds). */
void kvsgo_av_set_stall(GstElement *el, gint64 us);

/* At start: which pads carry media. *primary: the sink pad is linked
 * (directly or through a ghost request pad); *second_kind: the kind of a
 * linked second pad (0: none). *_media: the first structure name of the
 * peer's caps (g_free), or NULL. */
void kvsgo_av_pads(GstElement *el, gboolean *primary, int *second_kind, gchar **primary_media, gchar **second_media);
/* The name of the pad carrying kind (g_free), or NULL. */
gchar *kvsgo_av_pad_name(GstElement *el, int kind, gboolean primary);

/* Turns a buffer's PTS and DTS into running time (the pad's segment), so
 * that the two tracks share one time base, as the official element's
 * collect pads clip them. */
void kvsgo_av_to_running(GstElement *el, gboolean primary, KvsgoBuffer *b);

#endif
