"""`rfcdrill convert`: a `.pkt` script to a YAML case and back, keeping the meaning.

What moves where:
- metadata: YAML `id`, `title`, `requirements` <-> `// id:`, `// title:`, `// requirements:`
  comment lines at the top of the `.pkt` (the loader reads them there too);
- YAML `tolerance` <-> `--tolerance_usecs` / `--tolerance_percent`; YAML `options` <-> the
  other `--option` lines. The two formats have different device defaults (a `.pkt` runs on
  packetdrill's offloading device with segment merging, a YAML case sees every segment), so
  the converted file states them explicitly;
- YAML `sysctl` <-> an init command `sysctl -q -w name=value ...` (merged with the script's
  own init command, if it has one);
- the timeline: the script text is carried over as it is, comments included; YAML `steps`
  are written as the script lines they stand for.

What the RFCs leave open (`>?`, `either`, flights, sets and ranges, `x2` times, errno sets,
time windows on calls and asserts) has no packetdrill syntax: a case that uses it stays a
YAML case, and asking for a `.pkt` is an error naming the first such line. With `--loose`,
an expected segment whose only such part is its options (`<{mss? <=1460}>`, `<mss <=1460>`)
is written with packetdrill's `<...>` (options not checked) and a warning names each line:
the `.pkt` then checks less than the case, never more.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from harness import limits
from harness.errors import CaseError, Loc
from harness.grammar import parse_program
from harness.loader import HEADER, load, pkt_header, step_line
from harness.model import (ACKED, AssertEvent, EitherEvent, Event, FlightEvent, PacketEvent, SyscallEvent,
                           walk)
from harness.values import ValueSet
from harness.netns import sysctl_text
from harness.options import Plan, option_value_text
from harness.peer import option_text

_SYSCTL_INIT = re.compile(r"^sysctl -q -w((?: [a-z0-9_.]+=\S+)+)(?:; (.*))?$", re.S)


def _body(text: str) -> str:
    """The script of a `.pkt` file without its header and option lines (comments stay)."""
    lines = text.split("\n")
    leading = True
    kept = []
    for line in lines:
        stripped = line.strip()
        if leading and stripped and not stripped.startswith(("//", "--")):
            leading = False
        if leading and (stripped.startswith("--") or HEADER.match(stripped)):
            continue
        kept.append(line)
    return "\n".join(kept).strip("\n") + "\n"


def pkt_to_yaml(path: str, requirements: list[str] | None = None,
                defines: dict[str, str] | None = None) -> str:
    text = Path(path).read_text()
    script = load(path, defines)
    header = pkt_header(text)
    reqs = requirements or script.requirements
    if not reqs:
        raise CaseError(Loc(path, 1), "a YAML case needs requirement ids: add a "
                        "'// requirements: ID, ...' line to the script or pass --requirement ID")
    body = _body(text)
    sysctl: dict[str, str] = {}
    program = parse_program(body, path, defines=defines)
    if program.init is not None:
        m = _SYSCTL_INIT.match(program.init.command)
        if m:
            sysctl = dict(pair.split("=", 1) for pair in m.group(1).split())
            rest = f"`{m.group(2)}`" if m.group(2) else ""
            body = body.replace(f"`{program.init.command}`", rest, 1).lstrip("\n")
    case: dict[str, Any] = {"id": header.get("id", re.sub(r"[^a-z0-9._-]", "-", script.id.lower())),
                            "title": header.get("title", script.title), "requirements": reqs}
    if sysctl:
        case["sysctl"] = {k: _yaml_scalar(v, flags=False) for k, v in sysctl.items()}
    if "tolerance_usecs" in script.options or "tolerance_percent" in script.options:
        case["tolerance"] = {"usecs": script.tolerance.usecs, "percent": script.tolerance.percent}
    options: dict[str, object] = {k: _yaml_scalar(v) for k, v in script.options.items()
                                  if not k.startswith("tolerance_")}
    options["offload"] = script.plan.offload                  # the .pkt device defaults,
    options["strict_segments"] = script.plan.strict_segments  # stated for the YAML case
    options["fail_on_unexpected"] = script.plan.fail_on_unexpected
    options["remote_relative"] = script.plan.remote_relative
    options["ip_version"] = list(script.plan.ip_versions)       # and the runners' versions
    case["options"] = options
    head = yaml.safe_dump(case, sort_keys=False, width=100)
    return head + "script: |\n" + "".join(f"  {line}\n" if line else "\n"
                                          for line in body.rstrip("\n").split("\n"))


def _yaml_scalar(value: str, flags: bool = True) -> object:
    """An option's (or sysctl's) text as YAML writes it: a flag, a number, or the text."""
    if flags and value in ("true", "false", ""):
        return value != "false"
    if value.isdigit() and len(value) <= limits.MAX_NUMBER_CHARS:
        return int(value)
    return value


def rfcdrill_only(event: Event) -> str | None:
    """What in an event packetdrill has no syntax for, or None."""
    if isinstance(event, EitherEvent):
        return "'either' (alternative branches)"
    if isinstance(event, FlightEvent):
        return "'flight' (new data in any split)"
    if event.time.kind == "ratio":
        return f"the time '{event.time}' (a multiple of the previous interval)"
    if isinstance(event, AssertEvent) and event.time.kind == "range":
        return "a time window on an assert"
    if isinstance(event, PacketEvent):
        if event.flag_alternatives:
            return "flag alternatives ('R|R.')"
        if event.seq is ACKED:
            return "'acked' (the seq where the target's last ACK points)"
        if event.optional:
            return "'>?' (a segment the target may or may not send)"
        if event.any_layout:
            return "'<{...}>' (options in any layout)"
        fields = (event.seq, event.end, event.length, event.ack, event.win, event.urg,
                  event.ip.get("ttl"))
        if any(isinstance(v, ValueSet) for v in fields):
            return "a range or set of values on a segment field"
        ranged = [o for o in event.options or [] if any(isinstance(v, ValueSet) for v in o[1:])]
        if ranged:
            return f"the option value range '{option_text(ranged[0])}'"
    if isinstance(event, SyscallEvent):
        if event.errno and "|" in event.errno:
            return f"the errno set {event.errno}"
        if event.ret.kind == "set":
            return f"the return value range {event.ret}"
        if event.name == "getsockopt" and len(event.args) > 3 and event.args[3].kind == "array" \
                and any(a.kind == "set" for a in event.args[3].value):
            return f"the option value range {event.args[3]}"
        if event.end_time is not None and event.end_time.kind == "range":
            return "a time window on a blocking call's return"
    return None


def _only_options(event: Event) -> bool:
    """Whether the options are all an expected segment has that packetdrill cannot say."""
    return isinstance(event, PacketEvent) and rfcdrill_only(replace(
        event, options=None, any_layout=False, may_lack=frozenset())) is None


def _unchecked_options(line: str) -> str:
    """A script line with its TCP option list (which ends the segment) written `<...>`."""
    code = re.split(r"\s(?:#|//)", line, maxsplit=1)[0]
    start = re.search(r"\s<(?=[{A-Za-z])", code)
    end = code.rfind(">")
    if start is None or end < start.end():
        return line
    return line[:start.start() + 1] + "<...>" + line[end + 1:]


def yaml_to_pkt(path: str, defines: dict[str, str] | None = None,
                loose: list[str] | None = None) -> str:
    """The case at `path` as a .pkt. `loose`, a list, allows `<...>` for option lists
    packetdrill cannot say and receives a warning (file:line:column) for each."""
    script = load(path, defines)
    loosened: set[int] = set()
    for event in walk(script.events):
        what = rfcdrill_only(event)
        if what is not None and loose is not None and _only_options(event):
            loosened.add(event.loc.line)
            loose.append(f"{event.loc}: {what} written as <...> (options not checked): "
                         "the .pkt checks less than the case")
        elif what is not None:
            raise CaseError(event.loc, f"{what} has no packetdrill syntax: this case stays an "
                            "rfcdrill YAML case and cannot be written as a .pkt"
                            + ("" if loose is not None or not _only_options(event) else
                               " (--loose writes its options as <...>, unchecked)"))
    text = Path(path).read_text()
    if loosened:
        text = "".join(_unchecked_options(line) if number in loosened else line
                       for number, line in enumerate(text.splitlines(keepends=True), 1))
    data = yaml.safe_load(text)
    lines = [f"// id: {script.id}"]
    if script.title:
        lines.append(f"// title: {script.title}")
    lines.append("// requirements: " + ", ".join(script.requirements))
    options = dict(data.get("options", {}))
    options.setdefault("offload", Plan().offload)
    options.setdefault("strict_segments", Plan().strict_segments)
    options.setdefault("fail_on_unexpected", Plan().fail_on_unexpected)
    options.setdefault("remote_relative", Plan().remote_relative)
    options.setdefault("ip_version", list(Plan().ip_versions))
    if "tolerance" in data:
        options["tolerance_usecs"] = script.tolerance.usecs
        options["tolerance_percent"] = script.tolerance.percent
    for name, value in options.items():
        lines.append(f"--{name}={option_value_text(value)}")
    if "script" in data:
        body = data["script"]
    else:
        body = "".join(_step_text(step, script.path) + "\n" for step in data["steps"])
    if script.sysctl:
        command = "sysctl -q -w " + " ".join(f"{k}={shlex.quote(sysctl_text(v))}"
                                             for k, v in script.sysctl.items())
        if script.init_command is not None:
            body = body.replace(f"`{script.init_command.command}`",
                                f"`{command}; {script.init_command.command}`", 1)
        else:
            body = f"`{command}`\n" + body
    return "\n".join(lines) + "\n" + body


def _step_text(step: object, path: str) -> str:
    return step if isinstance(step, str) else step_line(step, Loc(path, 1))


def convert(source: str, out: str, requirements: list[str] | None = None,
            defines: dict[str, str] | None = None, loose: list[str] | None = None) -> None:
    """Write `source` (.pkt or .yaml) in the other format; `defines` as for running it;
    `loose` as for yaml_to_pkt."""
    if source.endswith(".pkt"):
        text = pkt_to_yaml(source, requirements, defines)
    elif source.endswith((".yaml", ".yml")):
        text = yaml_to_pkt(source, defines, loose)
    else:
        raise CaseError(Loc(source, 1), "convert takes a .pkt or a .yaml case")
    Path(out).write_text(text)
