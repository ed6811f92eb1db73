"""packetdrill's command line: `--name=value` options, `-D NAME=value`, `-v`, then scripts.

The corpora's runners (google/packetdrill's run_all.py, the kernel's ksft_runner.sh) start
packetdrill with its own command line; rfcdrill reads the same line (the drop-in
`rfcdrill-packetdrill`, and `rfcdrill agree` to run each script as a runner would).
packetdrill reads it with getopt_long: long options take their value after `=` or as the
next word, options and script paths may come in any order, and an option given on the
command line wins over the same option in the script.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# packetdrill's long options and whether each takes a value (its config.c).
LONG_OPTIONS: dict[str, bool] = {
    "ip_version": True, "bind_port": True, "code_command": True, "code_format": True,
    "code_sockopt": True, "connect_port": True, "remote_ip": True, "local_ip": True,
    "gateway_ip": True, "netmask_ip": True, "speed": True, "mss": True, "mtu": True,
    "init_scripts": True, "tolerance_usecs": True, "tolerance_percent": True,
    "wire_client": False, "wire_server": False, "wire_server_ip": True, "wire_server_at": True,
    "wire_server_port": True, "wire_client_dev": True, "wire_server_dev": True,
    "so_filename": True, "so_flags": True, "tcp_ts_ecr_scaled": False,
    "tcp_ts_tick_usecs": True, "strict_segments": False, "non_fatal": True, "dry_run": False,
    "is_anyip": False, "send_omit_free": False, "psp_udp_port": True, "debug": False,
    "define": True, "verbose": False,
}
# Options of packetdrill's remote mode (a wire client and server on two machines): a run
# here plays both ends in one namespace, so these cannot be honoured.
REMOTE_MODE = frozenset({"wire_client", "wire_server", "wire_server_ip", "wire_server_at",
                         "wire_server_port", "wire_client_dev", "wire_server_dev"})


class UsageError(Exception):
    """A command line packetdrill would refuse (it prints its usage and exits 1)."""


@dataclass
class Invocation:
    options: dict[str, str] = field(default_factory=dict)   # long options, values as text
    defines: dict[str, str] = field(default_factory=dict)   # -D NAME=value
    verbose: bool = False
    scripts: list[str] = field(default_factory=list)

    def argv(self) -> list[str]:
        """This invocation as a command line (options, defines, then the scripts)."""
        words = [f"--{k}={v}" if LONG_OPTIONS[k] else f"--{k}" for k, v in self.options.items()]
        words += [f"-D{k}={v}" for k, v in self.defines.items()]
        return words + (["-v"] if self.verbose else []) + self.scripts


def _define(text: str, into: dict[str, str]) -> None:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise UsageError(f"bad definition: {text}")
    into[name] = value


def parse(argv: list[str]) -> Invocation:
    """Read a packetdrill command line (without the program name)."""
    inv = Invocation()
    words = list(argv)
    while words:
        word = words.pop(0)
        if word == "--":
            inv.scripts.extend(words)
            break
        if word.startswith("--"):
            name, sep, value = word[2:].partition("=")
            if name not in LONG_OPTIONS:
                raise UsageError(f"unrecognized option '--{name}'")
            if LONG_OPTIONS[name] and not sep:
                if not words:
                    raise UsageError(f"option '--{name}' requires an argument")
                value = words.pop(0)
            elif sep and not LONG_OPTIONS[name]:
                raise UsageError(f"option '--{name}' doesn't allow an argument")
            if name == "define":
                _define(value, inv.defines)
            elif name == "verbose":
                inv.verbose = True
            else:
                inv.options[name] = value
        elif word.startswith("-") and len(word) > 1:
            _short(word[1:], words, inv)
        else:
            inv.scripts.append(word)
    return inv


def _short(letters: str, words: list[str], inv: Invocation) -> None:
    """A cluster of short options: `-v`, `-vv`, `-D NAME=value`, `-DNAME=value`."""
    for index, letter in enumerate(letters):
        if letter == "v":
            inv.verbose = True
        elif letter == "D":
            rest = letters[index + 1:]
            if not rest:
                if not words:
                    raise UsageError("option requires an argument -- 'D'")
                rest = words.pop(0)
            _define(rest, inv.defines)
            return
        else:
            raise UsageError(f"invalid option -- '{letter}'")
