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
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from harness.errors import CaseError, Loc
from harness.grammar import parse_program
from harness.loader import HEADER, load, pkt_header, step_line
from harness.netns import sysctl_text
from harness.options import Plan, option_value_text

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
        case["sysctl"] = {k: int(v) if v.isdigit() else v for k, v in sysctl.items()}
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


def _yaml_scalar(value: str) -> object:
    if value in ("true", "false", ""):
        return value != "false"
    return int(value) if value.isdigit() else value


def yaml_to_pkt(path: str, defines: dict[str, str] | None = None) -> str:
    script = load(path, defines)
    data = yaml.safe_load(Path(path).read_text())
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
            defines: dict[str, str] | None = None) -> None:
    """Write `source` (.pkt or .yaml) in the other format; `defines` as for running it."""
    if source.endswith(".pkt"):
        text = pkt_to_yaml(source, requirements, defines)
    elif source.endswith((".yaml", ".yml")):
        text = yaml_to_pkt(source, defines)
    else:
        raise CaseError(Loc(source, 1), "convert takes a .pkt or a .yaml case")
    Path(out).write_text(text)
