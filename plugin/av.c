/* kvssink's request pads; see av.h.
 *
 * Threads and locks: st->lock guards the fields of KvsgoAv and is never held
 * while calling GstBaseSink or Go. The EOS of the first pad waits (on its
 * streaming thread, before GstBaseSink takes its PREROLL_LOCK) until the
 * second pad has ended too, has never been fed, or has been silent for the
 * stall time; unlock, FLUSH_START and deactivation wake it. The second pad's
 * chain waits while the element is paused after having played (as a sink
 * pad blocks in PAUSED), woken by PLAYING, flushing and deactivation. */
#include "av.h"
#include "plugin_desc.h"
#include "_cgo_export.h" /* kvsgoAvChain, kvsgoAvCaps, kvsgoAvEos, kvsgoAvWarn */
#include "render.h"

typedef struct {
  GMutex lock;
  GCond cond;
  GstPad *ghost;   /* a requested pad that is a ghost of "sink", or NULL */
  int ghost_kind;
  GstPad *second;  /* the plain request pad, or NULL */
  int second_kind;
  gboolean second_eos, second_fed;
  gint64 second_last; /* monotonic time of its last buffer */
  gboolean playing, was_playing;
  gboolean linking_ghost;
  gint64 stall_us;
  GstSegment second_segment; /* the second pad's last TIME segment */
} KvsgoAv;

/* A warning in the kvssink debug category (GST_DEBUG=kvssink:2). */
#define AV_WARN(el, ...)                                                     \
  do {                                                                       \
    gchar *m_ = g_strdup_printf(__VA_ARGS__);                                \
    kvsgo_log(GST_LEVEL_WARNING, __FILE__, G_STRFUNC, __LINE__, (el), m_);   \
    g_free(m_);                                                              \
  } while (0)

static GQuark av_quark;
static GstPadEventFunction basesink_event;
static GstElementClass *parent_element_class; /* for chaining change_state etc. */
static GstStateChangeReturn (*parent_change_state)(GstElement *, GstStateChange);
static gboolean (*parent_send_event)(GstElement *, GstEvent *);
static gboolean (*parent_unlock)(GstBaseSink *);

static KvsgoAv *av_get(gpointer el) { return g_object_get_qdata(G_OBJECT(el), av_quark); }

static void av_free(gpointer p) {
  KvsgoAv *st = p;
  g_mutex_clear(&st->lock);
  g_cond_clear(&st->cond);
  g_free(st);
}

static void av_wake(GstElement *el) {
  KvsgoAv *st = av_get(el);
  if (!st) return;
  g_mutex_lock(&st->lock);
  g_cond_broadcast(&st->cond);
  g_mutex_unlock(&st->lock);
}

static int kind_of_templ(GstPadTemplate *templ) {
  const gchar *n = GST_PAD_TEMPLATE_NAME_TEMPLATE(templ);
  if (g_str_has_prefix(n, "video_")) return KVSGO_KIND_VIDEO;
  if (g_str_has_prefix(n, "audio_")) return KVSGO_KIND_AUDIO;
  return 0;
}

static const char *kind_name(int k) { return k == KVSGO_KIND_VIDEO ? "video" : "audio"; }

/* ---- the first pad: GstBaseSink's, with EOS held for the second ---- */

static gboolean sink_event(GstPad *pad, GstObject *parent, GstEvent *ev) {
  GstElement *el = GST_ELEMENT(parent);
  KvsgoAv *st = av_get(el);
  if (GST_EVENT_TYPE(ev) == GST_EVENT_EOS && st) {
    gboolean flushing, gave_up = FALSE;
    gchar *name = NULL;
    kvsgo_render_push_end(el); /* after its buffers, the interleaver stops waiting for this track */
    g_mutex_lock(&st->lock);
    for (;;) {
      flushing = GST_PAD_IS_FLUSHING(pad);
      if (flushing || !st->second || !st->second_fed || st->second_eos || !gst_pad_is_linked(st->second)) break;
      gint64 until = st->second_last + st->stall_us;
      if (g_get_monotonic_time() >= until) {
        gave_up = TRUE;
        name = gst_pad_get_name(st->second);
        break;
      }
      g_cond_wait_until(&st->cond, &st->lock, until);
    }
    g_mutex_unlock(&st->lock);
    if (flushing) {
      gst_event_unref(ev);
      g_free(name);
      return FALSE;
    }
    if (gave_up) {
      gchar *msg = g_strdup_printf("pad %s received nothing for %" G_GINT64_FORMAT
                                   " ms after the other track ended: the stream ends without waiting for its end of stream",
                                   name, st->stall_us / 1000);
      kvsgoAvWarn(el, msg);
      g_free(msg);
      g_free(name);
    }
  } else if (GST_EVENT_TYPE(ev) == GST_EVENT_FLUSH_START) {
    av_wake(el);
  }
  return basesink_event(pad, parent, ev);
}

static GstPadLinkReturn sink_link(GstPad *pad, GstObject *parent, GstPad *peer) {
  KvsgoAv *st = av_get(parent);
  if (st) {
    g_mutex_lock(&st->lock);
    gboolean refuse = st->ghost && !st->linking_ghost;
    g_mutex_unlock(&st->lock);
    if (refuse) return GST_PAD_LINK_REFUSED; /* video_N/audio_N already feeds it */
  }
  return GST_PAD_LINK_OK;
}

/* ---- the second pad ---- */

static GstFlowReturn second_chain(GstPad *pad, GstObject *parent, GstBuffer *buf) {
  GstElement *el = GST_ELEMENT(parent);
  KvsgoAv *st = av_get(el);
  GstFlowReturn r;
  for (;;) {
    g_mutex_lock(&st->lock);
    while (!st->playing && st->was_playing && !GST_PAD_IS_FLUSHING(pad)) g_cond_wait(&st->cond, &st->lock);
    gboolean flushing = GST_PAD_IS_FLUSHING(pad);
    int kind = st->second_kind;
    if (!flushing) {
      st->second_fed = TRUE;
      st->second_last = g_get_monotonic_time();
      g_cond_broadcast(&st->cond);
    }
    g_mutex_unlock(&st->lock);
    if (flushing) {
      r = GST_FLOW_FLUSHING;
      break;
    }
    r = kvsgoAvChain(el, pad, kind, buf);
    if (r != KVSGO_FLOW_RETRY) break;
    /* Unlocked by a state change or a flush of the other pad: wait a
     * moment for unlock_stop to re-arm the core, or for PAUSED to end. */
    g_mutex_lock(&st->lock);
    g_cond_wait_until(&st->cond, &st->lock, g_get_monotonic_time() + 10 * G_TIME_SPAN_MILLISECOND);
    g_mutex_unlock(&st->lock);
  }
  gst_buffer_unref(buf);
  return r;
}

static gboolean second_event(GstPad *pad, GstObject *parent, GstEvent *ev) {
  GstElement *el = GST_ELEMENT(parent);
  KvsgoAv *st = av_get(el);
  gboolean ok = TRUE;
  int kind;
  g_mutex_lock(&st->lock);
  kind = st->second_kind;
  g_mutex_unlock(&st->lock);
  switch (GST_EVENT_TYPE(ev)) {
  case GST_EVENT_CAPS: {
    GstCaps *caps;
    gst_event_parse_caps(ev, &caps);
    ok = kvsgoAvCaps(el, pad, kind, caps);
    break;
  }
  case GST_EVENT_EOS:
    kvsgoAvEos(el, kind);
    g_mutex_lock(&st->lock);
    st->second_eos = TRUE;
    g_cond_broadcast(&st->cond);
    g_mutex_unlock(&st->lock);
    break;
  case GST_EVENT_SEGMENT: {
    const GstSegment *seg;
    gst_event_parse_segment(ev, &seg);
    g_mutex_lock(&st->lock);
    if (seg->format == GST_FORMAT_TIME) gst_segment_copy_into(seg, &st->second_segment);
    g_mutex_unlock(&st->lock);
    break;
  }
  case GST_EVENT_STREAM_START:
  case GST_EVENT_FLUSH_STOP:
    g_mutex_lock(&st->lock);
    st->second_eos = FALSE;
    g_mutex_unlock(&st->lock);
    break;
  case GST_EVENT_FLUSH_START:
    av_wake(el);
    kvsgoAvFlush(el); /* a chain blocked in the core returns */
    break;
  case GST_EVENT_CUSTOM_DOWNSTREAM:
  case GST_EVENT_CUSTOM_DOWNSTREAM_OOB:
    kvsgoAvCustom(el, ev);
    break;
  default:
    break;
  }
  gst_event_unref(ev);
  return ok;
}

static gboolean second_activate(GstPad *pad, GstObject *parent, GstPadMode mode, gboolean active) {
  if (!active) av_wake(GST_ELEMENT(parent)); /* the pad is flushing now */
  return TRUE;
}

/* ---- request and release ---- */

/* The kind the directly linked "sink" pad carries, judged from its peer's
 * caps: 0 when it could be either. */
static int linked_sink_kind(GstPad *sinkpad) {
  GstCaps *caps = gst_pad_peer_query_caps(sinkpad, NULL);
  int v = 0, a = 0;
  for (guint i = 0; caps && i < gst_caps_get_size(caps); i++) {
    const gchar *n = gst_structure_get_name(gst_caps_get_structure(caps, i));
    if (g_str_has_prefix(n, "video/")) v = 1;
    if (g_str_has_prefix(n, "audio/")) a = 1;
  }
  if (caps) gst_caps_unref(caps);
  if (v && !a) return KVSGO_KIND_VIDEO;
  if (a && !v) return KVSGO_KIND_AUDIO;
  return 0;
}

static GstPad *request_new_pad(GstElement *el, GstPadTemplate *templ, const gchar *req, const GstCaps *caps) {
  KvsgoAv *st = av_get(el);
  GstPad *sinkpad = GST_BASE_SINK_PAD(el);
  int kind = kind_of_templ(templ);
  GstPad *pad = NULL;
  gchar *name;
  if (!kind) return NULL;
  name = g_strdup_printf("%s_0", kind_name(kind)); /* one pad per kind, as the official element */
  if (GST_STATE(el) > GST_STATE_READY || GST_STATE_PENDING(el) > GST_STATE_READY) {
    AV_WARN(el, "Cannot add pad %s while streaming: kvssink's tracks are fixed when it starts", name);
    GST_ELEMENT_WARNING(el, STREAM, FAILED,
        ("Cannot add pad %s while streaming: kvssink's tracks are fixed when it starts; request and link it before PAUSED", name), (NULL));
    g_free(name);
    return NULL;
  }
  g_mutex_lock(&st->lock);
  gboolean sink_linked = gst_pad_is_linked(sinkpad) && !st->ghost;
  g_mutex_unlock(&st->lock);
  int taken = sink_linked ? linked_sink_kind(sinkpad) : 0;
  g_mutex_lock(&st->lock);
  if (st->ghost_kind == kind || st->second_kind == kind || taken == kind) {
    g_mutex_unlock(&st->lock);
    AV_WARN(el, "kvssink takes one %s track: pad %s refused (a %s pad is already linked)", kind_name(kind), name, kind_name(kind));
    GST_ELEMENT_WARNING(el, STREAM, FAILED,
        ("kvssink takes one %s track: pad %s refused (a %s pad is already linked)", kind_name(kind), name, kind_name(kind)), (NULL));
    g_free(name);
    return NULL;
  }
  if (st->second || (st->ghost && sink_linked)) {
    g_mutex_unlock(&st->lock);
    AV_WARN(el, "kvssink takes at most one video and one audio pad: pad %s refused", name);
    GST_ELEMENT_WARNING(el, STREAM, FAILED, ("kvssink takes at most one video and one audio pad: pad %s refused", name), (NULL));
    g_free(name);
    return NULL;
  }
  if (!st->ghost && !sink_linked) {
    /* The first media pad: a ghost of GstBaseSink's own pad. */
    pad = gst_ghost_pad_new_no_target_from_template(name, templ);
    st->ghost = pad;
    st->ghost_kind = kind;
    st->linking_ghost = TRUE;
    g_mutex_unlock(&st->lock);
    gboolean ok = gst_ghost_pad_set_target(GST_GHOST_PAD(pad), sinkpad);
    g_mutex_lock(&st->lock);
    st->linking_ghost = FALSE;
    if (!ok) {
      st->ghost = NULL;
      st->ghost_kind = 0;
      g_mutex_unlock(&st->lock);
      gst_object_unref(gst_object_ref_sink(pad));
      g_free(name);
      return NULL;
    }
    g_mutex_unlock(&st->lock);
  } else {
    pad = gst_pad_new_from_template(templ, name);
    gst_pad_set_chain_function(pad, second_chain);
    gst_pad_set_event_function(pad, second_event);
    gst_pad_set_activatemode_function(pad, second_activate);
    st->second = pad;
    st->second_kind = kind;
    st->second_eos = st->second_fed = FALSE;
    g_mutex_unlock(&st->lock);
  }
  g_free(name);
  gst_element_add_pad(el, pad);
  return pad;
}

static void release_pad(GstElement *el, GstPad *pad) {
  KvsgoAv *st = av_get(el);
  gboolean ghost = FALSE;
  g_mutex_lock(&st->lock);
  if (pad == st->ghost) {
    st->ghost = NULL;
    st->ghost_kind = 0;
    ghost = TRUE;
  } else if (pad == st->second) {
    st->second = NULL;
    st->second_kind = 0;
  }
  g_cond_broadcast(&st->cond);
  g_mutex_unlock(&st->lock);
  if (ghost) gst_ghost_pad_set_target(GST_GHOST_PAD(pad), NULL);
  gst_pad_set_active(pad, FALSE);
  gst_element_remove_pad(el, pad);
}

/* ---- element and base-sink hooks ---- */

static GstStateChangeReturn change_state(GstElement *el, GstStateChange t) {
  KvsgoAv *st = av_get(el);
  g_mutex_lock(&st->lock);
  switch (t) {
  case GST_STATE_CHANGE_READY_TO_PAUSED:
    st->second_eos = st->second_fed = FALSE;
    break;
  case GST_STATE_CHANGE_PAUSED_TO_PLAYING:
    st->playing = st->was_playing = TRUE;
    break;
  case GST_STATE_CHANGE_PLAYING_TO_PAUSED:
    st->playing = FALSE;
    break;
  case GST_STATE_CHANGE_PAUSED_TO_READY:
    st->playing = st->was_playing = FALSE;
    break;
  default:
    break;
  }
  g_cond_broadcast(&st->cond);
  g_mutex_unlock(&st->lock);
  if (t == GST_STATE_CHANGE_PAUSED_TO_PLAYING) kvsgoAvPlaying(el, TRUE);
  if (t == GST_STATE_CHANGE_PLAYING_TO_PAUSED) kvsgoAvPlaying(el, FALSE);
  return parent_change_state(el, t);
}

/* A seek sent to the element reaches the second branch too (GstBaseSink
 * sends it upstream through its own pad only). */
static gboolean send_event(GstElement *el, GstEvent *ev) {
  if (GST_EVENT_TYPE(ev) == GST_EVENT_SEEK) {
    KvsgoAv *st = av_get(el);
    GstPad *second = NULL;
    g_mutex_lock(&st->lock);
    if (st->second) second = gst_object_ref(st->second);
    g_mutex_unlock(&st->lock);
    if (second) {
      gst_pad_push_event(second, gst_event_ref(ev));
      gst_object_unref(second);
    }
  }
  return parent_send_event(el, ev);
}

static gboolean unlock(GstBaseSink *bs) {
  av_wake(GST_ELEMENT(bs));
  return parent_unlock ? parent_unlock(bs) : TRUE;
}

void kvsgo_av_class_init(gpointer klass) {
  GstElementClass *ec = GST_ELEMENT_CLASS(klass);
  GstBaseSinkClass *bc = GST_BASE_SINK_CLASS(klass);
  av_quark = g_quark_from_static_string("kvsgo-av");
  parent_element_class = ec;
  ec->request_new_pad = request_new_pad;
  ec->release_pad = release_pad;
  parent_change_state = ec->change_state;
  ec->change_state = change_state;
  parent_send_event = ec->send_event;
  ec->send_event = send_event;
  parent_unlock = bc->unlock;
  bc->unlock = unlock;
}

void kvsgo_av_instance_init(GstElement *el) {
  KvsgoAv *st = g_new0(KvsgoAv, 1);
  GstPad *sinkpad = GST_BASE_SINK_PAD(el);
  g_mutex_init(&st->lock);
  g_cond_init(&st->cond);
  st->stall_us = 3 * G_TIME_SPAN_SECOND;
  gst_segment_init(&st->second_segment, GST_FORMAT_TIME);
  g_object_set_qdata_full(G_OBJECT(el), av_quark, st, av_free);
  if (!basesink_event) basesink_event = GST_PAD_EVENTFUNC(sinkpad);
  gst_pad_set_event_function(sinkpad, sink_event);
  gst_pad_set_link_function(sinkpad, sink_link);
}

void kvsgo_av_set_stall(GstElement *el, gint64 us) {
  KvsgoAv *st = av_get(el);
  g_mutex_lock(&st->lock);
  st->stall_us = us;
  g_mutex_unlock(&st->lock);
}

/* The media type the pad will carry: its current caps, else what its peer
 * can give within the pad's template, the template's first type first (as
 * the official element reads the allowed caps at start). */
static gchar *peer_media(GstPad *pad) {
  GstCaps *caps = gst_pad_get_current_caps(pad);
  if (!caps) {
    GstCaps *templ = gst_pad_get_pad_template_caps(pad);
    caps = gst_pad_peer_query_caps(pad, templ);
    gst_caps_unref(templ);
  }
  gchar *out = NULL;
  if (caps && gst_caps_get_size(caps) > 0 && !gst_caps_is_any(caps))
    out = g_strdup(gst_structure_get_name(gst_caps_get_structure(caps, 0)));
  if (caps) gst_caps_unref(caps);
  return out;
}

void kvsgo_av_pads(GstElement *el, gboolean *primary, int *second_kind, gchar **primary_media, gchar **second_media) {
  KvsgoAv *st = av_get(el);
  GstPad *sinkpad = GST_BASE_SINK_PAD(el), *ghost = NULL, *second = NULL;
  g_mutex_lock(&st->lock);
  if (st->ghost) ghost = gst_object_ref(st->ghost);
  if (st->second) second = gst_object_ref(st->second);
  *second_kind = st->second_kind;
  g_mutex_unlock(&st->lock);
  *primary = ghost ? gst_pad_is_linked(ghost) : gst_pad_is_linked(sinkpad);
  *primary_media = *primary ? peer_media(ghost ? ghost : sinkpad) : NULL;
  if (!second || !gst_pad_is_linked(second)) *second_kind = 0;
  *second_media = *second_kind ? peer_media(second) : NULL;
  if (ghost) gst_object_unref(ghost);
  if (second) gst_object_unref(second);
}

gchar *kvsgo_av_pad_name(GstElement *el, int kind, gboolean primary) {
  KvsgoAv *st = av_get(el);
  gchar *out = NULL;
  g_mutex_lock(&st->lock);
  if (primary) out = st->ghost ? gst_pad_get_name(st->ghost) : g_strdup("sink");
  else if (st->second) out = gst_pad_get_name(st->second);
  g_mutex_unlock(&st->lock);
  return out;
}

static guint64 running(const GstSegment *seg, guint64 t) {
  guint64 out;
  if (t == GST_CLOCK_TIME_NONE || seg->format != GST_FORMAT_TIME) return t;
  /* A time before the segment start (a DTS ahead of its PTS) clamps to 0. */
  if (gst_segment_to_running_time_full(seg, GST_FORMAT_TIME, t, &out) < 0) return 0;
  return out;
}

void kvsgo_av_to_running(GstElement *el, gboolean primary, KvsgoBuffer *b) {
  if (primary) {
    /* GstBaseSink's segment, read on its streaming thread (render). */
    GstSegment *seg = &GST_BASE_SINK(el)->segment;
    b->pts = running(seg, b->pts);
    b->dts = running(seg, b->dts);
    return;
  }
  KvsgoAv *st = av_get(el);
  g_mutex_lock(&st->lock);
  b->pts = running(&st->second_segment, b->pts);
  b->dts = running(&st->second_segment, b->dts);
  g_mutex_unlock(&st->lock);
}
