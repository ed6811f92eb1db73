"""Target names: what `--target NAME` runs, what it can do, and whose expectations apply.

Names are looked up in this order:
1. the targets built into the harness: `kernel`, and the stack in its profiles, `stack`,
   `stack-linux` and `stack-alt` (stack.config.PROFILES); a run that names no target runs
   every target of DEFAULT that is available here (`available()`);
2. the adapters the project ships (ADAPTERS): each is built by its build script, which prints
   the adapter's path on its last line of output;
3. `[targets.NAME]` tables in ./rfcdrill-targets.toml, then ~/.config/rfcdrill/targets.toml
   (`command`, and optionally `expectations`: the target whose expectation files apply);
4. the entry-point group `rfcdrill.targets` (an entry point names a command string or list,
   or a function returning one);
5. `exec:COMMAND`, any adapter command;
6. `kernel@VERSION` and `kernel@PATH`: another Linux kernel, booted in a VM (harness.kernels).
An adapter target is started once in the runner's process to read its hello (its
capabilities decide which cases apply). One that is missing, fails to build or sends a
wrong hello is *unavailable*, with the reason; it never ends the run with a traceback.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Callable

from harness.capabilities import EVERYTHING, Capabilities
from harness.errors import CaseError
from harness.kernels.spec import PREFIX, expectations_name, is_path, is_vm_target
from harness.kernels.tools import missing_tools
from harness.netns import present_sysctls
from harness.targets.adapter import AdapterError, Hello, probe
from harness.targets.base import Target
from harness.targets.kernel import KernelTarget
from harness.targets.stack import StackAltTarget, StackLinuxTarget, StackTarget

ROOT = Path(__file__).resolve().parents[2]
NATIVE: dict[str, type[Target]] = {"kernel": KernelTarget, "stack": StackTarget,
                                    "stack-linux": StackLinuxTarget, "stack-alt": StackAltTarget}
# What a run that names no target runs, where each is available: the kernel, the stack in
# its three profiles, and the third-party stacks whose adapters build here. kernel-exec is the
# kernel again (through the protocol) and kernel@VERSION boots a VM: both only when named.
DEFAULT = ("kernel", "stack", "stack-linux", "stack-alt", "lwip", "gvisor")
BUILD_LIMIT = 600.0      # seconds a build script may take (a cold Go build takes some 5 s)


@dataclass(frozen=True)
class Adapter:
    """An adapter the project ships: a fixed command, or a build script printing one."""

    command: tuple[str, ...] = ()
    build: str = ""               # relative to the repository
    expectations: str = ""        # the target whose expectations apply, if not its own


ADAPTERS = {
    "lwip": Adapter(build="harness/adapters/lwip/build.sh"),
    "gvisor": Adapter(build="harness/adapters/gvisor/build.sh"),
    "kernel-exec": Adapter(command=(sys.executable, "-m", "harness.adapters.kernel_adapter"),
                           expectations="kernel"),
}
CONFIG_FILES = (Path("rfcdrill-targets.toml"), Path.home() / ".config" / "rfcdrill" / "targets.toml")


@dataclass(frozen=True)
class TargetSpec:
    name: str
    make: Callable[[], Target]
    capabilities: Capabilities = EVERYTHING
    expectations: str = ""        # whose expectations files apply (default: its own name)
    unavailable: str = ""         # why it cannot run here ("" when it can)
    hello: Hello | None = None

    @property
    def expectations_name(self) -> str:
        return self.expectations or self.name


def available() -> list[str]:
    """The targets of DEFAULT that can run here (an adapter that does not build is left out;
    naming it with --target says why)."""
    return [name for name in DEFAULT if not resolve(name).unavailable]


def known_names() -> list[str]:
    return sorted({*NATIVE, *ADAPTERS, *_configured()})


@lru_cache(maxsize=None)
def resolve(name: str) -> TargetSpec:
    """The spec of a target name; an unknown name is a CaseError that lists the known ones."""
    if name in NATIVE:
        cls = NATIVE[name]
        caps = cls.capabilities
        if cls is KernelTarget:          # a sysctl this kernel lacks makes a case not-applicable
            caps = replace(caps, sysctls=present_sysctls())
        return TargetSpec(name, cls, caps)
    if is_vm_target(name):               # booted in a VM (harness.kernels.vm), not made here
        request = name.removeprefix(PREFIX)
        why = missing_tools()
        return TargetSpec(name, _unavailable(name, why or "it runs in a VM"), unavailable=why,
                          expectations="kernel" if is_path(request) else expectations_name(request))
    command, expectations = _command(name)
    if isinstance(command, str):          # the reason it cannot be had
        return TargetSpec(name, _unavailable(name, command), unavailable=command,
                          expectations=expectations)
    try:
        hello = probe(command)
    except AdapterError as exc:
        return TargetSpec(name, _unavailable(name, str(exc)), unavailable=str(exc),
                          expectations=expectations)
    from harness.targets.protocol import ProtocolTarget
    caps = hello.capabilities
    return TargetSpec(name, lambda: ProtocolTarget(name, command, caps), caps, expectations,
                      hello=hello)


def _command(name: str) -> tuple[list[str] | str, str]:
    """The adapter command of `name` and whose expectations apply; a str is why there is none."""
    if name.startswith("exec:"):
        argv = shlex.split(name.removeprefix("exec:"))
        return (argv, "") if argv else ("exec: needs a command, e.g. exec:./my-adapter", "")
    if name in ADAPTERS:
        shipped = ADAPTERS[name]
        return (list(shipped.command) if shipped.command else _build(shipped.build),
                shipped.expectations)
    configured = _configured()
    if name in configured:
        return configured[name]
    raise CaseError(None, f"unknown target {name!r}; known: {', '.join(known_names())}, "
                    "exec:COMMAND for any adapter (harness/targets/PROTOCOL.md), or "
                    "kernel@VERSION / kernel@PATH for another Linux kernel in a VM")


def _build(script: str) -> list[str] | str:
    """Run a shipped adapter's build script; its last line of output is the adapter's path."""
    path = ROOT / script
    if not path.is_file():
        return f"{script} does not exist (this adapter is not part of this checkout)"
    try:
        done = subprocess.run(["bash", str(path)], capture_output=True, text=True, cwd=ROOT,
                              timeout=BUILD_LIMIT)
    except subprocess.TimeoutExpired:
        return f"{script} took longer than {BUILD_LIMIT:.0f} s"
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        why = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return f"{script} failed (exit {done.returncode})" + (": " + " / ".join(why) if why else "")
    binary = lines[-1].strip()
    if not os.access(binary, os.X_OK):
        return f"{script} printed {binary!r}, which is not an executable file"
    return [binary]


@lru_cache(maxsize=None)
def _configured() -> dict[str, tuple[list[str] | str, str]]:
    """Adapters registered in the config files and the entry-point group (first one wins)."""
    found: dict[str, tuple[list[str] | str, str]] = {}
    for path in CONFIG_FILES:
        if not path.is_file():
            continue
        try:
            tables = tomllib.loads(path.read_text()).get("targets", {})
        except (tomllib.TOMLDecodeError, OSError) as exc:
            raise CaseError(None, f"{path}: {exc}") from None
        for name, table in tables.items():
            command = table.get("command") if isinstance(table, dict) else None
            if not isinstance(command, (str, list)) or not command:
                raise CaseError(None, f"{path}: [targets.{name}] needs command = \"...\"")
            found.setdefault(name, (shlex.split(command) if isinstance(command, str) else command,
                                    str(table.get("expectations", ""))))
    for point in entry_points(group="rfcdrill.targets"):
        if point.name in found:
            continue
        try:
            value = point.load()
            command = value() if callable(value) else value
        except Exception as exc:        # a broken plug-in makes its target unavailable
            found[point.name] = (f"entry point {point.value} cannot be loaded: {exc}", "")
            continue
        found[point.name] = (shlex.split(command) if isinstance(command, str) else list(command), "")
    return found


def _unavailable(name: str, reason: str) -> Callable[[], Target]:
    def make() -> Target:
        raise CaseError(None, f"the {name} target is unavailable: {reason}")
    return make
