"""`rfcdrill report merge A.json B.json ... --report DIR`: one report from several runs.

The inputs are results.json files of `rfcdrill run`: the shards of one run (`--shard K/N`),
runs against other kernels (`--target kernel@6.1` on one machine, `kernel@6.12` on another),
or runs of other targets. Each target stays a column. A (case, target) pair may come from one
input only; the same pair in two inputs is an error naming both, unless the two results are
identical (the same file given twice, or a copy). Runs of one target name on several machines
(`kernel` on two hosts) are told apart by renaming a target of one input:
`--rename hostB/results.json:kernel=kernel-hostB`.

The merged run's metadata: the targets in the order the inputs name them, each target's
environment from the first input that has it (its run-wide scheduling figures computed again
over every input's cases), the earliest start and latest finish, and `inputs`: each file
with its host, shard and targets, so a report still says where each part ran.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness import sched
from harness.errors import CaseError
from harness.record import FORMAT_VERSION, read_results, tool_version
from harness.result import Result


def parse_renames(paths: list[str], specs: list[str]) -> dict[str, dict[str, str]]:
    """`FILE:TARGET=NEW` options as {file: {target: new name}}; FILE is one of `paths`
    (a target name may itself hold a colon, as `exec:CMD` does)."""
    renames: dict[str, dict[str, str]] = {}
    for spec in specs:
        left, equals, new = spec.partition("=")
        path = next((p for p in paths if left.startswith(p + ":")), None)
        if not equals or not new or path is None or left == path + ":":
            raise CaseError(None, f"--rename {spec}: expected FILE:TARGET=NEW with FILE one "
                            "of the files merged (" + ", ".join(paths) + ")")
        renames.setdefault(path, {})[left[len(path) + 1:]] = new
    return renames


def _renamed(path: str, meta: dict[str, Any], results: list[Result],
             names: dict[str, str]) -> tuple[dict[str, Any], list[Result]]:
    """One input with its targets renamed as `names` says (each must be a target of it)."""
    targets = meta.get("targets", [])
    for old in names:
        if old not in targets:
            raise CaseError(None, f"--rename {path}:{old}=...: {path} has no target {old} "
                            f"(its targets: {', '.join(targets) or 'none'})")
    environments = meta.get("environments", {})
    meta = {**meta, "targets": [names.get(t, t) for t in targets],
            "environments": {names.get(t, t): env for t, env in environments.items()}}
    return meta, [replace(r, target=names[r.target]) if r.target in names else r
                  for r in results]


def merge(paths: list[str], renames: dict[str, dict[str, str]] | None = None
          ) -> tuple[dict[str, Any], list[Result]]:
    """The merged (metadata, results) of the results.json files at `paths`, with the targets
    of an input renamed as `renames` says (parse_renames)."""
    if len(paths) < 2:
        raise CaseError(None, "report merge joins two or more results.json files "
                        f"(given {len(paths)})")
    seen: dict[tuple[str, str], tuple[str, Result]] = {}
    results: list[Result] = []
    metas: list[tuple[str, dict[str, Any]]] = []
    for path in paths:
        meta, mine = _renamed(path, *read_results(path), (renames or {}).get(path, {}))
        metas.append((path, meta))
        for result in mine:
            key = (result.case_id, result.target)
            if key in seen:
                first, earlier = seen[key]
                if _same(earlier, result):
                    continue
                raise CaseError(None, f"{result.case_id} on {result.target} is in both {first} "
                                f"({earlier.verdict}) and {path} ({result.verdict}): a case and "
                                "target may come from one input only (runs of one target on "
                                f"several machines: --rename {path}:{result.target}=NEW)")
            seen[key] = (path, result)
            results.append(result)
    return _meta(metas, results), results


def _same(a: Result, b: Result) -> bool:
    return json.dumps(a.to_json(), sort_keys=True) == json.dumps(b.to_json(), sort_keys=True)


def _meta(metas: list[tuple[str, dict[str, Any]]], results: list[Result]) -> dict[str, Any]:
    targets: list[str] = []
    environments: dict[str, dict[str, str]] = {}
    for _, meta in metas:
        targets.extend(meta.get("targets", []))
        for target, env in meta.get("environments", {}).items():
            environments.setdefault(target, dict(env))
    for target, env in environments.items():
        env.update(sched.run_figures([r.environment for r in results if r.target == target]))
    started = [m["started"] for _, m in metas if m.get("started")]
    finished = [m["finished"] for _, m in metas if m.get("finished")]
    first = metas[0][1]
    merged: dict[str, Any] = {
        "tool": "rfcdrill", "version": tool_version(), "format": FORMAT_VERSION,
        "started": min(started) if started else "", "finished": max(finished) if finished else "",
        "host": first.get("host", {}), "targets": list(dict.fromkeys(targets)),
        "environments": environments,
        "inputs": [{"file": str(Path(path)), "host": meta.get("host", {}),
                    "shard": meta.get("shard", ""), "targets": meta.get("targets", []),
                    "started": meta.get("started", "")} for path, meta in metas]}
    interrupted = [m["interrupted"] for _, m in metas if m.get("interrupted")]
    if interrupted:
        merged["interrupted"] = interrupted[0]
    return merged


def merged_from(meta: dict[str, Any]) -> list[str]:
    """One line per input of a merged run, for the report's header: file, shard, targets, host."""
    lines = []
    for part in meta.get("inputs", []):
        shard = f" shard {part['shard']}" if part.get("shard") else ""
        host = part.get("host", {})
        lines.append(f"{part.get('file', '?')}{shard}: {', '.join(part.get('targets', []))} "
                     f"on host kernel {host.get('kernel', '?')} ({part.get('started', '?')})")
    return lines
