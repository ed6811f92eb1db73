"""The lwIP adapter (harness/adapters/lwip) driven over target protocol v1 from Python.

Packets are built and decoded with scapy, never with rfcdrill's or the stack's codec. Every
time below is virtual: the adapter's clock moves only on `advance`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP

from tests.adapters.client import AdapterClient

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "harness" / "adapters" / "lwip" / "build.sh"
LOCAL, REMOTE = "192.168.0.1", "192.0.2.1"
PEER_PORT, PORT = 40000, 8080


@pytest.fixture(scope="module")
def binary() -> str:
    done = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "build.sh failed")
    return done.stdout.strip()


class Adapter(AdapterClient):
    """The client with this file's address plan; every packet sent is followed by a sync."""

    def init(self, **sysctls: str) -> dict:
        return self.request("init", ip_version="ipv4", local_ip=LOCAL, remote_ip=REMOTE, prefix_len=16,
                            gateway_ip="192.168.0.2", mtu=1500, seed=1, sysctls=sysctls)

    def send(self, segment: TCP, payload: bytes = b"") -> dict:
        """Sends one segment from the peer and syncs; returns the sync reply."""
        self.peer.send(bytes(IP(src=REMOTE, dst=LOCAL) / segment / payload) if payload
                       else bytes(IP(src=REMOTE, dst=LOCAL) / segment))
        self.sent += 1
        return self.request("sync", packets=self.sent)

    def advance(self, to_us: int) -> dict:
        return self.request("advance", to_us=to_us)


@pytest.fixture
def adapter(binary: str):
    a = Adapter(binary)
    assert a.init() == {"id": 1, "ok": True}
    yield a
    a.close()


def call(a: Adapter, op: str, **args) -> dict:
    reply = a.request(op, **args)
    assert "pending" not in reply and "error" not in reply, reply
    return reply


def listen(a: Adapter) -> int:
    fd = call(a, "socket", family="AF_INET", type="SOCK_STREAM", nonblock=False)["ret"]
    assert call(a, "bind", fd=fd, addr={"ip": "0.0.0.0", "port": PORT})["ret"] == 0
    assert call(a, "listen", fd=fd, backlog=1)["ret"] == 0
    return fd


def passive_open(a: Adapter) -> tuple[int, int]:
    """Handshake from the peer; returns the accepted descriptor and the stack's ISS."""
    lfd = listen(a)
    accept = a.request("accept", fd=lfd)
    assert accept == {"id": accept["id"], "pending": True}
    a.send(TCP(sport=PEER_PORT, dport=PORT, flags="S", seq=1000, window=65535,
               options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("WScale", 7)]))
    [synack] = a.packets()
    assert synack[TCP].flags == "SA" and synack[TCP].ack == 1001
    assert a.final(accept["id"]) is None
    a.send(TCP(sport=PEER_PORT, dport=PORT, flags="A", seq=1001, ack=synack[TCP].seq + 1, window=512))
    done = a.final(accept["id"])
    assert done == {"id": accept["id"], "ret": done["ret"], "addr": {"ip": REMOTE, "port": PEER_PORT}}
    return done["ret"], synack[TCP].seq


def data(a: Adapter, iss: int, seq: int, payload: bytes, flags: str = "PA") -> dict:
    return a.send(TCP(sport=PEER_PORT, dport=PORT, flags=flags, seq=seq, ack=iss + 1, window=512), payload)


def test_hello_declares_what_debians_lwip_can_do(binary: str) -> None:
    a = Adapter(binary)
    try:
        caps = a.hello["capabilities"]
        assert (a.hello["event"], a.hello["protocol"], a.hello["name"]) == ("hello", 1, "lwip")
        assert caps["time"] == "virtual" and caps["ip_versions"] == ["ipv4"]
        assert caps["tcp_options"] == ["mss", "wscale"]  # no SACK, no timestamps in this build
        assert {"accept", "connect", "poll", "state"} <= set(caps["calls"])
        assert "IPPROTO_TCP.TCP_NODELAY" in caps["sockopts"]
    finally:
        a.close()


def test_passive_handshake_syn_ack_options_and_state(adapter: Adapter) -> None:
    fd, iss = passive_open(adapter)
    state = call(adapter, "state", fd=fd)["state"]
    assert state["state"] == "ESTABLISHED"
    assert (state["SND.UNA"], state["SND.NXT"], state["RCV.NXT"]) == (iss + 1, iss + 1, 1001)
    assert state["SND.WND"] == 512 << 7 and state["SMSS"] == 1460


def test_syn_ack_offers_mss_and_window_scale_only(adapter: Adapter) -> None:
    listen(adapter)
    adapter.send(TCP(sport=PEER_PORT, dport=PORT, flags="S", seq=1000, window=65535,
                     options=[("MSS", 1000), ("SAckOK", b""), ("Timestamp", (1, 0)), ("WScale", 7)]))
    [synack] = adapter.packets()
    assert synack[TCP].options == [("MSS", 1460), ("NOP", None), ("WScale", 1)]


def checksums_correct(packet: IP) -> bool:
    fresh = packet.copy()
    del fresh[IP].chksum, fresh[TCP].chksum
    fresh = IP(bytes(fresh))
    return (fresh[IP].chksum, fresh[TCP].chksum) == (packet[IP].chksum, packet[TCP].chksum)


@pytest.fixture
def unscaled(binary: str):
    a = Adapter(binary)
    assert a.init(**{"net.ipv4.tcp_window_scaling": "0", "net.ipv4.tcp_sack": "0"}) == {"id": 1, "ok": True}
    yield a
    a.close()


def test_window_scaling_off_hides_the_peers_offer(unscaled: Adapter) -> None:
    fd, iss = passive_open(unscaled)
    assert call(unscaled, "state", fd=fd)["state"]["SND.WND"] == 512  # not scaled by the offered 7
    data(unscaled, iss, 1001, b"x")
    unscaled.advance(250_000)
    [ack] = unscaled.packets()
    # 65535 less the unread octet, unscaled (scaled by lwIP's shift 1 it would read 32767).
    assert ack[TCP].ack == 1002 and ack[TCP].window == 65534


def test_window_scaling_off_syn_ack_and_syn_carry_mss_only(unscaled: Adapter) -> None:
    listen(unscaled)
    unscaled.send(TCP(sport=PEER_PORT, dport=PORT, flags="S", seq=1000, window=65535,
                      options=[("MSS", 1460), ("NOP", None), ("WScale", 7)]))
    [synack] = unscaled.packets()
    assert synack[TCP].options == [("MSS", 1460)] and checksums_correct(synack)
    fd = call(unscaled, "socket", family="AF_INET", type="SOCK_STREAM", nonblock=True)["ret"]
    assert call(unscaled, "connect", fd=fd, addr={"ip": REMOTE, "port": 9}) == {
        "id": unscaled.last_id, "ret": -1, "errno": "EINPROGRESS"}
    [syn] = unscaled.packets()
    assert syn[TCP].options == [("MSS", 1460)] and syn[TCP].dataofs == 6 and checksums_correct(syn)
    assert syn[IP].len == 44


def test_sysctls_lwip_cannot_apply_are_refused_by_name(binary: str) -> None:
    a = Adapter(binary)
    try:
        caps = a.hello["capabilities"]
        assert caps["sysctls"] == ["net.ipv4.tcp_window_scaling"]  # the one the adapter applies
        assert caps["fixed_sysctls"]["net.ipv4.tcp_sack"] == "0"
        assert "LWIP_TCP_SACK_OUT=0" in a.init(**{"net.ipv4.tcp_sack": "1"})["error"]
        assert "lwIP has no ECN" in a.init(**{"net.ipv4.tcp_ecn": "2"})["error"]
        assert "not one this adapter declares" in a.init(**{"net.ipv4.tcp_rfc1337": "1"})["error"]
    finally:
        a.close()


def test_active_open_completes_connect_during_sync(adapter: Adapter) -> None:
    fd = call(adapter, "socket", family="AF_INET", type="SOCK_STREAM", nonblock=False)["ret"]
    connect = adapter.request("connect", fd=fd, addr={"ip": REMOTE, "port": PORT})
    assert connect.get("pending") is True
    [syn] = adapter.packets()
    assert syn[TCP].flags == "S" and syn[TCP].dport == PORT and ("MSS", 1460) in syn[TCP].options
    reply = adapter.send(TCP(sport=PORT, dport=syn[TCP].sport, flags="SA", seq=5000, ack=syn[TCP].seq + 1,
                             window=4000, options=[("MSS", 1000)]))
    assert adapter.final(connect["id"]) == {"id": connect["id"], "ret": 0}
    assert adapter.messages.index(adapter.final(connect["id"])) < adapter.messages.index(reply)
    [ack] = adapter.packets()
    assert ack[TCP].flags == "A" and ack[TCP].ack == 5001
    assert call(adapter, "write", fd=fd, data="ab" * 2500)["ret"] == 2500
    sizes = [len(p[TCP].payload) for p in adapter.packets()]
    assert sizes and max(sizes) == 1000  # the peer's MSS is honoured


def test_data_both_ways(adapter: Adapter) -> None:
    fd, iss = passive_open(adapter)
    data(adapter, iss, 1001, b"hello, lwip")
    assert call(adapter, "read", fd=fd, count=100) == {"id": adapter.last_id, "ret": 11,
                                                        "data": b"hello, lwip".hex()}
    assert call(adapter, "write", fd=fd, data=b"reply".hex())["ret"] == 5
    [segment] = adapter.packets()
    assert bytes(segment[TCP].payload) == b"reply" and segment[TCP].seq == iss + 1
    assert segment[TCP].ack == 1012  # the reply carries the ACK of the data


def test_delayed_ack_comes_at_the_next_fast_timer_in_virtual_time(adapter: Adapter) -> None:
    fd, iss = passive_open(adapter)
    reply = data(adapter, iss, 1001, b"x" * 100)
    assert adapter.packets() == []  # a fact after sync: the lone segment is not ACKed at once
    assert reply["next_us"] is not None
    adapter.advance(249_999)
    assert adapter.packets() == []
    adapter.advance(250_000)
    [ack] = adapter.packets()
    assert ack[TCP].flags == "A" and ack[TCP].ack == 1101


def test_retransmission_backs_off_in_virtual_time(adapter: Adapter) -> None:
    fd, iss = passive_open(adapter)
    assert call(adapter, "write", fd=fd, data="61" * 10)["ret"] == 10
    assert len(adapter.packets()) == 1
    times = []
    now = 0
    while len(times) < 3:
        now += 100_000
        adapter.advance(now)
        for p in adapter.packets():
            assert p[TCP].seq == iss + 1 and len(p[TCP].payload) == 10
            times.append(now)
    first, second, third = times
    # RTO 3 s at first (lwIP's initial RTO), doubled at each timeout, counted in 500 ms ticks.
    assert 2_500_000 <= first <= 3_500_000
    assert second - first == pytest.approx(2 * first, abs=600_000)
    assert third - second == pytest.approx(2 * (second - first), abs=600_000)
    state = call(adapter, "state", fd=fd)["state"]
    assert state["cwnd"] == state["SMSS"]


def test_one_advance_fires_each_timer_at_its_own_due_time(adapter: Adapter) -> None:
    fd, iss = passive_open(adapter)
    assert call(adapter, "write", fd=fd, data="61" * 10)["ret"] == 10
    adapter.packets()
    adapter.advance(10_000_000)  # RTO 3 s, then 6 s: two retransmissions in one step
    assert len(adapter.packets()) == 2
    assert call(adapter, "state", fd=fd)["state"]["RTO"] == 12_000_000


def test_close_sends_fin_and_the_peer_fin_is_acked(adapter: Adapter) -> None:
    fd, iss = passive_open(adapter)
    assert call(adapter, "close", fd=fd)["ret"] == 0
    [fin] = adapter.packets()
    assert fin[TCP].flags == "FA" and fin[TCP].seq == iss + 1
    # The closed descriptor still names its connection, as on Linux.
    assert call(adapter, "state", fd=fd)["state"]["state"] == "FIN-WAIT-1"
    adapter.send(TCP(sport=PEER_PORT, dport=PORT, flags="FA", seq=1001, ack=iss + 2, window=512))
    [ack] = adapter.packets()
    assert ack[TCP].flags == "A" and ack[TCP].ack == 1002
    assert call(adapter, "state", fd=fd)["state"]["state"] == "TIME-WAIT"
    adapter.advance(121_000_000)  # 2MSL = 2 x 60 s in lwIP
    assert call(adapter, "state", fd=fd)["state"] == {"state": "CLOSED"}
    assert call(adapter, "state", fd=fd + 100) == {"id": adapter.last_id, "ret": -1, "errno": "EBADF"}


def test_passive_close_reaches_last_ack_after_shutdown_and_close(adapter: Adapter) -> None:
    fd, iss = passive_open(adapter)
    adapter.send(TCP(sport=PEER_PORT, dport=PORT, flags="FA", seq=1001, ack=iss + 1, window=512))
    assert call(adapter, "state", fd=fd)["state"]["state"] == "CLOSE-WAIT"
    # lwIP detaches the pcb from the socket once SHUT_WR completes the close.
    assert call(adapter, "shutdown", fd=fd, how="SHUT_WR")["ret"] == 0
    assert call(adapter, "state", fd=fd)["state"]["state"] == "LAST-ACK"
    assert call(adapter, "close", fd=fd)["ret"] == 0
    assert call(adapter, "state", fd=fd)["state"]["state"] == "LAST-ACK"
    # lwIP gives the lowest free number again; from then on it names the new socket.
    assert call(adapter, "socket", family="AF_INET", type="SOCK_STREAM", nonblock=False)["ret"] == fd
    assert call(adapter, "state", fd=fd)["state"] == {"state": "CLOSED"}


def test_rst_ends_a_blocked_read_with_econnreset(adapter: Adapter) -> None:
    fd, iss = passive_open(adapter)
    read = adapter.request("read", fd=fd, count=10)
    assert read.get("pending") is True
    adapter.send(TCP(sport=PEER_PORT, dport=PORT, flags="R", seq=1001, window=0))
    assert adapter.final(read["id"]) == {"id": read["id"], "ret": -1, "errno": "ECONNRESET"}
    assert call(adapter, "state", fd=fd)["state"] == {"state": "CLOSED"}
    assert adapter.packets() == []


def test_blocked_accept_reply_precedes_the_sync_reply(adapter: Adapter) -> None:
    passive_open(adapter)
    accepted = next(m for m in adapter.messages if "ret" in m and "addr" in m)
    syncs = [m for m in adapter.messages if "now_us" in m]
    assert adapter.messages.index(accepted) == adapter.messages.index(syncs[-1]) - 1


def test_poll_times_out_on_the_virtual_clock(adapter: Adapter) -> None:
    fd, iss = passive_open(adapter)
    poll = adapter.request("poll", fds=[{"fd": fd, "events": ["POLLIN"]}], timeout_us=1_000_000)
    assert poll.get("pending") is True
    adapter.advance(999_999)
    assert adapter.final(poll["id"]) is None
    reply = adapter.advance(1_000_000)
    assert adapter.final(poll["id"]) == {"id": poll["id"], "ret": 0, "revents": [[]]}
    assert adapter.messages.index(adapter.final(poll["id"])) < adapter.messages.index(reply)


def test_poll_wakes_on_data(adapter: Adapter) -> None:
    fd, iss = passive_open(adapter)
    poll = adapter.request("poll", fds=[{"fd": fd, "events": ["POLLIN", "POLLOUT"]}], timeout_us=-1)
    assert poll["ret"] == 1 and poll["revents"] == [["POLLOUT"]]
    poll = adapter.request("poll", fds=[{"fd": fd, "events": ["POLLIN"]}], timeout_us=-1)
    assert poll.get("pending") is True
    data(adapter, iss, 1001, b"abc")
    assert adapter.final(poll["id"]) == {"id": poll["id"], "ret": 1, "revents": [["POLLIN"]]}


def test_nonblocking_calls_and_sockopts(adapter: Adapter) -> None:
    fd, iss = passive_open(adapter)
    assert call(adapter, "fcntl", fd=fd, nonblock=True)["nonblock"] is True
    assert call(adapter, "read", fd=fd, count=10) == {"id": adapter.last_id, "ret": -1, "errno": "EAGAIN"}
    assert call(adapter, "setsockopt", fd=fd, level="IPPROTO_TCP", name="TCP_NODELAY", value=1)["ret"] == 0
    assert call(adapter, "getsockopt", fd=fd, level="IPPROTO_TCP", name="TCP_NODELAY")["value"] == 1
    linger = {"l_onoff": 1, "l_linger": 0}
    assert call(adapter, "setsockopt", fd=fd, level="SOL_SOCKET", name="SO_LINGER", value=linger)["ret"] == 0
    assert call(adapter, "getsockopt", fd=fd, level="SOL_SOCKET", name="SO_LINGER")["value"] == linger
    assert call(adapter, "getpeername", fd=fd)["addr"] == {"ip": REMOTE, "port": PEER_PORT}
    assert call(adapter, "getsockname", fd=fd)["addr"] == {"ip": LOCAL, "port": PORT}
    data(adapter, iss, 1001, b"abcd")
    assert call(adapter, "ioctl", fd=fd, request="SIOCINQ")["value"] == 4
    assert call(adapter, "close", fd=fd)["ret"] == 0
    [rst] = adapter.packets()
    assert rst[TCP].flags.R  # linger {1, 0}: close aborts


@pytest.mark.parametrize("line", [
    "{not json", "[1, 2", '{"id": 1, "op": "x"} trailing', '"just a string"', "{\"id\": \"\\x\"}",
    "[" * 100 + "]" * 100, '{"id": 1e999999}', '{"id": 5, "op": "sync", "packets": -1}',
    '{"id": 6, "op": "read", "fd": 1, "count": "ten"}', '{"id": 7, "op": "write", "fd": 1, "data": "zz"}',
    '{"id": 8, "op": "setsockopt", "fd": 1, "level": "SOL_SOCKET", "name": "SO_NOPE", "value": 1}',
    '{"id": 9, "op": "nosuchop"}', '{"op": "sync"}', '{"id": 10, "op": "advance", "to_us": -5}',
])
def test_bad_input_gets_an_error_reply_and_the_adapter_goes_on(adapter: Adapter, line: str) -> None:
    reply = adapter.raw(line)
    assert set(reply) == {"id", "error"} and reply["error"]
    assert adapter.request("sync", packets=0)["now_us"] == 0


def test_build_names_what_to_install_when_gcc_is_missing(tmp_path: Path) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("bash", "dirname", "cat", "sha256sum", "cut", "mkdir", "mktemp", "mv"):
        found = shutil.which(tool)
        if found:
            (tools / tool).symlink_to(found)
    done = subprocess.run([str(tools / "bash"), str(BUILD)], capture_output=True, text=True,
                          env={"PATH": str(tools), "HOME": str(tmp_path)})
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "lwip adapter: gcc is missing (apt-get install build-essential)"]
