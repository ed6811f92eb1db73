"""IPv6 and IPv4-mapped IPv6: the codec, the address plans, the versions a script runs in,
and scripts that run unchanged in all three plans on the kernel."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from harness.checksum import checksum
from harness.errors import CaseError, Malformed
from harness.execute import run_one
from harness.icmp import build_icmp_error
from harness.ip import IPv4, IPv6, decode, decode_v6, encode, upper_checksum
from harness.loader import load, runner_versions
from harness.result import ERROR, FAIL, NOT_APPLICABLE, PASS
from harness.suite import jobs_for, skipped_result, variants
from harness.tcp import ACK, PSH, TCPSegment

from tests.conftest import HANDSHAKE, case_yaml, needs_root

PLAIN = ("`sysctl -q -w net.ipv4.tcp_timestamps=0 net.ipv4.tcp_sack=0 "
         "net.ipv4.tcp_window_scaling=0`\n")


def _segment() -> TCPSegment:
    return TCPSegment(40000, 8080, 1000, 2000, ACK | PSH, 512, options=[("mss", 1440)],
                      payload=b"hello, six")


def test_an_ipv6_segment_round_trips_with_a_valid_checksum():
    ip = IPv6("2001:db8::1", "fd3d:fa7b:d17d::", tos=0xb8, ttl=7, flowlabel=0x12345)
    raw = encode(ip, _segment())
    assert raw[0] >> 4 == 6 and len(raw) == 40 + 24 + 10
    got_ip, got = decode(raw)
    assert (got_ip.src, got_ip.dst, got_ip.tos, got_ip.ttl, got_ip.flowlabel) == \
        ("2001:db8::1", "fd3d:fa7b:d17d::", 0xb8, 7, 0x12345)
    assert got.checksum_ok and got.payload == b"hello, six" and got.option("mss") == ("mss", 1440)


def test_the_ipv6_checksum_covers_the_pseudo_header():
    raw = bytearray(encode(IPv6("2001:db8::1", "fd3d:fa7b:d17d::"), _segment()))
    raw[8 + 15] ^= 1                     # another source address: the TCP checksum is now wrong
    assert not decode(bytes(raw))[1].checksum_ok
    raw[8 + 15] ^= 1
    raw[40 + 16] ^= 0xFF                 # the checksum field itself
    assert not decode(bytes(raw))[1].checksum_ok


def test_ipv4_still_decodes_and_bad_ipv6_is_malformed():
    ip, seg = decode(encode(IPv4("192.0.2.1", "192.168.0.1"), _segment()))
    assert ip.src == "192.0.2.1" and seg.checksum_ok
    raw = encode(IPv6("2001:db8::1", "fd3d:fa7b:d17d::", proto=17), _segment())
    with pytest.raises(Malformed, match="next header 17"):
        decode(raw)
    with pytest.raises(Malformed, match="payload length"):
        decode_v6(raw[:60])


def test_icmp_lines_become_the_icmpv6_error_of_the_same_meaning():
    quoted = encode(IPv6("fd3d:fa7b:d17d::", "2001:db8::1"), _segment())
    port = build_icmp_error(IPv6("2001:db8::1", "fd3d:fa7b:d17d::"), 3, 3, quoted)
    too_big = build_icmp_error(IPv6("2001:db8::1", "fd3d:fa7b:d17d::"), 3, 4, quoted, mtu=1300)
    for packet, want in ((port, (1, 4)), (too_big, (2, 0))):
        ip = decode_v6(packet)
        assert ip.proto == 58 and (ip.payload[0], ip.payload[1]) == want
        body = ip.payload[:2] + b"\0\0" + ip.payload[4:]
        assert upper_checksum(ip, body) == struct.unpack("!H", ip.payload[2:4])[0]
        assert ip.payload[8:48] == quoted[:40]
    assert struct.unpack("!I", decode_v6(too_big).payload[4:8])[0] == 1300
    with pytest.raises(CaseError, match="no ICMPv6 counterpart"):
        build_icmp_error(IPv6("2001:db8::1", "fd3d:fa7b:d17d::"), 4, 0, quoted)
    v4 = build_icmp_error(IPv4("192.0.2.1", "192.168.0.1"), 3, 3, quoted[:28])
    assert v4[9] == 1 and checksum(v4[20:]) == 0


@pytest.mark.parametrize("name, versions", [
    ("a.pkt", ("ipv4", "ipv4-mapped-ipv6", "ipv6")),
    ("close-v4.pkt", ("ipv4", "ipv4-mapped-ipv6")),
    ("close-v6.pkt", ("ipv6",)),
])
def test_a_pkt_runs_in_the_versions_packetdrills_runner_gives_it(tmp_path, name, versions):
    path = tmp_path / name
    path.write_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    assert runner_versions(str(path)) == versions
    runs = variants(load(path))
    assert [s.plan.ip_version for s, _ in runs] == list(versions)
    if len(versions) > 1:
        assert [s.id for s, _ in runs] == [f"{path.stem}@{v}" for v in versions]


@pytest.mark.parametrize("line, versions", [
    ("+0 < [id 7] S 0:0(0) win 1", ("ipv4", "ipv4-mapped-ipv6")),
    ("+0 < (src 192.0.2.9) S 0:0(0) win 1", ("ipv4", "ipv4-mapped-ipv6")),
    ("+0 < (src 2001:db8::9) S 0:0(0) win 1", ("ipv6",)),
    ("+0 < (flowlabel 1) S 0:0(0) win 1", ("ipv6",)),
    ("+0 < (tos 0x10) S 0:0(0) win 1", ("ipv4", "ipv4-mapped-ipv6", "ipv6")),
])
def test_fields_of_one_ip_version_keep_a_pkt_to_it(tmp_path, line, versions):
    path = tmp_path / "fields.pkt"
    path.write_text(line + "\n")
    assert load(path).plan.ip_versions == versions


def test_a_yaml_case_runs_in_the_versions_asked_for_unless_it_names_its_own(write_case):
    free = load(write_case("free.yaml", case_yaml("free", "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")))
    assert [(s.id, s.plan.ip_version) for s, _ in variants(free)] == [("free", "ipv4")]
    assert [(s.id, s.plan.ip_version, s.plan.local_ip) for s, _ in variants(free, ["ipv6"])] == \
        [("free@ipv6", "ipv6", "fd3d:fa7b:d17d::")]
    fixed = load(write_case("fixed.yaml", case_yaml("fixed", "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n",
                                                    extra="options: {ip_version: [ipv4]}\n")))
    assert variants(fixed, ["ipv6"]) == []
    addressed = load(write_case("addressed.yaml", case_yaml(
        "addressed", "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n",
        extra="options: {remote_ip: 192.168.255.255}\n")))
    assert variants(addressed, ["ipv6"]) == []


def test_the_ipv6_plan_is_packetdrills_and_options_win(tmp_path):
    path = tmp_path / "plan.pkt"
    path.write_text("--ip_version=ipv6\n--remote_ip=2001:db8::99\n"
                    "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    plan = load(path).plan
    assert (plan.ip_version, plan.ip_versions) == ("ipv6", ("ipv6",))
    assert (plan.local_ip, plan.remote_ip, plan.prefix_len, plan.mtu) == \
        ("fd3d:fa7b:d17d::", "2001:db8::99", 48, 1520)
    path.write_text("--ip_version=ipv4,ipv6\n--mtu=1400\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    assert [(s.plan.ip_version, s.plan.mtu) for s, _ in variants(load(path))] == \
        [("ipv4", 1400), ("ipv6", 1400)]


def test_an_address_of_the_wrong_family_is_an_error_of_that_run_only(tmp_path):
    path = tmp_path / "fixed.pkt"
    path.write_text("--local_ip=10.0.0.1\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    jobs = jobs_for(str(path), ["kernel"])
    assert [j.error is None for j in jobs] == [True, True, False]
    assert str(jobs[2].error) == f"{path}:1:1: --local_ip=10.0.0.1 is not an IPv6 address (ipv6)"


def test_runs_the_stack_target_cannot_make_are_not_applicable(tmp_path):
    path = tmp_path / "both.pkt"
    path.write_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    jobs = jobs_for(str(path), ["stack"])
    skipped = [skipped_result(j) for j in jobs]
    assert skipped[0] is None
    assert all(s is not None and s.verdict == NOT_APPLICABLE for s in skipped[1:])
    assert skipped[2].expectation == "needs ipv6 (the target runs ipv4)"


def _run(tmp_path: Path, text: str, version: str, name: str = "script.pkt"):
    path = tmp_path / name
    path.write_text(text)
    (script, error), = variants(load(path), [version])
    assert error is None
    return run_one(script, "kernel")


@needs_root
@pytest.mark.parametrize("version, wire", [("ipv4", 4), ("ipv4-mapped-ipv6", 4), ("ipv6", 6)])
def test_one_script_runs_in_every_plan_with_its_own_wire(tmp_path, version, wire):
    result = _run(tmp_path, PLAIN + HANDSHAKE + "+0 write(4, ..., 100) = 100\n"
                  "+0 > P. 1:101(100) ack 1\n+0 getpeername(4, ..., ...) = 0\n", version)
    assert result.verdict == PASS, result.failure
    assert {p.data[0] >> 4 for p in result.packets} == {wire}


@needs_root
def test_ipv6_header_fields_are_checked_and_ipv4_fields_refused(tmp_path):
    ok = _run(tmp_path, PLAIN + HANDSHAKE + "+0 write(4, ..., 10) = 10\n"
              "+0 > (ttl 64, tos 0x0, src fd3d:fa7b:d17d::, dst 2001:db8::1) P. 1:11(10) ack 1\n",
              "ipv6")
    assert ok.verdict == PASS, ok.failure
    wrong = _run(tmp_path, PLAIN + HANDSHAKE + "+0 write(4, ..., 10) = 10\n"
                 "+0 > (ttl 9, dst 2001:db8::2) P. 1:11(10) ack 1\n", "ipv6")
    assert wrong.verdict == FAIL
    assert {d["field"] for d in wrong.failure.diff} == {"ttl", "dst"}
    refused = _run(tmp_path, "--ip_version=ipv6\n" + PLAIN + HANDSHAKE
                   + "+0 < [id 5] . 1:1(0) ack 1 win 100\n", "ipv6")
    assert refused.verdict == ERROR and "'id' is an IPv4 field" in refused.failure.message


@needs_root
def test_an_icmpv6_port_unreachable_refuses_a_connect(tmp_path):
    result = _run(tmp_path, PLAIN + "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
                  "+0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n"
                  "+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)\n"
                  "+0 > S 0:0(0) <mss 1460>\n"
                  "+.01 < icmp unreachable port_unreachable [0:0(0)]\n"
                  "+0 getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNREFUSED], [4]) = 0\n", "ipv6")
    assert result.verdict == PASS, result.failure
