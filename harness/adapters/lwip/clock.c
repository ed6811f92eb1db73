/* lwIP's clock and timers in virtual time.
 *
 * liblwip calls sys_now() through the PLT, so the definition here replaces the unix port's
 * real-time clock everywhere in the library: lwIP's clock is milliseconds of virtual time,
 * moved only by `advance` (main.c), which fires the due timers itself.
 *
 * sys_timeouts_init() starts lwIP's cyclic timers through the PLT too. Those of parts this
 * target never uses on its point-to-point IPv4 interface (ARP, IGMP, IPv6 neighbour discovery,
 * MLD, IPv6 reassembly) are not started: they would do nothing, yet IGMP's and MLD's 100 ms
 * periods would make every `advance` step through ten timer firings a second. TCP's timer
 * and IPv4 reassembly's run as lwIP schedules them. */
#define _GNU_SOURCE
#include "adapter.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "lwip/etharp.h"
#include "lwip/igmp.h"
#include "lwip/ip6_frag.h"
#include "lwip/mld6.h"
#include "lwip/nd6.h"
#include "lwip/timeouts.h"

_Atomic uint64_t adapter_now_us;

u32_t sys_now(void) { return (u32_t)(adapter_now_us / 1000); }

static int unused_cyclic(const void *arg) {
  for (int i = 0; i < lwip_num_cyclic_timers; i++) {
    if (arg != &lwip_cyclic_timers[i]) continue;
    lwip_cyclic_timer_handler h = lwip_cyclic_timers[i].handler;
    return h == etharp_tmr || h == igmp_tmr || h == nd6_tmr || h == mld6_tmr || h == ip6_reass_tmr;
  }
  return 0;
}

void sys_timeout(u32_t msecs, sys_timeout_handler handler, void *arg) {
  static void (*lwip_sys_timeout)(u32_t, sys_timeout_handler, void *);
  if (!lwip_sys_timeout) {
    *(void **)&lwip_sys_timeout = dlsym(RTLD_NEXT, "sys_timeout");
    if (!lwip_sys_timeout) {
      fprintf(stderr, "lwip adapter: liblwip has no sys_timeout\n");
      abort();
    }
  }
  if (!unused_cyclic(arg)) lwip_sys_timeout(msecs, handler, arg);
}
