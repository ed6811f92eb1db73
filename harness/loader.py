"""Loading case files into Scripts: YAML cases (`script:` or `steps:`) and `.pkt` files.

Every problem is a CaseError at `file:line:column`: YAML syntax, the JSON Schema
(harness/schema/case.schema.json), unknown requirement ids (the catalogue), the script
grammar, and times that go backwards. Loading one file never affects another: the caller
gets an error for that case and goes on.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable

import jsonschema
import yaml

from harness import limits
from harness.catalog import requirement_ids
from harness.errors import CaseError, Loc
from harness.grammar import Program, checked_either, parse_program, parse_script
from harness.model import (Branch, EitherEvent, Event, PacketEvent, Script, SyscallEvent,
                           TimeSpec, Tolerance, walk)
from harness.ip import VERSIONS
from harness.options import PKT_DEFAULTS, Plan, plan_from
from harness.source import load_yaml as read_yaml, read_text

CASE_SUFFIXES = (".yaml", ".yml", ".pkt")


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(resources.files("harness").joinpath("schema/case.schema.json").read_text())


def load(path: str | Path, defines: dict[str, str] | None = None,
         overrides: dict[str, str] | None = None, case_id: str | None = None) -> Script:
    """Load a case file; `defines` are `-D NAME=value` symbols for the script. For a `.pkt`,
    `overrides` are packetdrill options given on its command line (they win over the
    script's own) and `case_id` its id when the file names none."""
    path = str(path)
    text = read_text(path)
    if path.endswith(".pkt"):
        return load_pkt(text, path, defines, overrides, case_id)
    return load_yaml(text, path, defines)


# -- YAML cases -------------------------------------------------------------------------------
def _mark(node: yaml.Node, path: str) -> Loc:
    return Loc(path, node.start_mark.line + 1, node.start_mark.column + 1)


def _node_at(root: yaml.Node, keys: list[Any]) -> yaml.Node:
    node = root
    for key in keys:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == key), None)
            if match is None:
                return node
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            return node
    return node


def _schema_message(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "the case"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = ", ".join(map(repr, re.findall(r"'([^']+)' was unexpected", error.message)))
        return (f"unknown key {limits.brief(extra or error.message)} in {where} "
                f"(expected one of: {', '.join(allowed)})")
    if error.validator == "required":
        return f"{where}: {limits.brief(error.message)}"
    if error.validator == "oneOf" and not error.absolute_path:
        return "a case needs exactly one of 'script' (packetdrill lines) or 'steps' (a list)"
    return f"{where}: {limits.brief(error.message)}"


def _deepest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """Of the alternatives a `oneOf` tried (a step is a string, a timed step or an either),
    the error that got furthest into the item, which names what is wrong there."""
    while error.validator == "oneOf" and error.context and error.absolute_path:
        error = max(error.context, key=lambda e: len(e.absolute_path))
    return error


def load_yaml(text: str, path: str, defines: dict[str, str] | None = None) -> Script:
    root, data = read_yaml(text, path)
    if not isinstance(data, dict) or root is None:
        raise CaseError(Loc(path, 1), "a case file is a YAML mapping with id, requirements "
                        "and script (or steps)")
    errors = sorted(jsonschema.Draft202012Validator(schema()).iter_errors(data),
                    key=lambda e: (len(e.absolute_path), str(e.absolute_path)), reverse=True)
    if errors:
        error = _deepest(errors[0])
        raise CaseError(_mark(_node_at(root, list(error.absolute_path)), path),
                        _schema_message(error))
    known = requirement_ids()
    for index, req in enumerate(data["requirements"]):
        if req not in known:
            raise CaseError(_mark(_node_at(root, ["requirements", index]), path),
                            f"unknown requirement id {req!r} (not in the catalogue; "
                            "see harness/catalog/requirements.yaml)")
    if "script" in data:
        node = _node_at(root, ["script"])
        program = parse_program(data["script"], path, *_block_origin(node, text), defines)
    else:
        program = Program(_steps(data["steps"], _node_at(root, ["steps"]), path))
    check_timeline(program, _mark(_node_at(root, ["script" if "script" in data else "steps"]), path))
    _check_values(data, root, path)
    tolerance = data.get("tolerance", {})
    options = dict(data.get("options", {}))
    plan = plan_from(options, Plan(), lambda name: _mark(_node_at(root, ["options", name]), path))
    return Script(
        id=data["id"], path=path, events=program.events, title=data.get("title", ""),
        init_command=program.init, cleanup_command=program.cleanup,
        requirements=list(data["requirements"]), sysctl=dict(data.get("sysctl", {})),
        tolerance=Tolerance(tolerance.get("usecs", 4000.0), tolerance.get("percent", 12.5)),
        targets=data.get("targets"), description=data.get("description", ""),
        options=options, plan=plan, timeout=data.get("timeout"), defines=dict(defines or {}))


def _check_values(data: dict[str, Any], root: yaml.Node, path: str) -> None:
    """What the schema cannot say: sysctl names, and numbers that are finite and bounded."""
    for name in data.get("sysctl", {}):
        problem = limits.sysctl_name_error(name)
        if problem:
            key = next((k for k, _ in _node_at(root, ["sysctl"]).value if k.value == name), root)
            raise CaseError(_mark(key, path), problem)
    if "tolerance" in data:
        tolerance = data["tolerance"]
        problem = limits.tolerance_error(tolerance.get("usecs", 4000.0),
                                         tolerance.get("percent", 12.5))
        if problem:
            raise CaseError(_mark(_node_at(root, ["tolerance"]), path), problem)
    if "timeout" in data:
        problem = limits.time_error(data["timeout"], "timeout")
        if problem:
            raise CaseError(_mark(_node_at(root, ["timeout"]), path), problem)


def _block_origin(node: yaml.Node, text: str) -> tuple[int, int]:
    """Where a `script:` value's first character is in the file (line, column)."""
    if node.style in ("|", ">"):
        line = node.start_mark.line + 1          # the text starts on the line after '|'
        lines = text.splitlines()
        body = lines[line] if line < len(lines) else ""
        return line + 1, len(body) - len(body.lstrip()) + 1
    return node.start_mark.line + 1, node.start_mark.column + 1


# -- structured steps ---------------------------------------------------------------------------
def _steps(items: list[Any], node: yaml.Node, path: str) -> list[Event]:
    events: list[Event] = []
    for item, item_node in zip(items, node.value):
        loc = _mark(item_node, path)
        if isinstance(item, str):
            events.extend(parse_script(item, path, loc.line, loc.col))
            continue
        if "either" in item:
            events.append(_either(item["either"], _node_at(item_node, ["either"]), path))
            continue
        line = step_line(item, loc)
        try:
            events.extend(parse_script(line, path, loc.line, loc.col))
        except CaseError as exc:
            raise CaseError(loc, f"{exc.message} (in the step written as: {line})") from None
    return events


BRANCH_KEYS = {"allowed_by": "", "follows": "follows", "choice": "choice"}


def _either(branches: list[dict[str, Any]], node: yaml.Node, path: str) -> EitherEvent:
    """`either: [{allowed_by: RFC text, steps: [...]}, {follows: ..., steps: [...]}]`."""
    event = EitherEvent(TimeSpec("rel"), _mark(node, path), "")
    for branch, branch_node in zip(branches, node.value):
        key = next(k for k in branch if k != "steps")
        event.branches.append(Branch(branch[key], BRANCH_KEYS[key],
                                     _steps(branch["steps"], _node_at(branch_node, ["steps"]), path),
                                     _mark(branch_node, path)))
    return checked_either(event)


def step_line(step: dict[str, Any], loc: Loc) -> str:
    """The script line a structured step stands for (one grammar, one parser)."""
    at = str(step["at"])
    kind = next(k for k in step if k != "at")
    body = step[kind]
    if kind in ("inject", "expect", "maybe"):
        arrow = {"inject": "<", "expect": ">", "maybe": ">?"}[kind]
        return f"{at} {arrow} {segment_text(body, loc)}"
    if kind == "flight":
        return f"{at} > flight {body['start']}:{body['end']}" + "".join(
            f" {key} {body[key]}" for key in ("segments", "mss", "ack", "win") if key in body)
    if kind == "call":
        return f"{at} {body}"
    if kind == "python":
        return f"{at} %{{ {body} }}%"
    if kind == "shell":
        return f"{at} `{body}`"
    fd = body["fd"]
    checks = [f"{k} {v}" if k == "state" else f"{k} == {v}" for k, v in body.items() if k != "fd"]
    if not checks:
        raise CaseError(loc, "an assert step needs 'state' or a tcpi_* field besides 'fd'")
    if "state" in body and len(checks) > 1:
        raise CaseError(loc, "an assert step checks either 'state' or tcpi_* fields")
    return f"{at} assert {fd} " + ", ".join(checks)


def segment_text(seg: dict[str, Any], loc: Loc | None = None) -> str:
    ip = [f"tos {seg['tos']:#04x}" if isinstance(seg.get("tos"), int) else f"tos {seg['tos']}"] \
        if "tos" in seg else []
    ip += [f"ttl {seg['ttl']}"] if "ttl" in seg else []
    ip += [seg["ecn"]] if "ecn" in seg else []
    start = seg.get("seq", 0)
    if any(isinstance(seg.get(k), str) for k in ("seq", "end", "len")):
        if not all(k in seg for k in ("seq", "end", "len")):
            raise CaseError(loc, "a segment with a range or set in seq, end or len writes all "
                            "three (e.g. seq: '1000|1001', end: '1000|1002', len: '0..1')")
        length, end = seg["len"], seg["end"]
    else:
        length = seg.get("len", seg.get("end", start) - start)
        end = seg.get("end", start + length)
    text = (f"[{', '.join(ip)}] " if ip else "") + f"{seg['flags']} {start}:{end}({length})"
    for key in ("ack", "win", "urg"):
        if key in seg:
            text += f" {key} {seg[key]}"
    options = seg.get("options")
    if isinstance(options, str):
        text += " " + options
    elif options:
        text += " <" + ",".join(" ".join(str(v) for v in opt) for opt in options) + ">"
    return text


# -- packetdrill files --------------------------------------------------------------------------
HEADER = re.compile(r"^//\s*(id|title|requirements):\s*(.*)$")
# Possessive quantifiers: a value may contain "--", and backtracking over where each value
# ends would take time exponential in the number of options on the line.
_PKT_OPTION_LINE = re.compile(r"^(?:--[a-z_]+(?:=\S*+)?\s*+)++$")
_PKT_OPTION = re.compile(r"--([a-z_]+)(?:=(\S*))?")


def pkt_header(text: str) -> dict[str, str]:
    """rfcdrill's metadata in a `.pkt` file: `// id:`, `// title:` and `// requirements:`
    comment lines before the first line that is not a comment or an option."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("--") or not stripped:
            continue
        if not stripped.startswith("//"):
            break
        m = HEADER.match(stripped)
        if m:
            found[m.group(1)] = m.group(2).strip()
    return found


def _pkt_requirements(text: str, path: str, listed: str) -> list[str]:
    ids = [r.strip() for r in listed.split(",") if r.strip()]
    known = requirement_ids()
    for req in ids:
        if req not in known:
            line = next(n for n, l in enumerate(text.splitlines(), 1) if "requirements:" in l)
            raise CaseError(Loc(path, line), f"unknown requirement id {req!r} (not in the "
                            "catalogue; see harness/catalog/requirements.yaml)")
    return ids


def load_pkt(text: str, path: str, defines: dict[str, str] | None = None,
             overrides: dict[str, str] | None = None, case_id: str | None = None) -> Script:
    """A `.pkt` file: `--option=value` lines at the top, then the script. `overrides`:
    options from packetdrill's command line, which win over the script's (as in its
    config.c); `case_id`: the id when no `// id:` line gives one (default: the file's stem)."""
    options: dict[str, str] = {}
    lines: dict[str, int] = {}
    rows = text.split("\n")
    body_start = len(rows)
    for index, line in enumerate(rows):
        stripped = line.split("//", 1)[0].strip()   # an option line may end in a comment
        if not stripped or stripped.startswith("#"):
            continue
        if not _PKT_OPTION_LINE.match(stripped):
            body_start = index
            break
        for m in _PKT_OPTION.finditer(stripped):
            options[m.group(1)] = m.group(2) or ""
            lines[m.group(1)] = index + 1
    for name, value in (overrides or {}).items():
        options[name] = value
        lines.pop(name, None)          # an error in it is the command line's, not a line's
    def where(name: str) -> Loc | None:
        """The line that set option `name`; none when the command line gave it."""
        return Loc(path, lines[name]) if name in lines else None

    plan = plan_from(options, PKT_DEFAULTS, where)
    program = parse_program("\n".join(rows[body_start:]), path, body_start + 1, 1, defines)
    check_timeline(program, Loc(path, body_start + 1 if body_start < len(rows) else 1))
    if "ip_version" not in options:
        versions = runner_versions(path, program.events)
        plan = replace(plan, ip_versions=versions).variant(versions[0])
    tolerance = Tolerance(_pkt_number(options, "tolerance_usecs", 4000.0, where),
                          _pkt_number(options, "tolerance_percent", 12.5, where))
    problem = limits.tolerance_error(tolerance.usecs, tolerance.percent)
    if problem:
        bad = "tolerance_usecs" if "usecs" in problem else "tolerance_percent"
        raise CaseError(where(bad), f"--{bad}: {problem}")
    header = pkt_header(text)
    return Script(id=header.get("id", case_id or Path(path).stem), path=path, events=program.events,
                  title=header.get("title", Path(path).name),
                  requirements=_pkt_requirements(text, path, header.get("requirements", "")),
                  tolerance=tolerance, options=options, plan=plan, init_command=program.init,
                  cleanup_command=program.cleanup, defines=dict(defines or {}))


def _pkt_number(options: dict[str, str], name: str, default: float,
                where: Callable[[str], Loc | None]) -> float:
    if name not in options:
        return default
    try:
        return float(options[name])
    except ValueError:
        raise CaseError(where(name), f"--{name} needs a number, not "
                        f"{limits.brief(options[name], 40)!r}") from None


def runner_versions(path: str, events: list[Event] = ()) -> tuple[str, ...]:
    """The IP versions packetdrill's run_all.py runs a script in, by its name: `*v4.pkt` in
    IPv4 and IPv4-mapped IPv6, `*v6.pkt` in IPv6, any other in all three. A script that uses
    rfcdrill's IPv4-only fields (`id`, `ipopt`, `bad_ip_csum`, IPv4 `src`/`dst`) runs only
    where IPv4 is on the wire, one with IPv6 addresses only in IPv6: packetdrill cannot
    parse these lines, so no runner of its could have meant them for another version."""
    if path.endswith("v4.pkt"):
        versions: tuple[str, ...] = ("ipv4", "ipv4-mapped-ipv6")
    elif path.endswith("v6.pkt"):
        versions = ("ipv6",)
    else:
        versions = VERSIONS
    wire = wire_version_of(events)
    if wire is not None:
        kept = tuple(v for v in versions if (v == "ipv6") == (wire == 6))
        return kept or versions
    return versions


def wire_version_of(events: Iterable[Event]) -> int | None:
    """4 or 6 when the segment lines use fields that exist in that IP version only."""
    wire = {_wire_version(e.ip) for e in walk(list(events)) if isinstance(e, PacketEvent)} - {None}
    return wire.pop() if len(wire) == 1 else None


def _wire_version(ip: dict[str, object]) -> int | None:
    """4 or 6 when a segment line's IP fields exist in one IP version only."""
    if any(name in ip for name in ("id", "ipopt", "bad_ip_csum")):
        return 4
    addresses = [str(ip[name]) for name in ("src", "dst") if name in ip]
    if addresses:
        return 6 if ":" in addresses[0] else 4
    return 6 if "flowlabel" in ip else None


# -- checks on the whole timeline -------------------------------------------------------------------
def check_timeline(program: Program, where: Loc) -> None:
    """A timeline checks something (it has an event) and moves forward within limits."""
    if not program.events:
        raise CaseError(where, "the timeline has no events: a case must check something")
    check_times(program.events)


def check_times(events: list[Event], now: float = 0.0) -> float:
    """An absolute time earlier than the event before it is an error (time goes forward), and
    the timeline ends within limits.MAX_TIME. Each branch of an `either` is checked from where
    the block starts; after the block, time goes on from the branch that ends first. Returns
    when the events end."""
    for event in events:
        if isinstance(event, EitherEvent):
            now = min(check_times(b.events, now) for b in event.branches)
            continue
        t = event.time
        if t.kind == "abs":
            if t.start < now - 1e-9:
                raise CaseError(event.loc, f"time goes backwards: {t.start:g} is before the "
                                f"previous event at {now:g}")
            now = t.start
        elif t.kind == "rel":
            now += t.start
        elif t.kind == "range" and not t.end_relative:
            if t.start < now - 1e-9:
                raise CaseError(event.loc, f"time goes backwards: {t.start:g} is before the "
                                f"previous event at {now:g}")
            now = t.start
        if isinstance(event, SyscallEvent) and event.end_time is not None \
                and event.end_time.kind == "abs" and t.kind == "abs" and event.end_time.start < t.start:
            raise CaseError(event.loc, f"a blocking call cannot return ({event.end_time.start:g}) "
                            f"before it starts ({t.start:g})")
        reach = now + max(t.end or 0.0, 0.0) * (t.kind == "range" and t.end_relative)
        end = event.end_time if isinstance(event, SyscallEvent) else None
        if end is not None:
            reach = max(reach, end.start if end.kind == "abs" else now + end.start)
        problem = limits.time_error(reach, "the timeline")
        if problem:
            raise CaseError(event.loc, f"{problem} (here)")
    return now
