"""The harness's own struct tcp_info table against the stack's packing and the running kernel."""

from __future__ import annotations

import socket
import struct

from harness.tcpinfo import TCP_INFO_LEN, decode_tcp_info
from stack.tcpinfo import FIELDS


def test_decodes_what_the_stack_packs_member_by_member():
    # Every member gets a value of its own, so a member out of place in either table
    # (a shifted offset, a wrong width) decodes to another member's value.
    codes = [f.split()[0] for f in FIELDS]
    values = [(i * 37 + 11) % (256 if code == "B" else 65536) for i, code in enumerate(codes)]
    packed = struct.pack("=" + "".join(codes), *values)
    info = decode_tcp_info(packed)
    # The stack packs Linux 6.7's struct; the harness's goes on with 6.18's Accurate ECN
    # members (eight 32-bit words), which a shorter struct leaves zero.
    assert len(packed) == TCP_INFO_LEN - 8 * 4
    assert info["tcpi_received_ce"] == info["tcpi_received_ce_bytes"] == info["tcpi_ecn_mode"] == 0
    for (code, name), value in zip((f.split() for f in FIELDS), values):
        if name == "wscales":
            assert (info["tcpi_snd_wscale"], info["tcpi_rcv_wscale"]) == (value & 0xF, value >> 4)
        elif name != "app_limited":
            assert info["tcpi_" + name] == value, name


def test_a_short_struct_leaves_the_missing_members_zero():
    info = decode_tcp_info(bytes([1, 0, 0, 0, 0, 0, 0x7E]))
    assert info["tcpi_state"] == 1
    assert (info["tcpi_snd_wscale"], info["tcpi_rcv_wscale"]) == (14, 7)
    assert info["tcpi_rto"] == info["tcpi_total_rto_time"] == 0


def test_reads_a_loopback_connection_of_the_running_kernel():
    with socket.create_server(("127.0.0.1", 0)) as server, \
            socket.create_connection(server.getsockname()) as client:
        peer, _ = server.accept()
        with peer:
            client.sendall(b"x" * 1000)
            assert peer.recv(2000)
            info = decode_tcp_info(client.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO,
                                                     TCP_INFO_LEN))
    assert info["tcpi_state"] == 1                    # TCP_ESTABLISHED
    assert 0 < info["tcpi_snd_mss"] <= 65495          # loopback's MTU less the headers
    assert info["tcpi_bytes_sent"] == 1000 and info["tcpi_bytes_received"] == 0
    assert info["tcpi_data_segs_out"] >= 1


def test_the_accecn_bit_fields_of_the_last_word_decode_apart():
    # tcpi_ecn_mode:2, tcpi_accecn_opt_seen:2, tcpi_accecn_fail_mode:4, tcpi_options2:24
    word = 2 | 3 << 2 | 9 << 4 | 0xABCDEF << 8
    info = decode_tcp_info(bytes(TCP_INFO_LEN - 4) + struct.pack("=I", word))
    assert (info["tcpi_ecn_mode"], info["tcpi_accecn_opt_seen"], info["tcpi_accecn_fail_mode"],
            info["tcpi_options2"]) == (2, 3, 9, 0xABCDEF)
