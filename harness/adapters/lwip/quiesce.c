/* Semaphores and mailboxes for lwIP, and the "quiescence" test built on them.
 *
 * liblwip calls its sys_arch semaphore and mailbox functions through the PLT, so the ones
 * defined here replace the unix port's. All of them share one mutex, which lets the adapter
 * decide deterministically when the stack has finished reacting to a packet, a timer or a
 * call: every worker thread (the tcpip thread and one thread per socket call) is then either
 * finished or waiting on a semaphore or mailbox that has nothing for it. A thread waiting on
 * an object that has just been signalled counts as running, so no wake-up can be missed.
 *
 * Timed waits: the tcpip thread uses them to sleep until lwIP's next timer, but the adapter
 * fires timers itself on the virtual clock, so every thread tracked here waits untimed (no
 * call sets SO_RCVTIMEO or SO_SNDTIMEO). */
#define _GNU_SOURCE
#include "adapter.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lwip/sys.h"

#define MBOX_SIZE 128 /* as the unix port's SYS_MBOX_SIZE */

enum wait_kind { WAIT_NONE, WAIT_SEM, WAIT_FETCH, WAIT_POST };
enum wstate { W_RUNNING, W_WAITING, W_DONE };

struct sys_sem {
  unsigned count;
  int waiters, dead;
};

struct sys_mbox {
  void *msgs[MBOX_SIZE];
  int head, n;
  int waiters, dead;
};

struct worker {
  enum wstate state;
  enum wait_kind kind;
  void *obj;
  struct worker *next;
};

static pthread_mutex_t g = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;    /* an object got something */
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER; /* a worker changed state */
static struct worker *workers;
static __thread struct worker *self;

struct worker *worker_new(void) {
  struct worker *w = calloc(1, sizeof *w);
  if (!w) abort();
  pthread_mutex_lock(&g);
  w->next = workers;
  workers = w;
  pthread_mutex_unlock(&g);
  return w;
}

void worker_adopt_self(struct worker *w) { self = w; }

void worker_finish(struct worker *w) {
  pthread_mutex_lock(&g);
  w->state = W_DONE;
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&g);
}

int worker_is_done(struct worker *w) {
  pthread_mutex_lock(&g);
  int done = w->state == W_DONE;
  pthread_mutex_unlock(&g);
  return done;
}

void workers_reap(void) {
  pthread_mutex_lock(&g);
  for (struct worker **p = &workers; *p;) {
    struct worker *w = *p;
    if (w->state == W_DONE) {
      *p = w->next;
      free(w);
    } else {
      p = &w->next;
    }
  }
  pthread_mutex_unlock(&g);
}

/* Whether the object a waiter waits on can let it go on (g held). */
static int can_proceed(enum wait_kind kind, void *obj) {
  switch (kind) {
  case WAIT_SEM: return ((struct sys_sem *)obj)->count > 0 || ((struct sys_sem *)obj)->dead;
  case WAIT_FETCH: return ((struct sys_mbox *)obj)->n > 0 || ((struct sys_mbox *)obj)->dead;
  case WAIT_POST: return ((struct sys_mbox *)obj)->n < MBOX_SIZE || ((struct sys_mbox *)obj)->dead;
  default: return 1;
  }
}

static int quiet(void) {
  for (struct worker *w = workers; w; w = w->next) {
    if (w->state == W_RUNNING) return 0;
    if (w->state == W_WAITING && can_proceed(w->kind, w->obj)) return 0;
  }
  return 1;
}

void settle(void) {
  struct timespec limit;
  clock_gettime(CLOCK_REALTIME, &limit);
  limit.tv_sec += 5;
  pthread_mutex_lock(&g);
  while (!quiet()) {
    if (pthread_cond_timedwait(&changed, &g, &limit) == ETIMEDOUT) {
      fprintf(stderr, "lwip adapter: a thread inside lwIP did not block or finish within 5 s\n");
      break;
    }
  }
  pthread_mutex_unlock(&g);
}

/* Waits (g held) until obj lets this thread proceed; returns 0, or -1 on a real timeout. */
static int wait_for(enum wait_kind kind, void *obj, int *waiters, u32_t timeout_ms) {
  struct timespec limit;
  int timed = timeout_ms != 0 && self == NULL;
  if (timed) {
    clock_gettime(CLOCK_REALTIME, &limit);
    limit.tv_sec += timeout_ms / 1000;
    limit.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (limit.tv_nsec >= 1000000000L) {
      limit.tv_sec++;
      limit.tv_nsec -= 1000000000L;
    }
  }
  if (self) {
    self->state = W_WAITING;
    self->kind = kind;
    self->obj = obj;
    pthread_cond_broadcast(&changed);
  }
  (*waiters)++;
  int rc = 0;
  while (!can_proceed(kind, obj)) {
    if (timed) {
      if (pthread_cond_timedwait(&wake, &g, &limit) == ETIMEDOUT) {
        rc = -1;
        break;
      }
    } else {
      pthread_cond_wait(&wake, &g);
    }
  }
  (*waiters)--;
  if (self) {
    self->state = W_RUNNING;
    self->kind = WAIT_NONE;
    self->obj = NULL;
  }
  return rc;
}

/* The tcpip thread is a worker too (it runs lwIP callbacks); it registers itself here. */
void quiesce_register_tcpip_thread(void) {
  struct worker *w = worker_new();
  worker_adopt_self(w);
}

err_t sys_sem_new(sys_sem_t *sem, u8_t count) {
  struct sys_sem *s = calloc(1, sizeof *s);
  if (!s) return ERR_MEM;
  s->count = count;
  *sem = s;
  return ERR_OK;
}

void sys_sem_free(sys_sem_t *sem) {
  struct sys_sem *s = *sem;
  if (!s) return;
  pthread_mutex_lock(&g);
  if (s->waiters) {
    s->dead = 1; /* the last waiter frees it */
    pthread_cond_broadcast(&wake);
  } else {
    free(s);
  }
  pthread_mutex_unlock(&g);
}

void sys_sem_signal(sys_sem_t *sem) {
  pthread_mutex_lock(&g);
  (*sem)->count++;
  pthread_cond_broadcast(&wake);
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&g);
}

u32_t sys_arch_sem_wait(sys_sem_t *sem, u32_t timeout) {
  struct sys_sem *s = *sem;
  pthread_mutex_lock(&g);
  int rc = wait_for(WAIT_SEM, s, &s->waiters, timeout);
  u32_t ret = SYS_ARCH_TIMEOUT;
  if (s->dead) {
    if (!s->waiters) free(s);
  } else if (rc == 0) {
    s->count--;
    ret = 0;
  }
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&g);
  return ret;
}

err_t sys_mbox_new(sys_mbox_t *mbox, int size) {
  (void)size;
  struct sys_mbox *m = calloc(1, sizeof *m);
  if (!m) return ERR_MEM;
  *mbox = m;
  return ERR_OK;
}

void sys_mbox_free(sys_mbox_t *mbox) {
  struct sys_mbox *m = *mbox;
  if (!m) return;
  pthread_mutex_lock(&g);
  if (m->waiters) {
    m->dead = 1;
    pthread_cond_broadcast(&wake);
  } else {
    free(m);
  }
  pthread_mutex_unlock(&g);
}

static void mbox_put(struct sys_mbox *m, void *msg) {
  m->msgs[(m->head + m->n) % MBOX_SIZE] = msg;
  m->n++;
  pthread_cond_broadcast(&wake);
  pthread_cond_broadcast(&changed);
}

err_t sys_mbox_trypost(sys_mbox_t *mbox, void *msg) {
  struct sys_mbox *m = *mbox;
  pthread_mutex_lock(&g);
  err_t r = ERR_MEM;
  if (m->n < MBOX_SIZE && !m->dead) {
    mbox_put(m, msg);
    r = ERR_OK;
  }
  pthread_mutex_unlock(&g);
  return r;
}

err_t sys_mbox_trypost_fromisr(sys_mbox_t *mbox, void *msg) { return sys_mbox_trypost(mbox, msg); }

void sys_mbox_post(sys_mbox_t *mbox, void *msg) {
  struct sys_mbox *m = *mbox;
  pthread_mutex_lock(&g);
  wait_for(WAIT_POST, m, &m->waiters, 0);
  if (!m->dead) mbox_put(m, msg);
  else if (!m->waiters) free(m);
  pthread_mutex_unlock(&g);
}

static void *mbox_take(struct sys_mbox *m) {
  void *msg = m->msgs[m->head];
  m->head = (m->head + 1) % MBOX_SIZE;
  m->n--;
  pthread_cond_broadcast(&wake); /* room for a blocked poster */
  pthread_cond_broadcast(&changed);
  return msg;
}

u32_t sys_arch_mbox_fetch(sys_mbox_t *mbox, void **msg, u32_t timeout) {
  struct sys_mbox *m = *mbox;
  pthread_mutex_lock(&g);
  int rc = wait_for(WAIT_FETCH, m, &m->waiters, timeout);
  u32_t ret = SYS_ARCH_TIMEOUT;
  if (m->dead) {
    if (!m->waiters) free(m);
  } else if (rc == 0) {
    void *got = mbox_take(m);
    if (msg) *msg = got;
    ret = 0;
  }
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&g);
  return ret;
}

u32_t sys_arch_mbox_tryfetch(sys_mbox_t *mbox, void **msg) {
  struct sys_mbox *m = *mbox;
  pthread_mutex_lock(&g);
  u32_t ret = SYS_MBOX_EMPTY;
  if (m->n > 0 && !m->dead) {
    void *got = mbox_take(m);
    if (msg) *msg = got;
    ret = 0;
  }
  pthread_mutex_unlock(&g);
  return ret;
}
