/* kvssink's render queue; see render.h. */
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "render.h"
#include "av.h"
#include "plugin_desc.h"

typedef struct {
  GMutex lock;
  GCond cond;
  KvsgoQueued ring[KVSGO_QUEUE_LEN];
  guint head, count;   /* ring[head] is the oldest queued buffer */
  guint64 pushed;      /* buffers queued since instance init */
  guint64 released;    /* buffers released by the drainer */
  gboolean open;       /* between start and stop */
  gboolean av;         /* a second track comes through a request pad */
  gint idle;           /* the drainer waits for a wake byte (written atomically: the drainer reads it without the lock) */
  gboolean batch;      /* wake the drainer per KVSGO_WAKE_BATCH buffers (kvsgo_render_set_batch) */
  gboolean unlocked;   /* between unlock and unlock_stop */
  GstFlowReturn flow;  /* GST_FLOW_OK, or the failure every render returns */
  int waiters;         /* threads in g_cond_wait: a release signals only then */
  int wake_fd;
  /* Batch mode: buffers the core is done with, unmapped and unreffed by
   * the streaming thread at its next render (the thread that allocated
   * them, where the allocator's caches and the buffers' cache lines are),
   * or by the drainer when no render came to take them. */
  GstBuffer *done[KVSGO_QUEUE_LEN];
  GstMapInfo done_map[KVSGO_QUEUE_LEN];
  guint ndone;
} KvsgoRender;

static GQuark render_quark;
static guint render_skip_flags;

static KvsgoRender *render_get(gpointer el) { return g_object_get_qdata(G_OBJECT(el), render_quark); }

/* The done list, taken out of the queue under its lock (take_done_locked)
 * and freed outside it (free_done). */
typedef struct {
  GstBuffer *buf[KVSGO_QUEUE_LEN];
  GstMapInfo map[KVSGO_QUEUE_LEN];
  guint n;
} KvsgoDone;

static void take_done_locked(KvsgoRender *q, KvsgoDone *d) {
  d->n = q->ndone;
  memcpy(d->buf, q->done, q->ndone * sizeof q->done[0]);
  memcpy(d->map, q->done_map, q->ndone * sizeof q->done_map[0]);
  q->ndone = 0;
}

static void free_done(KvsgoDone *d) {
  for (guint i = 0; i < d->n; i++) {
    gst_buffer_unmap(d->buf[i], &d->map[i]);
    gst_buffer_unref(d->buf[i]);
  }
  d->n = 0;
}

static void render_free(gpointer p) {
  KvsgoRender *q = p;
  KvsgoDone d;
  take_done_locked(q, &d); /* finalising: nobody else holds q */
  free_done(&d);
  /* Finalised after stop: the drainer released everything it took; what
   * is left was never taken. */
  for (guint i = 0; i < q->count; i++) {
    KvsgoQueued *b = &q->ring[(q->head + i) % KVSGO_QUEUE_LEN];
    if (!b->buf) continue;
    gst_buffer_unmap(b->buf, &b->map);
    gst_buffer_unref(b->buf);
  }
  g_mutex_clear(&q->lock);
  g_cond_clear(&q->cond);
  g_free(q);
}

static void wake(int fd) {
  static const guint64 one = 1;
  /* Every write to an eventfd wakes its pollers (the counter, never read,
   * does not matter); EINTR is retried. */
  while (write(fd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

int kvsgo_render_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

/* Wakes an idle drainer; q->lock is held. It returns the fd to write
 * once the lock is released, or -1. */
static int wake_locked(KvsgoRender *q) {
  if (!q->idle) return -1;
  g_atomic_int_set(&q->idle, FALSE);
  return q->wake_fd;
}

/* Queues b (the queue has room; q->lock is held) and releases the lock,
 * waking an idle drainer: at once, or in batch mode once KVSGO_WAKE_BATCH
 * buffers wait (urgent: at once in any mode). */
static void push_and_unlock(KvsgoRender *q, const KvsgoQueued *b, gboolean urgent) {
  q->ring[(q->head + q->count) % KVSGO_QUEUE_LEN] = *b;
  q->count++;
  q->pushed++;
  int fd = -1;
  if (urgent || !q->batch || q->count >= KVSGO_WAKE_BATCH) fd = wake_locked(q);
  g_mutex_unlock(&q->lock);
  if (fd >= 0) wake(fd);
}

static GstFlowReturn render(GstBaseSink *bs, GstBuffer *buf) {
  KvsgoRender *q = render_get(bs);
  KvsgoQueued b = {0};
  if (GST_BUFFER_FLAGS(buf) & render_skip_flags) return GST_FLOW_OK; /* as the official element */
  b.pts = GST_BUFFER_PTS(buf);
  b.dts = GST_BUFFER_DTS(buf);
  b.duration = GST_BUFFER_DURATION(buf);
  b.flags = GST_BUFFER_FLAGS(buf);
  b.entered = g_get_monotonic_time();
  g_mutex_lock(&q->lock);
  gboolean av = q->av;
  g_mutex_unlock(&q->lock);
  {
    /* One time base for both tracks when audio and video share the element. */
    KvsgoBuffer t = {.pts = b.pts, .dts = b.dts};
    if (av) {
      kvsgo_av_to_running(GST_ELEMENT(bs), TRUE, &t);
      b.pts = t.pts;
      b.dts = t.dts;
    }
  }
  if (!gst_buffer_map(buf, &b.map, GST_MAP_READ)) {
    GST_ELEMENT_ERROR(bs, RESOURCE, READ, ("Could not map a buffer for reading"), (NULL));
    return GST_FLOW_ERROR;
  }
  b.data = b.map.data;
  b.size = b.map.size;
  b.buf = gst_buffer_ref(buf);
  g_mutex_lock(&q->lock);
  if (q->ndone > 0) {
    KvsgoDone d;
    take_done_locked(q, &d);
    g_mutex_unlock(&q->lock);
    free_done(&d);
    g_mutex_lock(&q->lock);
  }
  for (;;) {
    GstFlowReturn r = q->flow;
    if (r == GST_FLOW_OK && !q->open) r = GST_FLOW_FLUSHING;
    if (r != GST_FLOW_OK) {
      g_mutex_unlock(&q->lock);
      gst_buffer_unmap(b.buf, &b.map);
      gst_buffer_unref(b.buf);
      return r;
    }
    if (q->count < KVSGO_QUEUE_LEN) break;
    if (q->unlocked) {
      /* A state change or flush while the queue is full: as GstBaseSink
       * asks, wait for preroll; back in PLAYING the buffer is queued. */
      g_mutex_unlock(&q->lock);
      r = gst_base_sink_wait_preroll(bs);
      if (r != GST_FLOW_OK) {
        gst_buffer_unmap(b.buf, &b.map);
        gst_buffer_unref(b.buf);
        return r;
      }
      g_mutex_lock(&q->lock);
      continue;
    }
    q->waiters++;
    g_cond_wait(&q->cond, &q->lock);
    q->waiters--;
  }
  push_and_unlock(q, &b, FALSE);
  return GST_FLOW_OK;
}

gboolean kvsgo_render_push_end(GstElement *el) {
  KvsgoRender *q = render_get(el);
  KvsgoQueued b = {0};
  b.entered = g_get_monotonic_time();
  g_mutex_lock(&q->lock);
  while (q->open && q->flow == GST_FLOW_OK && !q->unlocked && q->count == KVSGO_QUEUE_LEN) {
    q->waiters++;
    g_cond_wait(&q->cond, &q->lock);
    q->waiters--;
  }
  if (!q->open || q->flow != GST_FLOW_OK || q->count == KVSGO_QUEUE_LEN) {
    g_mutex_unlock(&q->lock);
    return FALSE;
  }
  push_and_unlock(q, &b, TRUE);
  return TRUE;
}

void kvsgo_render_class_init(gpointer klass, guint skip_flags) {
  render_quark = g_quark_from_static_string("kvsgo-render");
  render_skip_flags = skip_flags;
  GST_BASE_SINK_CLASS(klass)->render = render;
}

void kvsgo_render_instance_init(GstElement *el) {
  KvsgoRender *q = g_new0(KvsgoRender, 1);
  g_mutex_init(&q->lock);
  g_cond_init(&q->cond);
  q->wake_fd = -1;
  g_object_set_qdata_full(G_OBJECT(el), render_quark, q, render_free);
}

void kvsgo_render_open(GstElement *el, int wake_fd, gboolean av) {
  KvsgoRender *q = render_get(el);
  g_mutex_lock(&q->lock);
  q->open = TRUE;
  q->av = av;
  q->flow = GST_FLOW_OK;
  g_atomic_int_set(&q->idle, FALSE);
  q->batch = FALSE;
  q->wake_fd = wake_fd;
  g_mutex_unlock(&q->lock);
}

gint *kvsgo_render_idle_flag(GstElement *el) { return &render_get(el)->idle; }

void kvsgo_render_close(GstElement *el) {
  KvsgoRender *q = render_get(el);
  KvsgoDone d;
  g_mutex_lock(&q->lock);
  q->open = FALSE;
  int fd = q->wake_fd;
  take_done_locked(q, &d);
  g_cond_broadcast(&q->cond);
  g_mutex_unlock(&q->lock);
  free_done(&d);
  if (fd >= 0) wake(fd);
}

int kvsgo_render_take(GstElement *el, KvsgoQueued *out, int max, gint64 *now) {
  KvsgoRender *q = render_get(el);
  int n = 0;
  g_mutex_lock(&q->lock);
  while (n < max && q->count > 0) {
    out[n++] = q->ring[q->head];
    q->head = (q->head + 1) % KVSGO_QUEUE_LEN;
    q->count--;
  }
  if (n == 0) {
    if (!q->open) n = -1;
    else g_atomic_int_set(&q->idle, TRUE);
  }
  g_mutex_unlock(&q->lock);
  *now = g_get_monotonic_time();
  return n;
}

void kvsgo_render_release(GstElement *el, KvsgoQueued *taken, int n) {
  KvsgoRender *q = render_get(el);
  g_mutex_lock(&q->lock);
  gboolean defer = q->batch && q->open;
  for (int i = 0; i < n; i++) {
    if (!taken[i].buf) continue; /* an end-of-track mark */
    if (defer && q->ndone < KVSGO_QUEUE_LEN) {
      q->done[q->ndone] = taken[i].buf;
      q->done_map[q->ndone] = taken[i].map;
      q->ndone++;
      taken[i].buf = NULL;
    }
  }
  g_mutex_unlock(&q->lock);
  for (int i = 0; i < n; i++) {
    if (!taken[i].buf) continue;
    gst_buffer_unmap(taken[i].buf, &taken[i].map);
    gst_buffer_unref(taken[i].buf);
    taken[i].buf = NULL;
  }
  g_mutex_lock(&q->lock);
  q->released += n;
  if (q->waiters > 0) g_cond_broadcast(&q->cond); /* a broadcast is a system call */
  g_mutex_unlock(&q->lock);
}

int kvsgo_render_set_batch(GstElement *el, gboolean batch) {
  KvsgoRender *q = render_get(el);
  KvsgoDone d = {.n = 0};
  g_mutex_lock(&q->lock);
  q->batch = batch;
  int n = q->count;
  if (!batch) take_done_locked(q, &d);
  g_mutex_unlock(&q->lock);
  free_done(&d);
  return n;
}

void kvsgo_render_free_done(GstElement *el) {
  KvsgoRender *q = render_get(el);
  KvsgoDone d;
  g_mutex_lock(&q->lock);
  take_done_locked(q, &d);
  g_mutex_unlock(&q->lock);
  free_done(&d);
}

void kvsgo_render_set_flow(GstElement *el, GstFlowReturn flow) {
  KvsgoRender *q = render_get(el);
  g_mutex_lock(&q->lock);
  if (q->flow == GST_FLOW_OK) q->flow = flow;
  g_cond_broadcast(&q->cond);
  g_mutex_unlock(&q->lock);
}

gboolean kvsgo_render_barrier(GstElement *el) {
  KvsgoRender *q = render_get(el);
  gboolean ok;
  g_mutex_lock(&q->lock);
  guint64 want = q->pushed;
  if (q->count > 0) {
    int fd = wake_locked(q); /* batch mode may have left them waiting */
    if (fd >= 0) wake(fd);
  }
  while (q->released < want && q->open && q->flow == GST_FLOW_OK) {
    if (q->unlocked) {
      /* As render: a pause waits for PLAYING (GstBaseSink holds the
       * PREROLL_LOCK in set_caps and event as in render); a flush or a
       * shutdown ends the wait. */
      g_mutex_unlock(&q->lock);
      if (gst_base_sink_wait_preroll(GST_BASE_SINK(el)) != GST_FLOW_OK) return FALSE;
      g_mutex_lock(&q->lock);
      continue;
    }
    q->waiters++;
    g_cond_wait(&q->cond, &q->lock);
    q->waiters--;
  }
  ok = q->released >= want;
  g_mutex_unlock(&q->lock);
  return ok;
}

void kvsgo_render_unlock(GstElement *el, gboolean unlocked) {
  KvsgoRender *q = render_get(el);
  g_mutex_lock(&q->lock);
  q->unlocked = unlocked;
  g_cond_broadcast(&q->cond);
  g_mutex_unlock(&q->lock);
}
