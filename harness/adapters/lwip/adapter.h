/* Shared declarations of the lwIP adapter for rfcdrill's target protocol v1
 * (harness/targets/PROTOCOL.md). */
#ifndef RFCDRILL_LWIP_ADAPTER_H
#define RFCDRILL_LWIP_ADAPTER_H

#include <stdint.h>

#include "json.h"

/* clock.c: the virtual clock (microseconds since init); netif.c: the packet descriptor. */
extern _Atomic uint64_t adapter_now_us;
int netif_setup(int pkt_fd, const char *local_ip, int prefix_len, const char *gateway_ip, int mtu,
                char *err, size_t errlen);
int netif_input_one(char *err, size_t errlen); /* reads and processes one packet */

/* sysctl.c: the sysctls the hello declares; at 0, tcp_window_scaling is applied in netif.c. */
extern int adapter_window_scaling;
void sysctls_hello(struct sb *b, int applicable);
int sysctl_apply(const char *name, const char *value, char *err, size_t errlen);

/* quiesce.c: threads that may block inside lwIP, and waiting until all of them are stuck. */
struct worker;
struct worker *worker_new(void);         /* registered, RUNNING, not yet started */
void worker_adopt_self(struct worker *w); /* called first on the worker's own thread */
void worker_finish(struct worker *w);    /* called last on the worker's own thread */
int worker_is_done(struct worker *w);
void workers_reap(void);                 /* frees finished workers */
void settle(void);                       /* waits until every worker is done or blocked */

/* main.c: one line to stdout, atomically. */
void emit(struct sb *b);

/* calls.c: socket calls (each on its own worker thread), poll, state. */
int calls_start(long long id, const char *op, const struct jval *req, char *err, size_t errlen);
int poll_start(long long id, const struct jval *req, char *err, size_t errlen);
void polls_check(void);
uint64_t polls_next_deadline(void); /* UINT64_MAX if none */
int state_reply(long long id, const struct jval *req, char *err, size_t errlen);

#endif
