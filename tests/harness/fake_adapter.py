"""A scripted target-protocol adapter for the harness's tests (no TCP stack behind it).

`fake_adapter.py MODE [LOG]`; every request it gets is appended to LOG as a JSON line.
Modes:
- `version2`: says hello in protocol 2; `mute`: exits without a word; `garbage`: a first
  line that is not JSON;
- `virtual` (virtual time): socket/bind/listen succeed; `accept` pends and completes, fd 4,
  at 1 s of virtual time; a SYN it is given is answered by a SYN-ACK 300 ms later (its only
  timer); it writes "fake adapter ready" on stderr;
- `late`: as `virtual`, but the accept completes at 2 s.
"""

import json
import os
import socket
import struct
import sys

MODE = sys.argv[1]
LOG = sys.argv[2] if len(sys.argv) > 2 else os.devnull
ACCEPT_AT = 2_000_000 if MODE == "late" else 1_000_000
HELLO = {"event": "hello", "protocol": 2 if MODE == "version2" else 1, "name": "fake",
         "version": "0", "capabilities": {
             "time": "virtual", "ip_versions": ["ipv4"], "tcp_options": ["mss"],
             "ip_options": False, "calls": ["socket", "bind", "listen", "accept", "state"],
             "sockopts": [], "state": ["state"], "sysctls": []}}


def checksum(data):
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def syn_ack(syn):
    """The answer to an IPv4 SYN: ISN 0, window 1000, MSS 1460."""
    src, dst = syn[12:16], syn[16:20]
    sport, dport, seq = struct.unpack("!HHI", syn[20:28])
    tcp = bytearray(struct.pack("!HHIIBBHHH", dport, sport, 0, (seq + 1) & 0xFFFFFFFF, 6 << 4,
                                0x12, 1000, 0, 0) + struct.pack("!BBH", 2, 4, 1460))
    pseudo = dst + src + struct.pack("!BBH", 0, 6, len(tcp))
    struct.pack_into("!H", tcp, 16, checksum(pseudo + bytes(tcp)))
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, dst, src))
    struct.pack_into("!H", ip, 10, checksum(bytes(ip)))
    return bytes(ip + tcp)


def main():
    if MODE == "mute":
        return
    if MODE == "garbage":
        print("hello?", flush=True)
        return
    packets = socket.socket(fileno=int(os.environ["RFCDRILL_PACKET_FD"]))
    print(json.dumps(HELLO), flush=True)
    print("fake adapter ready", file=sys.stderr, flush=True)
    now, received, timers, accept_id = 0, 0, {}, None    # timers: due -> packet
    for line in sys.stdin:
        req = json.loads(line)
        with open(LOG, "a") as log:
            log.write(line)
        op, reply = req["op"], {"ret": 0}
        if op in ("init", "quit"):
            reply = {"ok": True}
        elif op == "socket":
            reply = {"ret": 3}
        elif op == "accept":
            accept_id, reply = req["id"], {"pending": True}
        elif op == "state":
            reply = {"state": {"state": "LISTEN"}}
        elif op in ("sync", "advance"):
            while received < req.get("packets", received):
                timers[now + 300_000] = syn_ack(packets.recv(65535))
                received += 1
            for due in sorted(t for t in timers if t <= req.get("to_us", now)):
                packets.send(timers.pop(due))
            now = req.get("to_us", now)
            if accept_id is not None and now >= ACCEPT_AT:
                print(json.dumps({"id": accept_id, "ret": 4, "addr": {"ip": "192.0.2.1", "port": 1}}),
                      flush=True)
                accept_id = None
            dues = list(timers) + ([ACCEPT_AT] if accept_id is not None else [])
            reply = {"now_us": now, "next_us": min(dues) if dues else None}
        print(json.dumps({"id": req["id"], **reply}), flush=True)
        if op == "quit":
            return


if __name__ == "__main__":
    main()
