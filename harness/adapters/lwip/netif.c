/* The stack's one network interface: IPv4 packets to and from rfcdrill's packet descriptor
 * (no link layer, no ARP). */
#define _GNU_SOURCE
#include "adapter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "lwip/ip.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/tcpip.h"

static struct netif nif;
static int packet_fd = -1;
static unsigned char out_buf[65536]; /* output runs under the core lock */
static unsigned char in_buf[65536];
static int nif_mtu;

static err_t output4(struct netif *netif, struct pbuf *p, const ip4_addr_t *next_hop) {
  (void)netif;
  (void)next_hop;
  u16_t len = pbuf_copy_partial(p, out_buf, p->tot_len, 0);
  if (send(packet_fd, out_buf, len, 0) < 0) perror("lwip adapter: send on the packet descriptor");
  return ERR_OK;
}

/* IPv6 (router solicitations, MLD) is not part of this target: dropped. */
static err_t output6(struct netif *netif, struct pbuf *p, const ip6_addr_t *next_hop) {
  (void)netif;
  (void)p;
  (void)next_hop;
  return ERR_OK;
}

static err_t nif_init(struct netif *netif) {
  netif->name[0] = 'r';
  netif->name[1] = 'd';
  netif->output = output4;
  netif->output_ip6 = output6;
  netif->mtu = (u16_t)nif_mtu;
  netif->flags = NETIF_FLAG_LINK_UP;
  return ERR_OK;
}

int netif_setup(int pkt_fd, const char *local_ip, int prefix_len, const char *gateway_ip, int mtu,
                char *err, size_t errlen) {
  ip4_addr_t ip, mask, gw;
  struct in_addr a;
  if (inet_pton(AF_INET, local_ip, &a) != 1) {
    snprintf(err, errlen, "local_ip %s is not an IPv4 address", local_ip);
    return -1;
  }
  ip4_addr_set_u32(&ip, a.s_addr);
  if (prefix_len < 0 || prefix_len > 32) {
    snprintf(err, errlen, "prefix_len %d is not in 0..32", prefix_len);
    return -1;
  }
  ip4_addr_set_u32(&mask, prefix_len ? htonl(0xFFFFFFFFu << (32 - prefix_len)) : 0);
  ip4_addr_set_zero(&gw);
  if (gateway_ip) {
    if (inet_pton(AF_INET, gateway_ip, &a) != 1) {
      snprintf(err, errlen, "gateway_ip %s is not an IPv4 address", gateway_ip);
      return -1;
    }
    ip4_addr_set_u32(&gw, a.s_addr);
  }
  if (mtu < 576 || mtu > 65535) {
    snprintf(err, errlen, "mtu %d is not in 576..65535", mtu);
    return -1;
  }
  packet_fd = pkt_fd;
  nif_mtu = mtu;
  LOCK_TCPIP_CORE();
  struct netif *ok = netif_add(&nif, &ip, &mask, &gw, NULL, nif_init, ip_input);
  if (ok) {
    /* Every destination, on-link or not, leaves through the packet descriptor. */
    netif_set_default(&nif);
    netif_set_up(&nif);
  }
  UNLOCK_TCPIP_CORE();
  if (!ok) {
    snprintf(err, errlen, "netif_add failed");
    return -1;
  }
  return 0;
}

int netif_input_one(char *err, size_t errlen) {
  ssize_t n;
  do {
    n = recv(packet_fd, in_buf, sizeof in_buf, 0);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) {
    snprintf(err, errlen, "packet descriptor: %s", n == 0 ? "closed" : strerror(errno));
    return -1;
  }
  struct pbuf *p = pbuf_alloc(PBUF_LINK, (u16_t)n, PBUF_RAM);
  if (!p) {
    snprintf(err, errlen, "pbuf_alloc failed for a %zd-octet packet", n);
    return -1;
  }
  pbuf_take(p, in_buf, (u16_t)n);
  LOCK_TCPIP_CORE();
  ip_input(p, &nif); /* frees p */
  UNLOCK_TCPIP_CORE();
  return 0;
}
