"""A private network namespace with a TUN device, packetdrill's address plan, and sysctls.

Theory of operation: `enter_private_netns()` is called in a process forked for one case.
It moves that process into a fresh network namespace (unshare(CLONE_NEWNET)); when the
process exits, the kernel destroys the namespace and everything in it (the TUN device,
its sockets, its sysctl values). Nothing is ever configured in the host's own namespace,
and nothing can outlive the case: isolation by construction, no clean-up to forget.

Interfaces are configured with ioctl() rather than by running `ip`, because a process
start costs milliseconds and the fixed cost per case is budgeted at 20 ms.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import fnmatch
import os
import socket
import struct
import time
from functools import lru_cache

from harness.errors import CaseError, NeedsRoot

CLONE_NEWNET, CLONE_NEWNS = 0x40000000, 0x00020000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x1, 0x20, 0x1000, 0x4000, 0x40000
TUNSETIFF, TUNSETOFFLOAD = 0x400454CA, 0x400454D0
IFF_TUN, IFF_NO_PI, IFF_VNET_HDR, IFF_UP, IFF_RUNNING = 0x0001, 0x1000, 0x4000, 0x1, 0x40
# packetdrill's device: checksum and TSO offloads, like a typical Ethernet NIC.
TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_TSO_ECN = 0x01, 0x02, 0x04, 0x08
SIOCSIFADDR, SIOCSIFDSTADDR, SIOCSIFNETMASK = 0x8916, 0x8918, 0x891C
SIOCGIFFLAGS, SIOCSIFFLAGS, SIOCSIFMTU, SIOCADDRT = 0x8913, 0x8914, 0x8922, 0x890B
RTF_UP = 0x0001
IN6_IFREQ = struct.Struct("@16sIi")                 # linux/ipv6.h struct in6_ifreq
IN6_RTMSG = struct.Struct("@16s16s16sIHHILIi")      # linux/ipv6_route.h struct in6_rtmsg

# packetdrill's address plans (CASE_FORMAT.md section 5): IPv4, and the IPv6 plan its
# runners use (the target in fd3d:fa7b:d17d::/48, the remote peer 2001:db8::1).
TARGET_IP = "192.168.0.1"
TARGET_NETMASK = "255.255.0.0"
REMOTE_IP = "192.0.2.1"
TARGET_IP6 = "fd3d:fa7b:d17d::"
TARGET_PREFIX6 = 48
REMOTE_IP6 = "2001:db8::1"
TUN_NAME = "tun0"
# A new namespace's IPv6 would send router solicitations and run duplicate address
# detection on the device; neither has a place in a case's timeline.
QUIET_IPV6 = {"net.ipv6.conf.default.router_solicitations": 0,
              "net.ipv6.conf.default.accept_dad": 0, "net.ipv6.conf.default.dad_transmits": 0,
              "net.ipv6.conf.default.accept_ra": 0}

_libc = ctypes.CDLL(None, use_errno=True)


def have_privileges() -> bool:
    """True when this process may create network namespaces and TUN devices: it holds
    CAP_SYS_ADMIN and CAP_NET_ADMIN (root normally does; root without them does not)."""
    try:
        with open("/proc/self/status") as status:
            caps = next(line for line in status if line.startswith("CapEff:"))
    except (OSError, StopIteration):
        return os.geteuid() == 0
    effective = int(caps.split()[1], 16)
    return bool(effective & (1 << 21)) and bool(effective & (1 << 12))


def require_privileges(command: str = "rfcdrill run cases") -> None:
    """Exit with one line saying how to run as root, instead of failing deep inside a case."""
    if not have_privileges():
        raise NeedsRoot(
            "rfcdrill needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to create network namespaces"
            f" and TUN devices; run it under sudo with the virtual environment kept: "
            f"sudo \"$(command -v rfcdrill)\" {command.removeprefix('rfcdrill ')}")


def _mount(source: str | None, target: str, flags: int) -> None:
    if _libc.mount(source.encode() if source else None, target.encode(), None, flags, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def enter_private_netns() -> None:
    """Move the calling process into a new, empty network namespace.

    It also gets a mount namespace of its own in which /proc/sys is read-only except
    /proc/sys/net (whose entries in a new network namespace are that namespace's own), so
    not even a script's shell command can change a sysctl of the host.
    """
    if _libc.unshare(CLONE_NEWNET | CLONE_NEWNS) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWNET|CLONE_NEWNS): {os.strerror(err)}")
    _mount(None, "/", MS_REC | MS_PRIVATE)
    _mount("/proc/sys/net", "/proc/sys/net", MS_BIND)
    _mount("/proc/sys", "/proc/sys", MS_BIND | MS_REC)
    _mount(None, "/proc/sys", MS_REMOUNT | MS_BIND | MS_RDONLY)


def _ifreq_addr(name: str, addr: str) -> bytes:
    sockaddr = struct.pack("HH4s8x", socket.AF_INET, 0, socket.inet_aton(addr))
    return struct.pack("16s16s", name.encode(), sockaddr)


def _set_flags(sock: socket.socket, name: str, flags: int) -> None:
    ifr = fcntl.ioctl(sock, SIOCGIFFLAGS, struct.pack("16sH14x", name.encode(), 0))
    current = struct.unpack("16sH14x", ifr)[1]
    fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", name.encode(), current | flags))


def in_host_namespace() -> bool:
    """Whether this process shares init's network namespace (the host's)."""
    try:
        return os.stat("/proc/self/ns/net").st_ino == os.stat("/proc/1/ns/net").st_ino
    except OSError:          # /proc/1 unreadable: not the host's init, so not its namespace
        return False


def loopback_up() -> None:
    """Bring the namespace's loopback device up (a new namespace has it down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ctl:
        _set_flags(ctl, "lo", IFF_UP)


def open_tun(name: str = TUN_NAME, address: str = TARGET_IP, netmask: str = TARGET_NETMASK,
             peer: str = REMOTE_IP, mtu: int = 1500, offload: bool = False,
             prefix_len: int = TARGET_PREFIX6, vnet_hdr: bool = False) -> int:
    """Create and configure a TUN device in the current namespace; return its fd.

    IPv4: the device is point-to-point; setting the peer address makes the kernel install a
    host route to the remote peer through it, so no route has to be added by hand. IPv6
    (an IPv6 `address`): the address with its prefix, and a host route to the peer. With
    `offload`, every packet read or written carries a virtio_net_hdr (see `vnet`), and the
    kernel may hand over TSO super-packets with their checksum left to the "hardware". With
    `vnet_hdr` alone, frames carry the header but the kernel hands over plain packets only;
    what is written to it may be a GSO packet (stack.GsoTunLink).
    """
    if in_host_namespace():
        raise RuntimeError("refusing to create a TUN device in the host's network namespace: "
                           "call enter_private_netns() first")
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    flags = IFF_TUN | IFF_NO_PI | (IFF_VNET_HDR if offload or vnet_hdr else 0)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), flags))
    if offload:
        fcntl.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN)
    six = ":" in address
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ctl:
        if not six:
            fcntl.ioctl(ctl, SIOCSIFADDR, _ifreq_addr(name, address))
            fcntl.ioctl(ctl, SIOCSIFDSTADDR, _ifreq_addr(name, peer))
            fcntl.ioctl(ctl, SIOCSIFNETMASK, _ifreq_addr(name, netmask))
        fcntl.ioctl(ctl, SIOCSIFMTU, struct.pack("16si12x", name.encode(), mtu))
        _set_flags(ctl, name, IFF_UP | IFF_RUNNING)
        _set_flags(ctl, "lo", IFF_UP)
    if six:
        _configure_ipv6(name, address, prefix_len, peer)
    return fd


def _configure_ipv6(name: str, address: str, prefix_len: int, peer: str) -> None:
    index = socket.if_nametoindex(name)
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as ctl:
        fcntl.ioctl(ctl, SIOCSIFADDR, IN6_IFREQ.pack(
            socket.inet_pton(socket.AF_INET6, address), prefix_len, index))
        route = IN6_RTMSG.pack(socket.inet_pton(socket.AF_INET6, peer), bytes(16), bytes(16),
                               0, 128, 0, 1, 0, RTF_UP, index)
        try:
            fcntl.ioctl(ctl, SIOCADDRT, route)
        except FileExistsError:      # the peer is inside the device's own prefix
            pass
    _wait_until_usable(address)


def _wait_until_usable(address: str, limit: float = 2.0) -> None:
    """A new IPv6 address is tentative until the kernel's address work has run, even with
    duplicate address detection off (RFC 4862 5.4), and binding to it fails meanwhile with
    EADDRNOTAVAIL. An ioctl cannot ask for IFA_F_NODAD, so wait until a bind succeeds."""
    deadline = time.monotonic() + limit
    while True:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((address, 0))
                return
            except OSError as exc:
                if exc.errno != errno.EADDRNOTAVAIL or time.monotonic() > deadline:
                    raise
        time.sleep(0.0002)


def sysctl_path(name: str) -> str:
    return "/proc/sys/" + name.replace(".", "/")


def read_sysctl(name: str) -> str:
    with open(sysctl_path(name)) as f:
        return f.read().strip()


# Folders of per-device settings: a case's own devices (tun0) exist only in its namespace.
PER_DEVICE = ("net.ipv4.conf.*", "net.ipv6.conf.*", "net.ipv4.neigh.*", "net.ipv6.neigh.*")


@lru_cache(maxsize=1)
def present_sysctls() -> tuple[str, ...]:
    """The network sysctls this kernel has (names, and patterns for the per-device ones):
    what a case may set on the kernel target. A sysctl from a later kernel
    (net.ipv4.tcp_syn_linear_timeouts on 6.1) is not among them."""
    names = []
    for folder, subfolders, files in os.walk("/proc/sys/net"):
        dotted = folder.removeprefix("/proc/sys/").replace("/", ".")
        if any(fnmatch.fnmatchcase(dotted + ".x", p) for p in PER_DEVICE):
            subfolders.clear()
            continue
        names.extend(f"{dotted}.{name}" for name in files)
    return tuple(names) + PER_DEVICE


def read_sysctls(names: tuple[str, ...]) -> dict[str, str]:
    """The values of those of `names` that exist in this namespace."""
    values = {}
    for name in names:
        try:
            values[name] = read_sysctl(name)
        except OSError:
            continue
    return values


def sysctl_text(value: object) -> str:
    """A sysctl value as /proc/sys and `sysctl -w` take it: a list space-separated."""
    return " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def write_sysctl(name: str, value: object) -> None:
    """Set a sysctl in the current (private) namespace; a bad name or value is a CaseError."""
    text = sysctl_text(value)
    try:
        with open(sysctl_path(name), "w") as f:
            f.write(text)
    except FileNotFoundError:
        raise CaseError(None, f"sysctl {name} does not exist in a network namespace here") from None
    except OSError as exc:
        raise CaseError(None, f"sysctl {name} = {text}: {exc.strerror}") from None
