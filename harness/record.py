"""results.json: the canonical record of a run, from which every report is rendered."""

from __future__ import annotations

import datetime as dt
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.result import Result

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
    data = json.loads(Path(path).read_text())
    return data["run"], [Result.from_json(r) for r in data["results"]]
