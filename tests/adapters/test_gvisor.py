"""The gVisor netstack adapter (harness/adapters/gvisor) driven over target protocol v1.

A small client here plays rfcdrill's side: it holds one end of the SEQPACKET pair, writes
packets made with scapy, and speaks the JSON-line control protocol. Each test checks what
the protocol and the RFCs say, on the wire and in the replies, in virtual time.
"""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw, raw

from tests.adapters.client import AdapterClient

BUILD = Path(__file__).resolve().parents[2] / "harness" / "adapters" / "gvisor" / "build.sh"
LOCAL, REMOTE, GATEWAY = "192.168.0.1", "192.0.2.1", "192.168.0.2"
PORT, PEER_PORT = 8080, 40000


@pytest.fixture(scope="session")
def adapter_binary() -> str:
    """The adapter built by its build.sh; skipped with build.sh's reason when Go or gVisor
    is missing (exit status 3), a failure for any other build error."""
    done = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True)
    if done.returncode == 3:
        pytest.skip(done.stderr.strip())
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


class Adapter(AdapterClient):
    """The client with this file's address plan."""

    def init(self, **overrides) -> None:
        args = dict(ip_version="ipv4", local_ip=LOCAL, remote_ip=REMOTE, prefix_len=16,
                    gateway_ip=GATEWAY, mtu=1500, seed=1, sysctls={})
        args.update(overrides)
        assert self.request("init", **args) == {"id": self.last_id, "ok": True}

    def send(self, segment: TCP) -> None:
        self.peer.send(raw(IP(src=REMOTE, dst=LOCAL) / segment))
        self.sent += 1

    def sync(self) -> dict:
        return self.request("sync", packets=self.sent)


@pytest.fixture
def adapter(adapter_binary: str):
    a = Adapter(adapter_binary)
    yield a
    a.close()


def syn_options(ts: bool = False) -> list:
    options = [("MSS", 1460), ("SAckOK", b""), ("WScale", 7)]
    return options + [("Timestamp", (100, 0))] if ts else options


def passive_open(a: Adapter, backlog: int = 1, options: list | None = None,
                 seed: int = 1, sysctls: dict[str, str] | None = None) -> tuple[int, IP]:
    """Listen, accept, and complete a handshake from the peer (its SYN offering MSS, SACK
    and WS 7 unless `options` says otherwise); the accepted fd and the SYN-ACK."""
    a.init(seed=seed, sysctls=sysctls or {})
    fd = a.request("socket", family="AF_INET", type="SOCK_STREAM")["ret"]
    assert a.request("bind", fd=fd, addr={"ip": "0.0.0.0", "port": PORT})["ret"] == 0
    assert a.request("listen", fd=fd, backlog=backlog)["ret"] == 0
    accept = a.request("accept", fd=fd)
    assert accept.get("pending") is True
    a.send(TCP(sport=PEER_PORT, dport=PORT, flags="S", seq=1000, window=65535,
               options=syn_options() if options is None else options))
    a.sync()
    (synack,) = a.packets()
    assert synack[TCP].flags == "SA" and synack[TCP].ack == 1001
    a.send(TCP(sport=PEER_PORT, dport=PORT, flags="A", seq=1001, ack=synack[TCP].seq + 1,
               window=1024))
    a.sync()
    done = a.final(accept["id"])
    assert done is not None and done["addr"] == {"ip": REMOTE, "port": PEER_PORT}
    return done["ret"], synack


def test_hello_declares_protocol_and_capabilities(adapter: Adapter) -> None:
    hello = adapter.hello
    assert hello["event"] == "hello" and hello["protocol"] == 1 and hello["name"] == "gvisor"
    caps = hello["capabilities"]
    assert caps["time"] == "virtual"
    assert set(caps["tcp_options"]) == {"mss", "wscale", "sack", "timestamps"}
    assert {"socket", "accept", "connect", "poll", "state"} <= set(caps["calls"])
    assert "net.ipv4.tcp_sack" in caps["sysctls"]
    assert "SOL_SOCKET.SO_LINGER" in caps["sockopts"]
    assert caps["fixed_sysctls"]["net.ipv4.tcp_timestamps"] == "1"


def test_passive_open_with_backlog_one_negotiates_options(adapter: Adapter) -> None:
    # listen(fd, 1) must not take the SYN-cookie path (which drops WS and SACK): the
    # adapter passes backlog+1, as gVisor's sentry does.
    fd, synack = passive_open(adapter, backlog=1)
    options = dict(synack[TCP].options)
    assert "WScale" in options and "SAckOK" in options
    state = adapter.request("state", fd=fd)["state"]
    assert state["state"] == "ESTABLISHED"
    assert state["SND.UNA"] == synack[TCP].seq + 1 == state["SND.NXT"]
    assert state["RCV.NXT"] == 1001
    assert state["SND.WND"] == 1024 << 7  # the peer's window, scaled by its WS 7
    assert state["ssthresh"] == 2**31 - 1 and state["cwnd"] == 10 * state["SMSS"]


def test_data_both_ways_and_peek(adapter: Adapter) -> None:
    fd, synack = passive_open(adapter)
    iss = synack[TCP].seq
    adapter.send(TCP(sport=PEER_PORT, dport=PORT, flags="PA", seq=1001, ack=iss + 1,
                     window=1024) / Raw(b"hello gvisor"))
    adapter.sync()
    (ack,) = adapter.packets()
    assert ack[TCP].ack == 1001 + 12
    peek = adapter.request("read", fd=fd, count=100, flags=["MSG_PEEK"])
    assert bytes.fromhex(peek["data"]) == b"hello gvisor"
    got = adapter.request("read", fd=fd, count=100, flags=[])
    assert got["ret"] == 12 and bytes.fromhex(got["data"]) == b"hello gvisor"
    assert adapter.request("write", fd=fd, data=b"answer".hex(), flags=[])["ret"] == 6
    adapter.sync()
    (data,) = adapter.packets()
    assert bytes(data[TCP].payload) == b"answer" and data[TCP].seq == iss + 1
    empty = adapter.request("read", fd=fd, count=10, flags=["MSG_DONTWAIT"])
    assert empty["errno"] == "EAGAIN"


def test_active_open_completes_blocked_connect_before_sync_reply(adapter: Adapter) -> None:
    adapter.init()
    fd = adapter.request("socket", family="AF_INET", type="SOCK_STREAM")["ret"]
    connect = adapter.request("connect", fd=fd, addr={"ip": REMOTE, "port": PORT})
    assert connect["pending"] is True
    adapter.sync()
    (syn,) = adapter.packets()
    assert syn[TCP].flags == "S" and syn[IP].dst == REMOTE and syn[TCP].dport == PORT
    adapter.send(TCP(sport=PORT, dport=syn[TCP].sport, flags="SA", seq=5000,
                     ack=syn[TCP].seq + 1, window=65535, options=[("MSS", 1000)]))
    sync = adapter.sync()
    # The connect's final reply comes before the reply of the sync that completed it.
    order = [m.get("id") for m in adapter.messages]
    assert order.index(connect["id"], order.index(connect["id"]) + 1) < order.index(sync["id"])
    assert adapter.final(connect["id"])["ret"] == 0
    (ack,) = adapter.packets()
    assert ack[TCP].flags == "A" and ack[TCP].ack == 5001
    assert adapter.request("state", fd=fd)["state"]["state"] == "ESTABLISHED"


def test_retransmission_backs_off_in_virtual_time(adapter: Adapter) -> None:
    # Without SACK, so that RACK's tail loss probe (RFC 8985 7), which gVisor sends at
    # the first timeout when SACK is on, does not stand in for the first retransmission.
    fd, _ = passive_open(adapter, options=[("MSS", 1460)])
    rto = adapter.request("state", fd=fd)["state"]["RTO"]
    assert adapter.request("write", fd=fd, data=b"x".hex(), flags=[])["ret"] == 1
    adapter.sync()
    (first,) = adapter.packets()
    # RFC 6298 5.5: the timer doubles on each expiry; first at RTO, then at 3 * RTO.
    for due in (rto, 3 * rto):
        assert adapter.request("advance", to_us=due - 1)["now_us"] == due - 1
        assert adapter.packets() == []
        assert adapter.request("advance", to_us=due)["now_us"] == due
        (again,) = adapter.packets()
        assert again[TCP].seq == first[TCP].seq and bytes(again[TCP].payload) == b"x"


def retransmission_times(adapter: Adapter, fd: int, until: int) -> list[int]:
    """Write one byte on `fd` and step the clock 10 ms at a time up to `until` (us): the
    times the byte was sent again."""
    assert adapter.request("write", fd=fd, data=b"x".hex(), flags=[])["ret"] == 1
    adapter.sync()
    (first,) = adapter.packets()
    times = []
    for now in range(10_000, until + 1, 10_000):
        adapter.request("advance", to_us=now)
        for again in adapter.packets():
            assert again[TCP].seq == first[TCP].seq and bytes(again[TCP].payload) == b"x"
            times.append(now)
    return times


@pytest.mark.parametrize("early_retrans, tlp", [("3", True), ("0", False)])
def test_early_retrans_below_3_turns_the_tail_loss_probe_off(adapter: Adapter, early_retrans: str,
                                                             tlp: bool) -> None:
    # SACK negotiated: gVisor's probe timer needs it, and RACK loss detection, which the
    # adapter turns off with tcp_early_retrans < 3 (gVisor has no switch for TLP alone).
    fd, _ = passive_open(adapter, sysctls={"net.ipv4.tcp_early_retrans": early_retrans})
    rto = adapter.request("state", fd=fd)["state"]["RTO"]
    times = retransmission_times(adapter, fd, 4 * rto)
    # RFC 6298 5.5 alone: at RTO, then 2 RTO later; a probe (RFC 8985 7.3) re-arms the RTO
    # without backing it off, so the next retransmission comes one RTO after the probe.
    assert (times[:2] == [rto, 2 * rto]) is tlp
    assert (times[:2] == [rto, 3 * rto]) is not tlp


def test_sync_reports_next_timer(adapter: Adapter) -> None:
    fd, _ = passive_open(adapter)
    rto = adapter.request("state", fd=fd)["state"]["RTO"]
    adapter.request("write", fd=fd, data=b"y".hex(), flags=[])
    reply = adapter.sync()
    assert reply["now_us"] == 0 and reply["next_us"] is not None and reply["next_us"] <= rto


def test_shutdown_and_peer_fin_walk_to_time_wait(adapter: Adapter) -> None:
    fd, synack = passive_open(adapter)
    iss = synack[TCP].seq
    assert adapter.request("shutdown", fd=fd, how="SHUT_WR")["ret"] == 0
    adapter.sync()
    (fin,) = adapter.packets()
    assert "F" in fin[TCP].flags and fin[TCP].seq == iss + 1
    assert adapter.request("state", fd=fd)["state"]["state"] == "FIN-WAIT-1"
    assert adapter.request("write", fd=fd, data="00", flags=["MSG_NOSIGNAL"])["errno"] == "EPIPE"
    adapter.send(TCP(sport=PEER_PORT, dport=PORT, flags="FA", seq=1001, ack=iss + 2, window=1024))
    adapter.sync()
    (ack,) = adapter.packets()
    assert ack[TCP].ack == 1002
    assert adapter.request("state", fd=fd)["state"]["state"] == "TIME-WAIT"
    eof = adapter.request("read", fd=fd, count=10, flags=[])
    assert eof["ret"] == 0 and eof["data"] == ""


def test_reset_fails_the_connection(adapter: Adapter) -> None:
    fd, synack = passive_open(adapter)
    read = adapter.request("read", fd=fd, count=10, flags=[])
    assert read["pending"] is True
    adapter.send(TCP(sport=PEER_PORT, dport=PORT, flags="R", seq=1001))
    adapter.sync()
    assert adapter.final(read["id"])["errno"] == "ECONNRESET"
    assert adapter.packets() == []  # RFC 9293 3.10.7.4: a RST is never answered
    assert adapter.request("state", fd=fd)["state"]["state"] == "CLOSED"


def test_linger_zero_close_sends_reset(adapter: Adapter) -> None:
    fd, synack = passive_open(adapter)
    assert adapter.request("setsockopt", fd=fd, level="SOL_SOCKET", name="SO_LINGER",
                           value={"l_onoff": 1, "l_linger": 0})["ret"] == 0
    assert adapter.request("close", fd=fd)["ret"] == 0
    adapter.sync()
    (rst,) = adapter.packets()
    assert "R" in rst[TCP].flags and rst[TCP].seq == synack[TCP].seq + 1


def test_poll_times_out_on_the_virtual_clock(adapter: Adapter) -> None:
    fd, _ = passive_open(adapter)
    poll = adapter.request("poll", fds=[{"fd": fd, "events": ["POLLIN"]}], timeout_us=500_000)
    assert poll["pending"] is True
    adapter.request("advance", to_us=499_999)
    assert adapter.final(poll["id"]) is None
    advance = adapter.request("advance", to_us=500_000)
    assert adapter.final(poll["id"]) == {"id": poll["id"], "ret": 0, "revents": [[]]}
    ids = [m.get("id") for m in adapter.messages]
    assert ids.index(poll["id"], ids.index(poll["id"]) + 1) < ids.index(advance["id"])


def test_poll_reports_readable_data(adapter: Adapter) -> None:
    fd, synack = passive_open(adapter)
    poll = adapter.request("poll", fds=[{"fd": fd, "events": ["POLLIN"]}], timeout_us=-1)
    adapter.send(TCP(sport=PEER_PORT, dport=PORT, flags="PA", seq=1001,
                     ack=synack[TCP].seq + 1, window=1024) / Raw(b"z"))
    adapter.sync()
    assert adapter.final(poll["id"]) == {"id": poll["id"], "ret": 1, "revents": [["POLLIN"]]}


def test_rcvbuf_is_doubled_as_by_linux(adapter: Adapter) -> None:
    adapter.init()
    fd = adapter.request("socket", family="AF_INET", type="SOCK_STREAM")["ret"]
    adapter.request("setsockopt", fd=fd, level="SOL_SOCKET", name="SO_RCVBUF", value=10000)
    got = adapter.request("getsockopt", fd=fd, level="SOL_SOCKET", name="SO_RCVBUF")
    assert got["value"] == 20000


def test_sack_sysctl_off_keeps_sack_out_of_the_syn_ack(adapter: Adapter) -> None:
    adapter.init(sysctls={"net.ipv4.tcp_sack": "0"})
    fd = adapter.request("socket", family="AF_INET", type="SOCK_STREAM")["ret"]
    adapter.request("bind", fd=fd, addr={"ip": "0.0.0.0", "port": PORT})
    adapter.request("listen", fd=fd, backlog=5)
    adapter.send(TCP(sport=PEER_PORT, dport=PORT, flags="S", seq=0, options=syn_options()))
    adapter.sync()
    (synack,) = adapter.packets()
    assert "SAckOK" not in dict(synack[TCP].options)


def test_bad_json_and_unknown_op_get_error_replies(adapter: Adapter) -> None:
    adapter.write_line("{not json")
    bad = adapter.read_message()
    assert bad["id"] is None and "not a JSON request" in bad["error"]
    assert "error" in adapter.request("frobnicate")
    adapter.init()  # the adapter still serves requests
    assert "error" in adapter.request("init", ip_version="ipv4")


def test_ipv6_passive_open_sends_nothing_else(adapter: Adapter) -> None:
    # Only the SYN-ACK and its retransmissions: no router solicitation, no duplicate
    # address detection, no MLD report.
    adapter.init(ip_version="ipv6", local_ip="fd3d:fa7b:d17d::1", remote_ip="2001:db8::1",
                 prefix_len=48, gateway_ip="fd3d:fa7b:d17d::2", mtu=1520)
    fd = adapter.request("socket", family="AF_INET6", type="SOCK_STREAM")["ret"]
    adapter.request("bind", fd=fd, addr={"ip": "::", "port": PORT})
    adapter.request("listen", fd=fd, backlog=1)
    adapter.peer.send(raw(IPv6(src="2001:db8::1", dst="fd3d:fa7b:d17d::1")
                          / TCP(sport=PEER_PORT, dport=PORT, flags="S", options=[("MSS", 1440)])))
    adapter.sent += 1
    adapter.request("advance", to_us=2_000_000)
    replies = [IPv6(raw(p)) for p in adapter.packets()]
    assert [p[TCP].flags for p in replies] == ["SA", "SA"]
    assert replies[0][IPv6].dst == "2001:db8::1" and replies[0][TCP].ack == 1


def handshake_iss(binary: str, seed: int) -> int:
    a = Adapter(binary)
    try:
        return passive_open(a, seed=seed)[1][TCP].seq
    finally:
        a.close()


def test_seed_makes_runs_repeat(adapter_binary: str) -> None:
    assert handshake_iss(adapter_binary, 1) == handshake_iss(adapter_binary, 1)
    assert handshake_iss(adapter_binary, 1) != handshake_iss(adapter_binary, 2)


def test_many_packets_before_one_sync(adapter: Adapter) -> None:
    # More packets than the SEQPACKET socket buffer holds (the peer end is non-blocking,
    # so a full buffer would raise here): the adapter must read them as they come.
    fd, synack = passive_open(adapter)
    ack = synack[TCP].seq + 1
    for _ in range(600):
        adapter.send(TCP(sport=PEER_PORT, dport=PORT, flags="A", seq=1001, ack=ack, window=1024))
    payload = bytes(range(256)) * 80
    for offset in range(0, len(payload), 1000):
        adapter.send(TCP(sport=PEER_PORT, dport=PORT, flags="A", seq=1001 + offset, ack=ack,
                         window=1024) / Raw(payload[offset:offset + 1000]))
    read = adapter.request("read", fd=fd, count=len(payload), flags=["MSG_WAITALL"])
    if read.get("pending"):
        adapter.sync()
        read = adapter.final(read["id"])
    assert bytes.fromhex(read["data"]) == payload
    adapter.sync()
    assert max(p[TCP].ack for p in adapter.packets()) == 1001 + len(payload)


def test_nonblocking_connect_refused_sets_so_error(adapter: Adapter) -> None:
    adapter.init()
    fd = adapter.request("socket", family="AF_INET", type="SOCK_STREAM", nonblock=True)["ret"]
    assert adapter.request("connect", fd=fd, addr={"ip": REMOTE, "port": PORT})["errno"] == "EINPROGRESS"
    adapter.sync()
    (syn,) = adapter.packets()
    adapter.send(TCP(sport=PORT, dport=syn[TCP].sport, flags="RA", seq=0, ack=syn[TCP].seq + 1))
    adapter.sync()
    poll = adapter.request("poll", fds=[{"fd": fd, "events": ["POLLOUT"]}], timeout_us=0)
    assert "POLLOUT" in poll["revents"][0] and "POLLERR" in poll["revents"][0]
    error = adapter.request("getsockopt", fd=fd, level="SOL_SOCKET", name="SO_ERROR")
    assert error["value"] == errno.ECONNREFUSED
    assert adapter.request("read", fd=42, count=1, flags=[])["errno"] == "EBADF"


def test_blocked_write_completes_when_the_window_opens(adapter: Adapter) -> None:
    fd, synack = passive_open(adapter, options=[("MSS", 1000)])
    ack = synack[TCP].seq + 1
    adapter.send(TCP(sport=PEER_PORT, dport=PORT, flags="A", seq=1001, ack=ack, window=0))
    adapter.sync()
    sndbuf = adapter.request("getsockopt", fd=fd, level="SOL_SOCKET", name="SO_SNDBUF")["value"]
    data = bytes(sndbuf * 2)  # more than the send buffer holds: the write must wait
    write = adapter.request("write", fd=fd, data=data.hex(), flags=[])
    assert write["pending"] is True
    sent = 0
    for _ in range(400):  # the peer opens its window and acknowledges all it receives
        adapter.send(TCP(sport=PEER_PORT, dport=PORT, flags="A", seq=1001, ack=ack + sent,
                         window=65535))
        adapter.sync()
        segments = [p for p in adapter.packets() if len(p[TCP].payload)]
        sent = max([sent] + [p[TCP].seq - ack + len(p[TCP].payload) for p in segments])
        if adapter.final(write["id"]):
            break
    assert adapter.final(write["id"]) == {"id": write["id"], "ret": len(data)}


def test_lingering_close_waits_in_virtual_time(adapter: Adapter) -> None:
    fd, synack = passive_open(adapter)
    adapter.request("setsockopt", fd=fd, level="SOL_SOCKET", name="SO_LINGER",
                    value={"l_onoff": 1, "l_linger": 2})
    close = adapter.request("close", fd=fd)
    assert close["pending"] is True  # the FIN is not acknowledged
    adapter.request("advance", to_us=1_999_999)
    assert adapter.final(close["id"]) is None
    adapter.request("advance", to_us=2_000_000)
    assert adapter.final(close["id"]) == {"id": close["id"], "ret": 0}


def test_sysctl_op_applies_to_later_connections(adapter: Adapter) -> None:
    adapter.init()
    assert adapter.request("sysctl", name="net.ipv4.tcp_sack", value="0")["ok"] is True
    fd = adapter.request("socket", family="AF_INET", type="SOCK_STREAM")["ret"]
    adapter.request("connect", fd=fd, addr={"ip": REMOTE, "port": PORT})
    adapter.sync()
    (syn,) = adapter.packets()
    assert "SAckOK" not in dict(syn[TCP].options)
    assert "error" in adapter.request("sysctl", name="net.ipv4.tcp_timestamps", value="0")
