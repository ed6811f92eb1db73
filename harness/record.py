"""results.json: the canonical record of a run, from which every report is rendered."""

from __future__ import annotations

import datetime as dt
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from harness import sched
from harness.errors import CaseError, Loc
from harness.limits import brief
from harness.result import Result
from harness.source import regular_file

FORMAT_VERSION = 1


def tool_version() -> str:
    try:
        return metadata.version("rfcdrill")
    except metadata.PackageNotFoundError:
        return "unknown"


ADAPTER_STDERR = "adapter stderr"    # a protocol target's Result.environment key (per case)


def run_metadata(started: dt.datetime, targets: list[str], results: list[Result]) -> dict[str, Any]:
    environments: dict[str, dict[str, str]] = {}
    for result in results:
        if result.environment and result.target not in environments:
            environments[result.target] = {k: v for k, v in result.environment.items()
                                           if k != ADAPTER_STDERR}     # one case's, not the target's
    for target, env in environments.items():
        env.pop(sched.CASE_KEY, None)        # one case's figure; the run's are these:
        env.update(sched.run_figures([r.environment for r in results if r.target == target]))
    return {"tool": "rfcdrill", "version": tool_version(), "format": FORMAT_VERSION,
            "started": started.isoformat(timespec="seconds"),
            "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "host": {"kernel": platform.release(), "machine": platform.machine(),
                     "python": platform.python_version()},
            "targets": targets, "environments": environments}


def write_results(path: str | Path, meta: dict[str, Any], results: list[Result]) -> None:
    data = {"run": meta, "results": [r.to_json() for r in results]}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=1))


def read_results(path: str | Path) -> tuple[dict[str, Any], list[Result]]:
    """A results.json written by `rfcdrill run`; anything else is a CaseError."""
    name = str(path)
    regular_file(name)
    try:
        data = json.loads(Path(name).read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseError(Loc(name, 1), f"cannot read the file: {exc}") from None
    except json.JSONDecodeError as exc:
        raise CaseError(Loc(name, exc.lineno, exc.colno), f"not JSON: {exc.msg}") from None
    try:
        return data["run"], [Result.from_json(r) for r in data["results"]]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CaseError(Loc(name, 1), "not a results.json written by rfcdrill run "
                        f"({type(exc).__name__}: {brief(str(exc), 80)})") from None
