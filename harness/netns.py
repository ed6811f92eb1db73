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
import fcntl
import os
import socket
import struct

from harness.errors import CaseError, NeedsRoot

CLONE_NEWNET, CLONE_NEWNS = 0x40000000, 0x00020000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x1, 0x20, 0x1000, 0x4000, 0x40000
TUNSETIFF, TUNSETOFFLOAD = 0x400454CA, 0x400454D0
IFF_TUN, IFF_NO_PI, IFF_VNET_HDR, IFF_UP, IFF_RUNNING = 0x0001, 0x1000, 0x4000, 0x1, 0x40
# packetdrill's device: checksum and TSO offloads, like a typical Ethernet NIC.
TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_TSO_ECN = 0x01, 0x02, 0x04, 0x08
SIOCSIFADDR, SIOCSIFDSTADDR, SIOCSIFNETMASK = 0x8916, 0x8918, 0x891C
SIOCGIFFLAGS, SIOCSIFFLAGS, SIOCSIFMTU = 0x8913, 0x8914, 0x8922

# packetdrill's IPv4 address plan (CASE_FORMAT.md section 5).
TARGET_IP = "192.168.0.1"
TARGET_NETMASK = "255.255.0.0"
REMOTE_IP = "192.0.2.1"
TUN_NAME = "tun0"

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


def open_tun(name: str = TUN_NAME, address: str = TARGET_IP, netmask: str = TARGET_NETMASK,
             peer: str = REMOTE_IP, mtu: int = 1500, offload: bool = False,
             vnet_hdr: bool = False) -> int:
    """Create and configure a TUN device in the current namespace; return its fd.

    The device is point-to-point: setting the peer address makes the kernel install a host
    route to the remote peer through it, so no route has to be added by hand. With
    `offload`, every packet read or written carries a virtio_net_hdr (see `vnet`), and the
    kernel may hand over TSO super-packets with their checksum left to the "hardware". With
    `vnet_hdr` alone, frames carry the header but the kernel hands over plain packets only;
    what is written to it may be a GSO packet (stack.GsoTunLink).
    """
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    flags = IFF_TUN | IFF_NO_PI | (IFF_VNET_HDR if offload or vnet_hdr else 0)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), flags))
    if offload:
        fcntl.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ctl:
        fcntl.ioctl(ctl, SIOCSIFADDR, _ifreq_addr(name, address))
        fcntl.ioctl(ctl, SIOCSIFDSTADDR, _ifreq_addr(name, peer))
        fcntl.ioctl(ctl, SIOCSIFNETMASK, _ifreq_addr(name, netmask))
        fcntl.ioctl(ctl, SIOCSIFMTU, struct.pack("16si12x", name.encode(), mtu))
        _set_flags(ctl, name, IFF_UP | IFF_RUNNING)
        _set_flags(ctl, "lo", IFF_UP)
    return fd


def sysctl_path(name: str) -> str:
    return "/proc/sys/" + name.replace(".", "/")


def read_sysctl(name: str) -> str:
    with open(sysctl_path(name)) as f:
        return f.read().strip()


def write_sysctl(name: str, value: object) -> None:
    """Set a sysctl in the current (private) namespace; a bad name or value is a CaseError."""
    text = " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    try:
        with open(sysctl_path(name), "w") as f:
            f.write(text)
    except FileNotFoundError:
        raise CaseError(None, f"sysctl {name} does not exist in a network namespace here") from None
    except OSError as exc:
        raise CaseError(None, f"sysctl {name} = {text}: {exc.strerror}") from None
