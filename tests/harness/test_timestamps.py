"""Kernel packet timestamps: the kernel target waits until they are on, and the bench
names a packet that the kernel stamped only when it was read."""

from __future__ import annotations

import os
import struct
import time

from harness.bench import _paired
from tests.conftest import needs_root


def test_a_stamp_at_or_after_the_read_marks_an_unstamped_packet():
    kernel = [(0.0101, 0.5), (2.0054, 2.0050)]    # (kernel stamp, time just before the read)
    ours = [0.0100, 0.0150]
    first, second = _paired(kernel, ours, subtract=True)
    assert not first["unstamped"] and abs(first["ms"] - 0.1) < 1e-6
    assert second["unstamped"] and second["index"] == 1 and second["ms"] > 1990


@needs_root
def test_after_setup_packets_are_stamped_when_they_arrive():
    """Run in a child, in a namespace of its own."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            from harness.grammar import parse_script
            from harness.model import Script
            from harness.targets.kernel import PACKET_OUTGOING, STAMP_PROBE, KernelTarget
            from harness.netns import enter_private_netns
            enter_private_netns()          # as execute.py does before any target's setup
            target = KernelTarget()
            target.setup(Script(id="t", path="<t>", events=parse_script(
                "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n", "<t>")))
            os.write(target.tun, STAMP_PROBE)
            returned = time.time()
            time.sleep(0.01)
            while True:
                _, ancillary, _, address = target.sniffer.recvmsg(2048, 64)
                if address[2] != PACKET_OUTGOING:
                    break
            seconds, nanos = struct.unpack("qq", ancillary[0][2][:16])
            code = 0 if seconds + nanos / 1e9 <= returned else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the packet was stamped after it arrived"
