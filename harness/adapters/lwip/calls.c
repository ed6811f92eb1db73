/* Protocol v1 section 4 (calls) and 5 (connection state) on lwIP's socket API.
 *
 * Every socket call runs on a thread of its own, so a call that blocks inside lwIP never
 * stops packets or time; after starting it the control thread waits for quiescence
 * (quiesce.c) and then knows whether the call finished or is blocked (`pending`). Poll is
 * done here on the virtual clock instead of lwip_poll's real-time wait. */
#define _GNU_SOURCE
#include "adapter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lwip/api.h"
#include "lwip/priv/sockets_priv.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/sockets.h"
#include "lwip/tcp.h"
#include "lwip/tcpip.h"

#define MAX_READ (16 * 1024 * 1024)

struct name_value {
  const char *name;
  int value;
};

static const struct name_value levels[] = {
    {"SOL_SOCKET", SOL_SOCKET}, {"IPPROTO_TCP", IPPROTO_TCP}, {"IPPROTO_IP", IPPROTO_IP}, {NULL, 0}};

/* Options lwIP's lwip_getsockopt/lwip_setsockopt handle for a TCP socket in this build
 * (SO_REUSE, LWIP_SO_LINGER and LWIP_TCP_KEEPALIVE are on). The values are glibc's: the
 * library was built against glibc's headers (LWIP_SOCKET_EXTERNAL_HEADERS). */
struct sockopt {
  int level;
  const char *name;
  int value;
};
static const struct sockopt sockopts[] = {
    {SOL_SOCKET, "SO_KEEPALIVE", SO_KEEPALIVE}, {SOL_SOCKET, "SO_LINGER", SO_LINGER},
    {SOL_SOCKET, "SO_REUSEADDR", SO_REUSEADDR}, {SOL_SOCKET, "SO_ERROR", SO_ERROR},
    {SOL_SOCKET, "SO_TYPE", SO_TYPE},           {SOL_SOCKET, "SO_ACCEPTCONN", SO_ACCEPTCONN},
    {IPPROTO_TCP, "TCP_NODELAY", TCP_NODELAY},  {IPPROTO_TCP, "TCP_KEEPIDLE", TCP_KEEPIDLE},
    {IPPROTO_TCP, "TCP_KEEPINTVL", TCP_KEEPINTVL}, {IPPROTO_TCP, "TCP_KEEPCNT", TCP_KEEPCNT},
    {IPPROTO_IP, "IP_TOS", IP_TOS},             {IPPROTO_IP, "IP_TTL", IP_TTL},
    {0, NULL, 0}};

static const struct name_value read_flags[] = {
    {"MSG_PEEK", MSG_PEEK}, {"MSG_OOB", MSG_OOB}, {"MSG_DONTWAIT", MSG_DONTWAIT},
    {"MSG_WAITALL", MSG_WAITALL}, {NULL, 0}};
static const struct name_value write_flags[] = {
    {"MSG_OOB", MSG_OOB}, {"MSG_DONTWAIT", MSG_DONTWAIT}, {"MSG_MORE", MSG_MORE},
    {"MSG_NOSIGNAL", MSG_NOSIGNAL}, {NULL, 0}};
static const struct name_value shut_hows[] = {
    {"SHUT_RD", SHUT_RD}, {"SHUT_WR", SHUT_WR}, {"SHUT_RDWR", SHUT_RDWR}, {NULL, 0}};
static const struct name_value poll_events[] = {
    {"POLLIN", POLLIN},         {"POLLPRI", POLLPRI},       {"POLLOUT", POLLOUT},
    {"POLLERR", POLLERR},       {"POLLHUP", POLLHUP},       {"POLLNVAL", POLLNVAL},
    {"POLLRDNORM", POLLRDNORM}, {"POLLRDBAND", POLLRDBAND}, {"POLLWRNORM", POLLWRNORM},
    {"POLLWRBAND", POLLWRBAND}, {"POLLRDHUP", POLLRDHUP},   {NULL, 0}};

void sockopts_hello(struct sb *b) {
  const char *sep = "";
  for (const struct sockopt *o = sockopts; o->name; o++) {
    const char *level = o->level == SOL_SOCKET ? "SOL_SOCKET" : o->level == IPPROTO_TCP ? "IPPROTO_TCP" : "IPPROTO_IP";
    sb_printf(b, "%s\"%s.%s\"", sep, level, o->name);
    sep = ", ";
  }
}

static int lookup(const struct name_value *table, const char *name, int *out) {
  for (; table->name; table++)
    if (!strcmp(table->name, name)) {
      *out = table->value;
      return 0;
    }
  return -1;
}

/* ---- argument readers: each fills err and returns -1 on a missing or malformed argument */

static int arg_int(const struct jval *req, const char *key, long long lo, long long hi, long long *out,
                   char *err, size_t errlen) {
  const struct jval *v = json_get(req, key);
  if (!v || v->type != J_NUM || !v->is_int || v->integer < lo || v->integer > hi) {
    snprintf(err, errlen, "'%s' must be an integer in %lld..%lld", key, lo, hi);
    return -1;
  }
  *out = v->integer;
  return 0;
}

static int arg_fd(const struct jval *req, int *fd, char *err, size_t errlen) {
  long long v;
  if (arg_int(req, "fd", INT_MIN, INT_MAX, &v, err, errlen)) return -1;
  *fd = (int)v;
  return 0;
}

static int arg_name(const struct jval *req, const char *key, const struct name_value *table, int *out,
                    char *err, size_t errlen) {
  const struct jval *v = json_get(req, key);
  if (!v || v->type != J_STR || lookup(table, v->str, out)) {
    snprintf(err, errlen, "'%s' must be one of the names this adapter knows%s%s", key,
             v && v->type == J_STR ? ", not " : "", v && v->type == J_STR ? v->str : "");
    return -1;
  }
  return 0;
}

/* A list of flag names, or nothing (no flags). */
static int arg_flags(const struct jval *req, const char *key, const struct name_value *table, int *out,
                     char *err, size_t errlen) {
  const struct jval *v = json_get(req, key);
  *out = 0;
  if (!v || v->type == J_NULL) return 0;
  if (v->type != J_ARR) {
    snprintf(err, errlen, "'%s' must be a list of names", key);
    return -1;
  }
  for (const struct jval *f = v->child; f; f = f->next) {
    int bit;
    if (f->type != J_STR || lookup(table, f->str, &bit)) {
      snprintf(err, errlen, "'%s': unknown flag %s", key, f->type == J_STR ? f->str : "(not a string)");
      return -1;
    }
    *out |= bit;
  }
  return 0;
}

static int arg_addr(const struct jval *req, struct sockaddr_in *sin, char *err, size_t errlen) {
  const struct jval *a = json_get(req, "addr");
  const struct jval *ip = json_get(a, "ip"), *port = json_get(a, "port");
  memset(sin, 0, sizeof *sin);
  sin->sin_family = AF_INET;
  if (!ip || ip->type != J_STR || !port || port->type != J_NUM || !port->is_int || port->integer < 0 ||
      port->integer > 65535) {
    snprintf(err, errlen, "'addr' must be {\"ip\": \"a.b.c.d\", \"port\": 0..65535}");
    return -1;
  }
  if (inet_pton(AF_INET, ip->str, &sin->sin_addr) != 1) {
    snprintf(err, errlen, "'addr': %s is not an IPv4 address (this adapter speaks IPv4 only)", ip->str);
    return -1;
  }
  sin->sin_port = htons((uint16_t)port->integer);
  return 0;
}

static int arg_hex(const struct jval *req, const char *key, unsigned char **out, size_t *len, char *err,
                   size_t errlen) {
  const struct jval *v = json_get(req, key);
  if (!v || v->type != J_STR || v->len % 2) {
    snprintf(err, errlen, "'%s' must be a string of hex digit pairs", key);
    return -1;
  }
  *len = v->len / 2;
  *out = malloc(*len ? *len : 1);
  if (!*out) abort();
  for (size_t i = 0; i < *len; i++) {
    unsigned byte;
    if (sscanf(v->str + 2 * i, "%2x", &byte) != 1 || !strchr("0123456789abcdefABCDEF", v->str[2 * i]) ||
        !strchr("0123456789abcdefABCDEF", v->str[2 * i + 1])) {
      free(*out);
      *out = NULL;
      snprintf(err, errlen, "'%s' must be a string of hex digit pairs", key);
      return -1;
    }
    (*out)[i] = (unsigned char)byte;
  }
  return 0;
}

/* ---- calls on worker threads */

enum op {
  OP_SOCKET, OP_BIND, OP_LISTEN, OP_ACCEPT, OP_CONNECT, OP_READ, OP_WRITE, OP_SHUTDOWN, OP_CLOSE,
  OP_SETSOCKOPT, OP_GETSOCKOPT, OP_FCNTL, OP_GETSOCKNAME, OP_GETPEERNAME, OP_IOCTL
};

static const struct name_value ops[] = {
    {"socket", OP_SOCKET},         {"bind", OP_BIND},           {"listen", OP_LISTEN},
    {"accept", OP_ACCEPT},         {"connect", OP_CONNECT},     {"read", OP_READ},
    {"write", OP_WRITE},           {"shutdown", OP_SHUTDOWN},   {"close", OP_CLOSE},
    {"setsockopt", OP_SETSOCKOPT}, {"getsockopt", OP_GETSOCKOPT}, {"fcntl", OP_FCNTL},
    {"getsockname", OP_GETSOCKNAME}, {"getpeername", OP_GETPEERNAME}, {"ioctl", OP_IOCTL},
    {NULL, 0}};

enum ioctl_req { IOCTL_INQ, IOCTL_OUTQ, IOCTL_ATMARK };
static const struct name_value ioctls[] = {
    {"SIOCINQ", IOCTL_INQ}, {"SIOCOUTQ", IOCTL_OUTQ}, {"SIOCATMARK", IOCTL_ATMARK}, {NULL, 0}};

struct call {
  long long id;
  enum op op;
  int fd, nonblock, set_nonblock, flags, how, level, name, ival, request, backlog;
  int is_linger;
  struct linger linger;
  struct sockaddr_in addr;
  size_t count;
  unsigned char *data;
  size_t len;
  struct worker *worker;
};

static int parse_call(struct call *c, const struct jval *req, char *err, size_t errlen) {
  long long v;
  switch (c->op) {
  case OP_SOCKET: {
    const struct jval *fam = json_get(req, "family"), *type = json_get(req, "type"), *nb = json_get(req, "nonblock");
    if (!fam || fam->type != J_STR || strcmp(fam->str, "AF_INET")) {
      snprintf(err, errlen, "'family' must be AF_INET (this adapter speaks IPv4 only)");
      return -1;
    }
    if (type && (type->type != J_STR || strcmp(type->str, "SOCK_STREAM"))) {
      snprintf(err, errlen, "'type' must be SOCK_STREAM");
      return -1;
    }
    c->nonblock = nb && nb->type == J_BOOL && nb->boolean;
    return 0;
  }
  case OP_BIND:
  case OP_CONNECT:
    return arg_fd(req, &c->fd, err, errlen) || arg_addr(req, &c->addr, err, errlen) ? -1 : 0;
  case OP_LISTEN:
    if (arg_fd(req, &c->fd, err, errlen) || arg_int(req, "backlog", INT_MIN, INT_MAX, &v, err, errlen)) return -1;
    c->backlog = (int)v;
    return 0;
  case OP_READ:
    if (arg_fd(req, &c->fd, err, errlen) || arg_int(req, "count", 0, MAX_READ, &v, err, errlen) ||
        arg_flags(req, "flags", read_flags, &c->flags, err, errlen))
      return -1;
    c->count = (size_t)v;
    return 0;
  case OP_WRITE:
    return arg_fd(req, &c->fd, err, errlen) || arg_hex(req, "data", &c->data, &c->len, err, errlen) ||
                   arg_flags(req, "flags", write_flags, &c->flags, err, errlen)
               ? -1
               : 0;
  case OP_SHUTDOWN:
    return arg_fd(req, &c->fd, err, errlen) || arg_name(req, "how", shut_hows, &c->how, err, errlen) ? -1 : 0;
  case OP_SETSOCKOPT:
  case OP_GETSOCKOPT: {
    const struct jval *name = json_get(req, "name");
    if (arg_fd(req, &c->fd, err, errlen) || arg_name(req, "level", levels, &c->level, err, errlen)) return -1;
    const struct sockopt *o = sockopts;
    while (o->name && (o->level != c->level || !name || name->type != J_STR || strcmp(o->name, name->str))) o++;
    if (!o->name) {
      snprintf(err, errlen, "socket option %s is not one this adapter declares",
               name && name->type == J_STR ? name->str : "(no 'name')");
      return -1;
    }
    c->name = o->value;
    c->is_linger = o->value == SO_LINGER && o->level == SOL_SOCKET;
    if (c->op == OP_GETSOCKOPT) return 0;
    const struct jval *val = json_get(req, "value");
    if (c->is_linger) {
      const struct jval *on = json_get(val, "l_onoff"), *sec = json_get(val, "l_linger");
      if (!on || on->type != J_NUM || !on->is_int || !sec || sec->type != J_NUM || !sec->is_int) {
        snprintf(err, errlen, "SO_LINGER's 'value' must be {\"l_onoff\": N, \"l_linger\": N}");
        return -1;
      }
      c->linger.l_onoff = (int)on->integer;
      c->linger.l_linger = (int)sec->integer;
      return 0;
    }
    if (arg_int(req, "value", INT_MIN, INT_MAX, &v, err, errlen)) return -1;
    c->ival = (int)v;
    return 0;
  }
  case OP_FCNTL: {
    const struct jval *nb = json_get(req, "nonblock");
    if (arg_fd(req, &c->fd, err, errlen)) return -1;
    c->set_nonblock = -1;
    if (nb && nb->type != J_NULL) {
      if (nb->type != J_BOOL) {
        snprintf(err, errlen, "'nonblock' must be true or false");
        return -1;
      }
      c->set_nonblock = nb->boolean;
    }
    return 0;
  }
  case OP_IOCTL:
    return arg_fd(req, &c->fd, err, errlen) || arg_name(req, "request", ioctls, &c->request, err, errlen) ? -1 : 0;
  case OP_ACCEPT:
  case OP_CLOSE:
  case OP_GETSOCKNAME:
  case OP_GETPEERNAME:
    return arg_fd(req, &c->fd, err, errlen);
  }
  return 0;
}

static void put_addr(struct sb *b, const struct sockaddr_in *sin) {
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip);
  sb_printf(b, ", \"addr\": {\"ip\": \"%s\", \"port\": %u}", ip, ntohs(sin->sin_port));
}

static void put_errno(struct sb *b, int e) {
  const char *name = strerrorname_np(e);
  sb_printf(b, ", \"errno\": ");
  if (name) sb_str(b, name);
  else sb_printf(b, "\"E%d\"", e);
}

/* The pcb of a TCP socket, or NULL (core lock held). */
static struct tcp_pcb *socket_pcb(int fd) {
  struct lwip_sock *sock = lwip_socket_dbg_get_socket(fd);
  if (!sock || !sock->conn || NETCONNTYPE_GROUP(sock->conn->type) != NETCONN_TCP) return NULL;
  return sock->conn->pcb.tcp;
}

/* Bytes written and not yet acknowledged, as Linux's SIOCOUTQ counts them. lwIP has no such
 * ioctl; its pcb has the numbers (snd_lbb is the next sequence number to be queued). */
static int outq(int fd, int *value) {
  int ok = -1;
  LOCK_TCPIP_CORE();
  struct lwip_sock *sock = lwip_socket_dbg_get_socket(fd);
  if (sock) {
    struct tcp_pcb *pcb = socket_pcb(fd);
    *value = pcb && pcb->state != LISTEN && pcb->state != CLOSED ? (int)(pcb->snd_lbb - pcb->lastack) : 0;
    ok = 0;
  }
  UNLOCK_TCPIP_CORE();
  if (ok) errno = EBADF;
  return ok;
}

static void remember_tuple(int fd);
static void forget_tuple(int fd);

static void run_call(struct call *c, struct sb *b) {
  struct sockaddr_in sin;
  socklen_t slen = sizeof sin;
  int ret = -1, value = 0, has_value = 0, has_addr = 0;
  unsigned char *rbuf = NULL;
  memset(&sin, 0, sizeof sin);
  errno = 0;
  switch (c->op) {
  case OP_SOCKET:
    ret = lwip_socket(AF_INET, SOCK_STREAM, 0);
    if (ret >= 0 && c->nonblock && lwip_fcntl(ret, F_SETFL, O_NONBLOCK) < 0) {
      int e = errno;
      lwip_close(ret);
      errno = e;
      ret = -1;
    }
    break;
  case OP_BIND: ret = lwip_bind(c->fd, (struct sockaddr *)&c->addr, sizeof c->addr); break;
  case OP_LISTEN: ret = lwip_listen(c->fd, c->backlog); break;
  case OP_ACCEPT:
    ret = lwip_accept(c->fd, (struct sockaddr *)&sin, &slen);
    has_addr = ret >= 0;
    break;
  case OP_CONNECT: ret = lwip_connect(c->fd, (struct sockaddr *)&c->addr, sizeof c->addr); break;
  case OP_READ:
    rbuf = malloc(c->count ? c->count : 1);
    if (!rbuf) abort();
    if (c->flags & MSG_OOB) { /* lwIP's sockets have no urgent data */
      errno = EOPNOTSUPP;
      ret = -1;
    } else {
      ret = (int)lwip_recv(c->fd, rbuf, c->count, c->flags);
    }
    break;
  case OP_WRITE:
    if (c->flags & MSG_OOB) {
      errno = EOPNOTSUPP;
      ret = -1;
    } else {
      ret = (int)lwip_send(c->fd, c->data, c->len, c->flags & ~MSG_NOSIGNAL); /* lwIP raises no SIGPIPE */
    }
    break;
  case OP_SHUTDOWN: ret = lwip_shutdown(c->fd, c->how); break;
  case OP_CLOSE:
    LOCK_TCPIP_CORE();
    remember_tuple(c->fd);
    UNLOCK_TCPIP_CORE();
    ret = lwip_close(c->fd);
    break;
  case OP_SETSOCKOPT:
    ret = c->is_linger ? lwip_setsockopt(c->fd, c->level, c->name, &c->linger, sizeof c->linger)
                       : lwip_setsockopt(c->fd, c->level, c->name, &c->ival, sizeof c->ival);
    break;
  case OP_GETSOCKOPT: {
    socklen_t olen = c->is_linger ? sizeof c->linger : sizeof value;
    ret = lwip_getsockopt(c->fd, c->level, c->name, c->is_linger ? (void *)&c->linger : (void *)&value, &olen);
    has_value = ret == 0;
    break;
  }
  case OP_FCNTL:
    ret = lwip_fcntl(c->fd, F_GETFL, 0);
    if (ret >= 0 && c->set_nonblock >= 0) {
      int flags = c->set_nonblock ? ret | O_NONBLOCK : ret & ~O_NONBLOCK;
      ret = lwip_fcntl(c->fd, F_SETFL, flags);
      if (ret >= 0) ret = lwip_fcntl(c->fd, F_GETFL, 0);
    }
    break;
  case OP_GETSOCKNAME:
  case OP_GETPEERNAME:
    ret = c->op == OP_GETSOCKNAME ? lwip_getsockname(c->fd, (struct sockaddr *)&sin, &slen)
                                  : lwip_getpeername(c->fd, (struct sockaddr *)&sin, &slen);
    has_addr = ret == 0;
    break;
  case OP_IOCTL:
    if (c->request == IOCTL_OUTQ) ret = outq(c->fd, &value);
    else ret = lwip_ioctl(c->fd, c->request == IOCTL_INQ ? FIONREAD : SIOCATMARK, &value);
    has_value = ret == 0;
    break;
  }
  int e = errno;
  LOCK_TCPIP_CORE();
  if ((c->op == OP_SOCKET || c->op == OP_ACCEPT) && ret >= 0) forget_tuple(ret); /* a number given again */
  if (c->op == OP_ACCEPT && ret >= 0) remember_tuple(ret);
  if (c->op != OP_SOCKET && c->op != OP_CLOSE) remember_tuple(c->fd);
  UNLOCK_TCPIP_CORE();
  sb_printf(b, "{\"id\": %lld, \"ret\": %d", c->id, ret);
  if (ret < 0) {
    put_errno(b, e ? e : EIO);
  } else {
    if (has_addr) put_addr(b, &sin);
    if (c->op == OP_READ) {
      sb_printf(b, ", \"data\": ");
      sb_hex(b, rbuf, (size_t)ret);
    }
    if (c->op == OP_FCNTL) sb_printf(b, ", \"nonblock\": %s", ret & O_NONBLOCK ? "true" : "false");
    if (has_value && c->is_linger)
      sb_printf(b, ", \"value\": {\"l_onoff\": %d, \"l_linger\": %d}", c->linger.l_onoff, c->linger.l_linger);
    else if (has_value)
      sb_printf(b, ", \"value\": %d", value);
  }
  sb_printf(b, "}");
  free(rbuf);
}

static void *call_thread(void *arg) {
  struct call *c = arg;
  worker_adopt_self(c->worker);
  struct sb b;
  sb_init(&b);
  run_call(c, &b);
  emit(&b);
  sb_free(&b);
  struct worker *w = c->worker;
  free(c->data);
  free(c);
  worker_finish(w);
  return NULL;
}

/* Returns 1 if op names a call, starting it; 0 if not a call; -1 on bad arguments. */
int calls_start(long long id, const char *opname, const struct jval *req, char *err, size_t errlen) {
  int op;
  if (lookup(ops, opname, &op)) return 0;
  struct call *c = calloc(1, sizeof *c);
  if (!c) abort();
  c->id = id;
  c->op = (enum op)op;
  if (parse_call(c, req, err, errlen)) {
    free(c->data);
    free(c);
    return -1;
  }
  struct worker *w = c->worker = worker_new();
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&t, &attr, call_thread, c)) abort();
  pthread_attr_destroy(&attr);
  settle();
  if (!worker_is_done(w)) {
    struct sb b;
    sb_init(&b);
    sb_printf(&b, "{\"id\": %lld, \"pending\": true}", id);
    emit(&b);
    sb_free(&b);
  }
  return 1;
}

/* ---- poll on the virtual clock */

struct pollreq {
  long long id;
  nfds_t n;
  struct pollfd *fds;
  uint64_t deadline_us; /* UINT64_MAX: no timeout */
  struct pollreq *next;
};
static struct pollreq *polls;

static void poll_reply(struct pollreq *p, int ret) {
  struct sb b;
  sb_init(&b);
  sb_printf(&b, "{\"id\": %lld, \"ret\": %d", p->id, ret);
  if (ret < 0) {
    put_errno(&b, errno);
  } else {
    sb_printf(&b, ", \"revents\": [");
    for (nfds_t i = 0; i < p->n; i++) {
      sb_printf(&b, "%s[", i ? ", " : "");
      const char *sep = "";
      for (const struct name_value *e = poll_events; e->name; e++)
        if (p->fds[i].revents & e->value) {
          sb_printf(&b, "%s\"%s\"", sep, e->name);
          sep = ", ";
        }
      sb_printf(&b, "]");
    }
    sb_printf(&b, "]");
  }
  sb_printf(&b, "}");
  emit(&b);
  sb_free(&b);
}

/* Returns 1 if p is answered. */
static int poll_try(struct pollreq *p) {
  for (nfds_t i = 0; i < p->n; i++) p->fds[i].revents = 0;
  int ret = lwip_poll(p->fds, p->n, 0);
  if (ret != 0 || adapter_now_us >= p->deadline_us) {
    poll_reply(p, ret);
    return 1;
  }
  return 0;
}

int poll_start(long long id, const struct jval *req, char *err, size_t errlen) {
  const struct jval *fds = json_get(req, "fds");
  long long timeout;
  if (!fds || fds->type != J_ARR) {
    snprintf(err, errlen, "'fds' must be a list of {\"fd\": N, \"events\": [names]}");
    return -1;
  }
  if (arg_int(req, "timeout_us", -1, INT64_MAX / 2, &timeout, err, errlen)) return -1;
  struct pollreq *p = calloc(1, sizeof *p);
  if (!p) abort();
  for (const struct jval *f = fds->child; f; f = f->next) p->n++;
  p->fds = calloc(p->n ? p->n : 1, sizeof *p->fds);
  if (!p->fds) abort();
  nfds_t i = 0;
  for (const struct jval *f = fds->child; f; f = f->next, i++) {
    int fd, events;
    if (arg_fd(f, &fd, err, errlen) || arg_flags(f, "events", poll_events, &events, err, errlen)) {
      free(p->fds);
      free(p);
      return -1;
    }
    p->fds[i].fd = fd;
    p->fds[i].events = (short)events;
  }
  p->id = id;
  p->deadline_us = timeout < 0 ? UINT64_MAX : adapter_now_us + (uint64_t)timeout;
  if (poll_try(p)) {
    free(p->fds);
    free(p);
    return 0;
  }
  struct sb b;
  sb_init(&b);
  sb_printf(&b, "{\"id\": %lld, \"pending\": true}", id);
  emit(&b);
  sb_free(&b);
  p->next = polls;
  polls = p;
  return 0;
}

void polls_check(void) {
  for (struct pollreq **pp = &polls; *pp;) {
    struct pollreq *p = *pp;
    if (poll_try(p)) {
      *pp = p->next;
      free(p->fds);
      free(p);
    } else {
      pp = &p->next;
    }
  }
}

uint64_t polls_next_deadline(void) {
  uint64_t d = UINT64_MAX;
  for (struct pollreq *p = polls; p; p = p->next)
    if (p->deadline_us < d) d = p->deadline_us;
  return d;
}

/* ---- connection state (protocol section 5) from the tcp_pcb */

static const char *state_names[] = {
    [CLOSED] = "CLOSED",           [LISTEN] = "LISTEN",         [SYN_SENT] = "SYN-SENT",
    [SYN_RCVD] = "SYN-RECEIVED",   [ESTABLISHED] = "ESTABLISHED", [FIN_WAIT_1] = "FIN-WAIT-1",
    [FIN_WAIT_2] = "FIN-WAIT-2",   [CLOSE_WAIT] = "CLOSE-WAIT", [CLOSING] = "CLOSING",
    [LAST_ACK] = "LAST-ACK",       [TIME_WAIT] = "TIME-WAIT"};

/* A descriptor's connection can outlive lwIP's link to it: close() frees the socket and its
 * netconn at once, and a shutdown that completes the close (SHUT_WR in CLOSE-WAIT) detaches
 * the pcb from the netconn, while the connection goes on (FIN-WAIT, LAST-ACK, TIME-WAIT...).
 * So the adapter remembers each descriptor's four-tuple after every call on it and finds the
 * pcb again in lwIP's lists of live pcbs; a pointer kept across calls could dangle once lwIP
 * frees the pcb. The core lock guards the list. */
struct tuple {
  int fd;
  ip_addr_t local_ip, remote_ip;
  u16_t local_port, remote_port;
  struct tuple *next;
};
static struct tuple *tuples;

/* A descriptor has one record at most: remember_tuple() forgets the old one first. */
static void forget_tuple(int fd) {
  for (struct tuple **p = &tuples; *p; p = &(*p)->next)
    if ((*p)->fd == fd) {
      struct tuple *gone = *p;
      *p = gone->next;
      free(gone);
      return;
    }
}

/* Remembers the connection fd names now, if it has one (core lock held). */
static void remember_tuple(int fd) {
  struct tcp_pcb *pcb = socket_pcb(fd);
  if (!pcb || pcb->state == LISTEN || pcb->state == CLOSED) return;
  forget_tuple(fd);
  struct tuple *c = calloc(1, sizeof *c);
  if (!c) abort();
  c->fd = fd;
  ip_addr_copy(c->local_ip, pcb->local_ip);
  ip_addr_copy(c->remote_ip, pcb->remote_ip);
  c->local_port = pcb->local_port;
  c->remote_port = pcb->remote_port;
  c->next = tuples;
  tuples = c;
}

static struct tcp_pcb *find_by_tuple(int fd) {
  for (struct tuple *c = tuples; c; c = c->next) {
    if (c->fd != fd) continue;
    struct tcp_pcb *lists[] = {tcp_active_pcbs, tcp_tw_pcbs};
    for (int i = 0; i < 2; i++)
      for (struct tcp_pcb *pcb = lists[i]; pcb; pcb = pcb->next)
        if (pcb->local_port == c->local_port && pcb->remote_port == c->remote_port &&
            ip_addr_cmp(&pcb->local_ip, &c->local_ip) && ip_addr_cmp(&pcb->remote_ip, &c->remote_ip))
          return pcb;
    return NULL;
  }
  return NULL;
}

int state_reply(long long id, const struct jval *req, char *err, size_t errlen) {
  int fd;
  if (arg_fd(req, &fd, err, errlen)) return -1;
  struct sb b;
  sb_init(&b);
  LOCK_TCPIP_CORE();
  struct lwip_sock *sock = lwip_socket_dbg_get_socket(fd);
  int known = 0;
  for (struct tuple *t = tuples; t; t = t->next) known |= t->fd == fd;
  struct tcp_pcb *pcb = sock ? socket_pcb(fd) : NULL;
  if (pcb) remember_tuple(fd);
  else pcb = find_by_tuple(fd);
  if (!sock && !known) {
    sb_printf(&b, "{\"id\": %lld, \"ret\": -1, \"errno\": \"EBADF\"}", id);
  } else if (!pcb || pcb->state == CLOSED) {
    /* lwIP frees the pcb when a connection ends (reset, or closed and acknowledged). */
    sb_printf(&b, "{\"id\": %lld, \"state\": {\"state\": \"CLOSED\"}}", id);
  } else if (pcb->state == LISTEN) {
    /* A listening pcb is a struct tcp_pcb_listen: it has no sequence variables. */
    sb_printf(&b, "{\"id\": %lld, \"state\": {\"state\": \"LISTEN\"}}", id);
  } else {
    sb_printf(&b,
              "{\"id\": %lld, \"state\": {\"state\": \"%s\", \"SND.UNA\": %u, \"SND.NXT\": %u, "
              "\"RCV.NXT\": %u, \"SND.WND\": %u, \"RCV.WND\": %u, \"cwnd\": %u, \"ssthresh\": %u, "
              "\"RTO\": %lld, \"SMSS\": %u}}",
              id, state_names[pcb->state], pcb->lastack, pcb->snd_nxt, pcb->rcv_nxt, (unsigned)pcb->snd_wnd,
              (unsigned)pcb->rcv_wnd, (unsigned)pcb->cwnd, (unsigned)pcb->ssthresh,
              (long long)pcb->rto * TCP_SLOW_INTERVAL * 1000, pcb->mss);
  }
  UNLOCK_TCPIP_CORE();
  emit(&b);
  sb_free(&b);
  return 0;
}
