"""Synthetic results for the report tests: every verdict, failures with diffs, hostile text,
requirements at every level, two targets. Independent of the live case set."""

from __future__ import annotations

from harness.catalog import catalogue
from harness.ip import IPv4, encode
from harness.result import (CHOICE, ERROR, FAIL, FOLLOWS, PASS, SKIPPED, XFAIL, XPASS, Failure,
                            PacketRecord, Result, Step, Taken)
from harness.tcp import ACK, FIN, PSH, SYN, TCPSegment

TARGET_ISN = 3_000_000_000
TARGETS = ["kernel", "stack"]
HOSTILE = "<script>alert('x')</script> & \"quotes\" | `tick` *star*"

META = {"tool": "rfcdrill", "version": "9.9.9", "format": 1, "started": "2025-01-02T03:04:05+00:00",
        "finished": "2025-01-02T03:05:06+00:00",
        "host": {"kernel": "6.1.0-test", "machine": "x86_64", "python": "3.11.7"},
        "targets": TARGETS,
        "environments": {"kernel": {"kernel": "6.1.0-test", "net.ipv4.tcp_sack": "0",
                                    "net.ipv4.tcp_rmem": "4096\t131072\t6291456"}}}


def ids_at(level: str, count: int) -> list[str]:
    """The first `count` catalogue ids at `level`, in catalogue order."""
    return [r.id for r in catalogue().values() if r.level == level][:count]


def segment(inbound: bool, flags: int, seq: int, ack: int, payload: bytes = b"",
            window: int = 65535, options: list | None = None) -> bytes:
    """A packet as it crossed the TUN device; the target's numbers are offset by its ISN."""
    if inbound:
        ip = IPv4("192.0.2.1", "192.168.0.1")
        seg = TCPSegment(40000, 8080, seq, (ack + TARGET_ISN) % (1 << 32), flags, window,
                         options=options or [], payload=payload)
    else:
        ip = IPv4("192.168.0.1", "192.0.2.1")
        seg = TCPSegment(8080, 40000, (seq + TARGET_ISN) % (1 << 32), ack, flags, window,
                         options=options or [], payload=payload)
    return encode(ip, seg)


def handshake_packets() -> list[PacketRecord]:
    """SYN, SYN-ACK, ACK, 10 bytes of data, its ACK, then the target's FIN."""
    return [PacketRecord(0.0010, "in", segment(True, SYN, 0, 0, options=[("mss", 1460)])),
            PacketRecord(0.0012, "out", segment(False, SYN | ACK, 0, 1, window=64240,
                                                options=[("mss", 1460)])),
            PacketRecord(0.0110, "in", segment(True, ACK, 1, 1)),
            PacketRecord(0.0210, "in", segment(True, PSH | ACK, 1, 1, payload=b"0123456789")),
            PacketRecord(0.0212, "out", segment(False, ACK, 1, 11, window=64230)),
            PacketRecord(0.0310, "out", segment(False, FIN | ACK, 1, 11, window=64230))]


def steps() -> list[Step]:
    return [Step(0.0001, 5, "call", "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3", "= 3"),
            Step(0.0010, 9, "inject", "+0 < S 0:0(0) win 65535 <mss 1460>", due=0.0009),
            Step(0.0012, 10, "outbound", "+0 > S. 0:0(0) ack 1 <mss 1460>",
                 "S. 0:0(0) ack 1 win 64240 <mss 1460>", due=0.0010)]


def mismatch() -> Failure:
    """The target's FIN acked 11 with window 64230 where the script wanted ack 12, win 100."""
    return Failure("outbound segment does not match", 14, 3, "+0 > F. 1:1(0) ack 12 win 100",
                   "F. 1:1(0) ack 12 win 100", "0.031000 F. 1:1(0) ack 11 win 64230",
                   [{"field": "ack", "expected": "12", "actual": "11"},
                    {"field": "win", "expected": "100", "actual": "64230"}])


def result(case_id: str, target: str, verdict: str, requirements: list[str], **extra) -> Result:
    raw = {XFAIL: FAIL, XPASS: PASS}.get(verdict, verdict)
    if verdict == FOLLOWS and "expectation" in extra:
        raw = FAIL
    base = dict(case_id=case_id, path=f"cases/synthetic/{case_id}.yaml", target=target,
                verdict=verdict, duration=0.042, title=f"Title of {case_id}",
                requirements=requirements, raw_verdict=raw)
    if verdict in (PASS, FAIL, XFAIL, XPASS):
        base.update(timeline=steps(), packets=handshake_packets())
    if verdict in (FAIL, XFAIL):
        base["failure"] = mismatch()
    return Result(**{**base, **extra})


def results() -> list[Result]:
    """A small run on two targets in which each verdict and each level occurs."""
    must, must2, must3, must4, must5, must6 = ids_at("MUST", 6)
    must_not, = ids_at("MUST NOT", 1)
    should, should2 = ids_at("SHOULD", 2)
    should_not, = ids_at("SHOULD NOT", 1)
    may, may2 = ids_at("MAY", 2)
    return [
        result("passive-open", "kernel", PASS, [must, may]),
        result("passive-open", "stack", PASS, [must, may]),
        result("fin-ack", "kernel", FAIL, [must2, must_not]),
        result("fin-ack", "stack", PASS, [must2, must_not]),
        result("known-deviation", "kernel", XFAIL, [must3],
               expectation="Linux acks later than the RFC asks"),
        result("known-deviation", "stack", PASS, [must3]),
        result("stale-expectation", "kernel", PASS, [should]),
        result("stale-expectation", "stack", XPASS, [should],
               expectation="stack lacked this once"),
        result("broken-setup", "kernel", ERROR, [must4],
               failure=Failure("setsockopt: Operation not permitted", 3, 1)),
        result("broken-setup", "stack", SKIPPED, [must4],
               failure=Failure("stack has no raw sockets")),
        result("nagle-hold", "kernel", FAIL, [should2, should_not]),
        result("nagle-hold", "stack", PASS, [should2, should_not]),
        result("no-synack", "kernel", FAIL, [must5],
               failure=Failure("expected segment did not arrive by 0.210000", 10, 3,
                               "+0 > S. 0:0(0) ack 1 <mss 1460>", "S. 0:0(0) ack 1 <mss 1460>"),
               packets=handshake_packets()[:1]),
        result("no-synack", "stack", PASS, [must5]),
        result("hostile", "kernel", FAIL, [must],
               title=HOSTILE, path=f"cases/{HOSTILE}.yaml",
               failure=Failure(HOSTILE, 7, 1, f"+0 > {HOSTILE}", HOSTILE, f"0.001200 {HOSTILE}",
                               [{"field": HOSTILE, "expected": HOSTILE, "actual": HOSTILE}]),
               expectation=HOSTILE),
        result("hostile", "stack", PASS, [must]),
        result("challenge-ack", "kernel", FOLLOWS, [must6], follows="RFC 5961 3.2",
               branches=[Taken(16, "RFC 5961 3.2", "follows", 2, 2)]),
        result("challenge-ack", "stack", FOLLOWS, [must6], follows="RFC 5961 3.2",
               expectation="the stack follows RFC 5961"),
        result("inflation-limit", "kernel", CHOICE, [may2],
               branches=[Taken(30, "MAY not taken: no limit", "choice", 2, 2)]),
        result("inflation-limit", "stack", PASS, [may2]),
    ]


def big_run(cases: int = 300) -> list[Result]:
    """Many failing cases on many MUSTs and SHOULDs, for the summary's length bound."""
    strict = ids_at("MUST", 200)
    loose = ids_at("SHOULD", 60)
    out = []
    for i in range(cases):
        reqs = [strict[i % len(strict)]] if i % 3 else [loose[i % len(loose)]]
        for target in TARGETS:
            verdict = (FAIL, ERROR, XFAIL, PASS)[(i + len(target)) % 4]
            out.append(result(f"case-{i:03d}", target, verdict, reqs,
                              failure=mismatch() if verdict != PASS else None))
    return out

