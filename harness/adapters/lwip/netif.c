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

/* ---- net.ipv4.tcp_window_scaling=0 (sysctl.c): the window-scale option leaves SYNs */

static uint32_t sum16(const unsigned char *b, size_t n, uint32_t sum) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t)(b[i] << 8 | b[i + 1]);
  if (n & 1) sum += (uint32_t)(b[n - 1] << 8);
  return sum;
}

static uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return (uint16_t)~sum;
}

/* Sets the IPv4 header's and the TCP segment's checksums of an IPv4 packet of len octets. */
static void checksum_ipv4_tcp(unsigned char *pkt, size_t len) {
  size_t ihl = (size_t)(pkt[0] & 15) * 4;
  unsigned char pseudo[12];
  memcpy(pseudo, pkt + 12, 8);
  pseudo[8] = 0;
  pseudo[9] = 6;
  pseudo[10] = (unsigned char)((len - ihl) >> 8);
  pseudo[11] = (unsigned char)(len - ihl);
  pkt[10] = pkt[11] = 0;
  uint16_t ip = fold(sum16(pkt, ihl, 0));
  pkt[10] = (unsigned char)(ip >> 8);
  pkt[11] = (unsigned char)ip;
  unsigned char *tcp = pkt + ihl;
  tcp[16] = tcp[17] = 0;
  uint16_t sum = fold(sum16(tcp, len - ihl, sum16(pseudo, sizeof pseudo, 0)));
  tcp[16] = (unsigned char)(sum >> 8);
  tcp[17] = (unsigned char)sum;
}

/* The TCP header of an unfragmented IPv4 SYN of len octets, or NULL; *hlen is its length. */
static unsigned char *ipv4_syn(unsigned char *pkt, size_t len, size_t *hlen) {
  if (len < 20 || pkt[0] >> 4 != 4 || pkt[9] != 6) return NULL;
  size_t ihl = (size_t)(pkt[0] & 15) * 4;
  if (ihl < 20 || len < ihl + 20 || (pkt[6] & 0x3F) || pkt[7]) return NULL; /* a fragment */
  unsigned char *tcp = pkt + ihl;
  *hlen = (size_t)(tcp[12] >> 4) * 4;
  if (!(tcp[13] & 0x02) || *hlen < 20 || ihl + *hlen > len) return NULL;
  return tcp;
}

/* A SYN from the peer: the window-scale option becomes NOPs, so lwIP does not scale. */
static void hide_window_scale(unsigned char *pkt, size_t len) {
  size_t hlen, i = 20;
  unsigned char *tcp = ipv4_syn(pkt, len, &hlen);
  int changed = 0;
  if (!tcp) return;
  while (i < hlen && tcp[i] != 0) {
    if (tcp[i] == 1) { i++; continue; }
    if (i + 1 >= hlen || tcp[i + 1] < 2 || i + tcp[i + 1] > hlen) return; /* malformed: lwIP judges it */
    if (tcp[i] == 3) {
      memset(tcp + i, 1, tcp[i + 1]);
      changed = 1;
    }
    i += tcp[i + 1];
  }
  if (changed) checksum_ipv4_tcp(pkt, len);
}

/* A SYN lwIP sends: the option and its NOP padding are removed. Returns the new length. */
static size_t drop_window_scale(unsigned char *pkt, size_t len) {
  size_t hlen, ihl = (size_t)(pkt[0] & 15) * 4, i = 20, n = 20;
  unsigned char *tcp = ipv4_syn(pkt, len, &hlen);
  unsigned char opts[60];
  if (!tcp) return len;
  while (i < hlen && tcp[i] != 0) {
    if (tcp[i] == 1) { i++; continue; }
    if (i + 1 >= hlen || tcp[i + 1] < 2 || i + tcp[i + 1] > hlen) return len;
    if (tcp[i] != 3) {
      memcpy(opts + n - 20, tcp + i, tcp[i + 1]);
      n += tcp[i + 1];
    }
    i += tcp[i + 1];
  }
  while (n % 4) opts[n++ - 20] = 1;
  if (n == hlen) return len;
  memcpy(tcp + 20, opts, n - 20);
  memmove(tcp + n, tcp + hlen, len - ihl - hlen);
  len -= hlen - n;
  tcp[12] = (unsigned char)((n / 4) << 4 | (tcp[12] & 15));
  pkt[2] = (unsigned char)(len >> 8);
  pkt[3] = (unsigned char)len;
  checksum_ipv4_tcp(pkt, len);
  return len;
}

static err_t output4(struct netif *netif, struct pbuf *p, const ip4_addr_t *next_hop) {
  (void)netif;
  (void)next_hop;
  size_t len = pbuf_copy_partial(p, out_buf, p->tot_len, 0);
  if (!adapter_window_scaling) len = drop_window_scale(out_buf, len);
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
  if (!adapter_window_scaling) hide_window_scale(in_buf, (size_t)n);
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
