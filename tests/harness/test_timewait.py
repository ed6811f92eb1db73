"""harness/timewait.py: a socket whose connection Linux moved to TIME-WAIT is seen in
TIME-WAIT, and another connection on the same local port is not taken for it. Real kernel
sockets on the loopback of a private network namespace."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.conftest import needs_root

SCENARIO = textwrap.dedent("""
    import json, socket, struct, time
    from harness import netns, timewait
    from harness.constants import TCP_STATES
    from harness.targets.sockets import linux_tcp_info
    netns.enter_private_netns()
    netns.loopback_up()
    listener = socket.create_server(("127.0.0.1", 8080))
    peers = timewait.Peers()
    a, b = socket.create_connection(("127.0.0.1", 8080)), socket.create_connection(("127.0.0.1", 8080))
    a1, _ = listener.accept()
    b1, _ = listener.accept()
    peers.note(a1); peers.note(b1)
    a1.shutdown(socket.SHUT_WR)          # our FIN first, then theirs: a1's connection in TIME-WAIT
    a.recv(1); a.close()
    b.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    b.close()                             # a reset: b1's connection simply CLOSED
    time.sleep(0.2)
    name = {v: k for k, v in TCP_STATES.items()}
    def state(sock, peer):
        return name[timewait.with_time_wait(linux_tcp_info(sock), sock, peer)["tcpi_state"]]
    print(json.dumps({"a": state(a1, peers.get(a1)), "b": state(b1, peers.get(b1)),
                      "b_unknown_peer": state(b1, None), "raw_a": name[linux_tcp_info(a1)["tcpi_state"]]}))
""")


@needs_root
def test_time_wait_is_read_for_this_connection_only() -> None:
    done = subprocess.run([sys.executable, "-c", SCENARIO], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    states = json.loads(done.stdout)
    assert states["raw_a"] == "CLOSE"              # what TCP_INFO alone says
    assert states["a"] == "TIME_WAIT"
    assert states["b"] == "CLOSE"                  # same local port, its own peer: not TIME-WAIT
    assert states["b_unknown_peer"] == "TIME_WAIT"   # local end alone cannot tell them apart
