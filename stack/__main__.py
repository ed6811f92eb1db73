"""`python -m stack serve`: the stack as an echo or discard server you can talk to by hand.

    sudo .venv/bin/python -m stack serve --echo          # RFC 862 echo on port 7
    sudo .venv/bin/python -m stack serve --discard       # RFC 863 discard on port 9

The process moves itself into a private network namespace (harness.netns), creates a TUN
device there (kernel side 192.0.2.1, the stack 192.168.0.1 behind it) and serves until
interrupted (or --seconds). It prints the command that reaches it: `nsenter --net=/proc/PID/ns/net`
joins that namespace, so `nc 192.168.0.1 7` and `ping 192.168.0.1` talk to the stack through
the kernel of that namespace. Nothing is configured in the host's namespace and nothing needs
removing: the namespace and its device go when the process exits.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time


def serve_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack serve",
                                     description="the stack as an echo or discard server on a TUN device")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--echo", action="store_true", help="echo server (default), port 7")
    mode.add_argument("--discard", action="store_true", help="discard server, port 9")
    parser.add_argument("--port", type=int, help="listen on this port instead")
    parser.add_argument("--mtu", type=int, default=1500)
    parser.add_argument("--seconds", type=float, help="stop after this long")
    args = parser.parse_args(argv)

    from harness import interop, netns
    netns.require_privileges("python -m stack serve")
    echo = not args.discard
    port = args.port or (7 if echo else 9)
    netns.enter_private_netns()
    host = interop.stack_host(args.mtu)
    ns = f"nsenter --net=/proc/{os.getpid()}/ns/net"
    print(f"stack {'echo' if echo else 'discard'} server on {interop.STACK_IP}:{port} "
          f"(TUN tun0, MTU {args.mtu}) in a private network namespace; from another shell:\n"
          f"  sudo {ns} nc {interop.STACK_IP} {port}\n"
          f"  sudo {ns} ping -c 3 {interop.STACK_IP}\n"
          f"  sudo {ns} bash        # a shell in that namespace\n"
          f"Ctrl-C stops it.", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    end = None if args.seconds is None else time.monotonic() + args.seconds
    seen = [0, 0]

    def report(stats) -> None:
        if [stats.accepted, stats.closed] != seen:
            seen[:] = [stats.accepted, stats.closed]
            print(f"connections: {stats.accepted} accepted, {stats.closed} closed, "
                  f"{stats.octets} octets received", flush=True)

    try:
        interop.serve(host, port, echo, stop=lambda s: end is not None and time.monotonic() >= end,
                      on_tick=report)
    except KeyboardInterrupt:
        pass
    return 0


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] != "serve":
        print("usage: python -m stack serve [--echo | --discard] [--port N] [--mtu N] [--seconds S]"
              "\n(the soak test is python -m stack.soak)", file=sys.stderr)
        return 2
    return serve_main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
