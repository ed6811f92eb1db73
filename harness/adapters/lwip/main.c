/* rfcdrill target protocol v1 (harness/targets/PROTOCOL.md) for lwIP 2.1.3 as Debian builds
 * it: the control loop, hello, init, sync, advance and quit. */
#define _GNU_SOURCE
#include "adapter.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lwip/init.h"
#include "lwip/tcpip.h"
#include "lwip/timeouts.h"

void sockopts_hello(struct sb *b);
void quiesce_register_tcpip_thread(void);

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

void emit(struct sb *b) {
  pthread_mutex_lock(&out_lock);
  fwrite(b->p, 1, b->n, stdout);
  fputc('\n', stdout);
  fflush(stdout);
  pthread_mutex_unlock(&out_lock);
}

static void hello(void) {
  struct sb b;
  sb_init(&b);
  sb_printf(&b,
            "{\"event\": \"hello\", \"protocol\": 1, \"name\": \"lwip\", \"version\": \"%s\", "
            "\"capabilities\": {\"time\": \"virtual\", \"ip_versions\": [\"ipv4\"], "
            "\"tcp_options\": [\"mss\", \"wscale\"], \"ip_options\": false, "
            "\"calls\": [\"socket\", \"bind\", \"listen\", \"accept\", \"connect\", \"read\", \"write\", "
            "\"shutdown\", \"close\", \"setsockopt\", \"getsockopt\", \"fcntl\", \"poll\", "
            "\"getsockname\", \"getpeername\", \"ioctl\", \"state\"], \"sockopts\": [",
            LWIP_VERSION_STRING);
  sockopts_hello(&b);
  sb_printf(&b, "], \"state\": [\"state\", \"SND.UNA\", \"SND.NXT\", \"SND.WND\", \"RCV.NXT\", \"RCV.WND\", "
                "\"cwnd\", \"ssthresh\", \"RTO\", \"SMSS\"], \"sysctls\": [");
  sysctls_hello(&b, 1);
  sb_printf(&b, "], \"fixed_sysctls\": {");
  sysctls_hello(&b, 0);
  sb_printf(&b, "}}}");
  emit(&b);
  sb_free(&b);
}

static void reply_error(long long id, const char *what) {
  struct sb b;
  sb_init(&b);
  if (id >= 0) sb_printf(&b, "{\"id\": %lld, \"error\": ", id);
  else sb_printf(&b, "{\"id\": null, \"error\": ");
  sb_str(&b, what);
  sb_printf(&b, "}");
  emit(&b);
  sb_free(&b);
}

static void reply_ok(long long id) {
  struct sb b;
  sb_init(&b);
  sb_printf(&b, "{\"id\": %lld, \"ok\": true}", id);
  emit(&b);
  sb_free(&b);
}

/* The virtual time of the stack's next timer or poll timeout, UINT64_MAX if none. */
static uint64_t next_due_us(void) {
  LOCK_TCPIP_CORE();
  u32_t sleep = sys_timeouts_sleeptime();
  UNLOCK_TCPIP_CORE();
  uint64_t due = sleep == SYS_TIMEOUTS_SLEEPTIME_INFINITE ? UINT64_MAX : (adapter_now_us / 1000 + sleep) * 1000;
  uint64_t poll_due = polls_next_deadline();
  return poll_due < due ? poll_due : due;
}

static void reply_time(long long id) {
  struct sb b;
  sb_init(&b);
  uint64_t next = next_due_us();
  sb_printf(&b, "{\"id\": %lld, \"now_us\": %llu, \"next_us\": ", id, (unsigned long long)adapter_now_us);
  if (next == UINT64_MAX) sb_printf(&b, "null}");
  else sb_printf(&b, "%llu}", (unsigned long long)next);
  emit(&b);
  sb_free(&b);
}

/* After the stack did something: let blocked calls finish or block again, then answer polls. */
static void quiesce(void) {
  settle();
  polls_check();
  workers_reap();
}

/* A sysctl value as text: a string, or an integer as rfcdrill may send one. */
static int sysctl_text(const struct jval *v, char *out, size_t outlen, char *err, size_t errlen) {
  if (v->type == J_STR && v->len < outlen) {
    memcpy(out, v->str, v->len + 1);
    return 0;
  }
  if (v->type == J_NUM && v->is_int) {
    snprintf(out, outlen, "%lld", (long long)v->integer);
    return 0;
  }
  snprintf(err, errlen, "sysctl %s: the value must be a string", v->key ? v->key : "");
  return -1;
}

static int do_sysctl(const struct jval *req, char *err, size_t errlen) {
  const struct jval *name = json_get(req, "name"), *value = json_get(req, "value");
  char text[32];
  if (!name || name->type != J_STR || !value) {
    snprintf(err, errlen, "sysctl needs 'name' and 'value'");
    return -1;
  }
  return sysctl_text(value, text, sizeof text, err, errlen) || sysctl_apply(name->str, text, err, errlen) ? -1 : 0;
}

static sem_t tcpip_started;

static void tcpip_ready(void *arg) {
  (void)arg;
  quiesce_register_tcpip_thread();
  sem_post(&tcpip_started);
}

static int packet_fd = -1;
static int initialised;
static unsigned long long packets_read;

static int do_init(const struct jval *req, char *err, size_t errlen) {
  const struct jval *ipv = json_get(req, "ip_version"), *lip = json_get(req, "local_ip"),
                    *gw = json_get(req, "gateway_ip"), *pl = json_get(req, "prefix_len"),
                    *mtu = json_get(req, "mtu"), *seed = json_get(req, "seed"), *sysctls = json_get(req, "sysctls");
  if (initialised) {
    snprintf(err, errlen, "init was already done");
    return -1;
  }
  if (ipv && (ipv->type != J_STR || strcmp(ipv->str, "ipv4"))) {
    snprintf(err, errlen, "ip_version must be ipv4: this adapter declares only ipv4");
    return -1;
  }
  if (!lip || lip->type != J_STR || !pl || pl->type != J_NUM || !pl->is_int || !mtu || mtu->type != J_NUM ||
      !mtu->is_int || (gw && gw->type != J_STR && gw->type != J_NULL)) {
    snprintf(err, errlen, "init needs local_ip (string), prefix_len and mtu (integers)");
    return -1;
  }
  if (sysctls && sysctls->type != J_OBJ && sysctls->type != J_NULL) {
    snprintf(err, errlen, "'sysctls' must be an object of names and string values");
    return -1;
  }
  for (const struct jval *s = sysctls ? sysctls->child : NULL; s; s = s->next) {
    char value[32];
    if (sysctl_text(s, value, sizeof value, err, errlen) || sysctl_apply(s->key, value, err, errlen)) return -1;
  }
  /* lwIP draws its first ephemeral port from rand() in lwip_init (tcpip_init calls it). */
  srand(seed && seed->type == J_NUM && seed->is_int ? (unsigned)seed->integer : 1);
  sem_init(&tcpip_started, 0, 0);
  tcpip_init(tcpip_ready, NULL);
  while (sem_wait(&tcpip_started) && errno == EINTR) {
  }
  if (netif_setup(packet_fd, lip->str, (int)pl->integer, gw && gw->type == J_STR ? gw->str : NULL,
                  (int)mtu->integer, err, errlen))
    return -1;
  quiesce();
  initialised = 1;
  return 0;
}

static int do_sync(const struct jval *req, char *err, size_t errlen) {
  const struct jval *k = json_get(req, "packets");
  if (!k || k->type != J_NUM || !k->is_int || k->integer < (long long)packets_read) {
    snprintf(err, errlen, "'packets' must be an integer, at least the %llu packets already read", packets_read);
    return -1;
  }
  while (packets_read < (unsigned long long)k->integer) {
    if (netif_input_one(err, errlen)) return -1;
    packets_read++;
    quiesce();
  }
  return 0;
}

/* Steps the clock to each due timer or poll timeout in turn, firing lwIP's timers at their
 * own due time: lwIP's cyclic timers reschedule from their due time, so a jump straight to
 * the target would fire each of them once instead of once per period. */
static int do_advance(const struct jval *req, char *err, size_t errlen) {
  const struct jval *t = json_get(req, "to_us");
  if (!t || t->type != J_NUM || !t->is_int || t->integer < (long long)adapter_now_us) {
    snprintf(err, errlen, "'to_us' must be an integer not before now (%llu)", (unsigned long long)adapter_now_us);
    return -1;
  }
  uint64_t to = (uint64_t)t->integer;
  for (;;) {
    uint64_t due = next_due_us();
    if (due > to) break;
    LOCK_TCPIP_CORE();
    if (due > adapter_now_us) adapter_now_us = due;
    sys_check_timeouts();
    UNLOCK_TCPIP_CORE();
    quiesce();
  }
  LOCK_TCPIP_CORE();
  adapter_now_us = to;
  UNLOCK_TCPIP_CORE();
  quiesce();
  return 0;
}

static long long request_id(const struct jval *req) {
  const struct jval *id = json_get(req, "id");
  return id && id->type == J_NUM && id->is_int && id->integer >= 0 ? id->integer : -1;
}

/* Returns 1 to quit. */
static int handle(const char *line, size_t len) {
  struct jdoc doc;
  char err[256] = "";
  if (json_parse(&doc, line, len)) {
    snprintf(err, sizeof err, "bad JSON: %s", doc.error);
    reply_error(-1, err);
    json_free(&doc);
    return 0;
  }
  const struct jval *req = doc.root, *op = json_get(req, "op");
  long long id = request_id(req);
  int quit = 0, rc = 0;
  if (id < 0) {
    reply_error(-1, "a request needs a non-negative integer 'id'");
  } else if (!op || op->type != J_STR) {
    reply_error(id, "a request needs a string 'op'");
  } else if (!strcmp(op->str, "init")) {
    if (!(rc = do_init(req, err, sizeof err))) reply_ok(id);
  } else if (!strcmp(op->str, "quit")) {
    reply_ok(id);
    quit = 1;
  } else if (!initialised) {
    snprintf(err, sizeof err, "op %s before init", op->str);
    rc = -1;
  } else if (!strcmp(op->str, "sync")) {
    if (!(rc = do_sync(req, err, sizeof err))) reply_time(id);
  } else if (!strcmp(op->str, "advance")) {
    if (!(rc = do_advance(req, err, sizeof err))) reply_time(id);
  } else if (!strcmp(op->str, "poll")) {
    rc = poll_start(id, req, err, sizeof err);
  } else if (!strcmp(op->str, "state")) {
    rc = state_reply(id, req, err, sizeof err);
  } else if (!strcmp(op->str, "sysctl")) {
    if (!(rc = do_sysctl(req, err, sizeof err))) reply_ok(id);
  } else {
    int started = calls_start(id, op->str, req, err, sizeof err);
    if (started == 0) snprintf(err, sizeof err, "unknown op %s", op->str);
    rc = started == 1 ? 0 : -1;
  }
  if (rc) reply_error(id, err);
  json_free(&doc);
  return quit;
}

int main(int argc, char **argv) {
  const char *fd_text = getenv("RFCDRILL_PACKET_FD");
  if (argc > 1) fd_text = argv[1];
  char *end;
  long fd = fd_text ? strtol(fd_text, &end, 10) : -1;
  if (!fd_text || *end || fd < 0) {
    fprintf(stderr, "lwip adapter: RFCDRILL_PACKET_FD must name the packet descriptor\n");
    return 2;
  }
  packet_fd = (int)fd;
  hello();
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, stdin)) >= 0) {
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
    if (n == 0) continue;
    if (memchr(line, 0, (size_t)n)) {
      reply_error(-1, "bad JSON: NUL octet in the line");
      continue;
    }
    if (handle(line, (size_t)n)) break;
  }
  free(line);
  fflush(stdout);
  _exit(0); /* threads blocked inside lwIP end with the process */
}
