/* The Linux sysctls that describe Debian's lwIP build.
 *
 * lwIP's options are fixed when the library is compiled, so most of these are the hello's
 * `fixed_sysctls`: the one value that describes what the build always does (no SACK, no
 * timestamps, no ECN, no RACK, no F-RTO, no early retransmit, no SYN cookies, no rate limit
 * on ACKs to invalid segments, no TOS reflection, Reno congestion control). Should a request
 * set one to another value anyway, it is refused with an error naming what fixes it.
 *
 * net.ipv4.tcp_window_scaling is the one the adapter applies itself: lwIP (LWIP_WND_SCALE=1)
 * agrees to scale whenever the peer's SYN offers it and always offers it in its own SYN. At
 * 0 the adapter hides the option from lwIP in the SYNs it receives, so it never scales (RFC
 * 7323 2.2: scaling needs the option from both sides), and removes it from the SYNs lwIP
 * sends (netif.c), as a stack configured without window scaling would not send it. */
#define _GNU_SOURCE
#include "adapter.h"

#include <stdio.h>
#include <string.h>

int adapter_window_scaling = 1;

struct sysctl {
  const char *name;
  const char *values[3]; /* the values that can be applied; one alone is a fixed value */
  const char *why;       /* what fixes it */
};

static const struct sysctl sysctls[] = {
    {"net.ipv4.tcp_sack", {"0"}, "this lwIP build has no SACK (LWIP_TCP_SACK_OUT=0)"},
    {"net.ipv4.tcp_timestamps", {"0"}, "this lwIP build has no timestamps (LWIP_TCP_TIMESTAMPS=0)"},
    {"net.ipv4.tcp_window_scaling", {"0", "1"}, ""},
    {"net.ipv4.tcp_ecn", {"0"}, "lwIP has no ECN"},
    {"net.ipv4.tcp_congestion_control", {"reno"}, "lwIP implements only Reno"},
    {"net.ipv4.tcp_early_retrans", {"0"}, "lwIP has no early retransmit or tail loss probe"},
    {"net.ipv4.tcp_recovery", {"0"}, "lwIP has no RACK"},
    {"net.ipv4.tcp_frto", {"0"}, "lwIP has no F-RTO"},
    {"net.ipv4.tcp_syncookies", {"0"}, "lwIP has no SYN cookies"},
    {"net.ipv4.tcp_invalid_ratelimit", {"0"}, "lwIP does not rate-limit ACKs to invalid segments"},
    {"net.ipv4.tcp_reflect_tos", {"0"}, "lwIP does not reflect a SYN's TOS"},
    {NULL, {NULL}, NULL}};

/* The hello's `sysctls` (applicable == 1) or `fixed_sysctls` (applicable == 0) members. */
void sysctls_hello(struct sb *b, int applicable) {
  const char *sep = "";
  for (const struct sysctl *s = sysctls; s->name; s++) {
    if ((s->values[1] != NULL) != applicable) continue;
    if (applicable) sb_printf(b, "%s\"%s\"", sep, s->name);
    else sb_printf(b, "%s\"%s\": \"%s\"", sep, s->name, s->values[0]);
    sep = ", ";
  }
}

int sysctl_apply(const char *name, const char *value, char *err, size_t errlen) {
  for (const struct sysctl *s = sysctls; s->name; s++) {
    if (strcmp(s->name, name)) continue;
    for (int i = 0; i < 3 && s->values[i]; i++)
      if (!strcmp(s->values[i], value)) {
        if (!strcmp(name, "net.ipv4.tcp_window_scaling")) adapter_window_scaling = value[0] == '1';
        return 0;
      }
    snprintf(err, errlen, "sysctl %s=%s cannot be applied: %s", name, value, s->why);
    return -1;
  }
  snprintf(err, errlen, "sysctl %s is not one this adapter declares", name);
  return -1;
}
