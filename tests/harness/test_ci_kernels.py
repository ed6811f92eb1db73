"""ci/github-kernels.yml: it parses, its shell steps are valid bash, every rfcdrill command it
runs parses with the real command line for every cell of its matrix, the shards of each
target cover 1..N once, and the merge job reads what the matrix jobs upload."""

from __future__ import annotations

import itertools
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "ci" / "github-kernels.yml"
EXPRESSION = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def cells(matrix: dict) -> list[dict[str, object]]:
    keys = [k for k in matrix if k not in ("include", "exclude")]
    return [dict(zip(keys, values)) for values in itertools.product(*(matrix[k] for k in keys))]


def expand(text: str, values: dict[str, str]) -> str:
    """A step's text with its `${{ ... }}` expressions and $VARIABLES of the workflow filled in."""
    def one(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in values:
            raise AssertionError(f"{WORKFLOW}: unknown expression ${{{{ {name} }}}}")
        return values[name]
    text = EXPRESSION.sub(one, text)
    for name, value in values.items():
        if name.startswith("env."):
            text = text.replace(f"${name[4:]}", value)
    return text


def rfcdrill_commands(script: str) -> list[list[str]]:
    """The argument lists of every rfcdrill invocation in a shell script (continuations joined)."""
    out = []
    for line in script.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        for i, word in enumerate(words):
            if word.endswith("/bin/rfcdrill"):
                args = words[i + 1:]
                out.append(args[:args.index("||")] if "||" in args else args)
    return out


def test_the_workflow_is_yaml_with_a_matrix_and_a_merge() -> None:
    data = workflow()
    assert set(data["jobs"]) == {"suite", "report"}
    assert data["jobs"]["report"]["needs"] == "suite"
    assert data["jobs"]["report"]["if"] == "always()"       # merge what there is
    matrix = data["jobs"]["suite"]["strategy"]["matrix"]
    assert any(t.startswith("kernel@") for t in matrix["target"])
    for job in data["jobs"].values():
        for step in job["steps"]:
            assert "uses" in step or "run" in step, step
            if "uses" in step:
                assert re.fullmatch(r"[\w-]+/[\w-]+@v\d+", step["uses"]), step["uses"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_every_shell_step_is_valid_bash() -> None:
    for job in workflow()["jobs"].values():
        for step in job["steps"]:
            if "run" in step:
                done = subprocess.run(["bash", "-n"], input=step["run"], text=True,
                                      capture_output=True)
                assert done.returncode == 0, f"{step.get('name')}: {done.stderr}"


def test_every_rfcdrill_command_parses_and_the_shards_cover_the_suite() -> None:
    data = workflow()
    env = {f"env.{k}": str(v) for k, v in data["env"].items()
           if "${{" not in str(v)} | {"env.VENV": "/venv"}
    suite = data["jobs"]["suite"]
    matrix = suite["strategy"]["matrix"]
    parser = build_parser()
    shards: dict[str, list[tuple[int, int]]] = {}
    for index, cell in enumerate(cells(matrix)):
        values = {**env, "strategy.job-index": str(index),
                  **{f"matrix.{k}": str(v) for k, v in cell.items()}}
        commands = [c for step in suite["steps"] if "run" in step
                    for c in rfcdrill_commands(expand(step["run"], values))]
        assert len(commands) == 1, commands
        args = parser.parse_args(commands[0])
        assert args.command == "run" and args.target == [cell["target"]]
        assert all((ROOT / p).exists() for p in args.paths), args.paths
        shards.setdefault(cell["target"], []).append(args.shard)
        written = args.json
    count = int(data["env"]["SHARDS"])
    for target, parts in shards.items():
        assert sorted(parts) == [(k, count) for k in range(1, count + 1)], target

    report = data["jobs"]["report"]
    [merge] = [c for step in report["steps"] if "run" in step
               for c in rfcdrill_commands(expand(step["run"], env))]
    args = parser.parse_args(merge)
    assert args.command == "report" and args.results[0] == "merge" and args.out == "report"
    # What the matrix uploads is what the merge reads: results-N/results.json under `parts`.
    upload = next(s for s in suite["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    download = next(s for s in report["steps"]
                    if s.get("uses", "").startswith("actions/download-artifact"))
    assert upload["with"]["name"].startswith(download["with"]["pattern"].rstrip("*"))
    assert upload["with"]["path"] == written
    assert args.results[1:] == [f"{download['with']['path']}/*/results.json"]
