"""PROTOCOL.md's worked example end to end: examples/stack_adapter.py, an adapter written
against the documented protocol only, runs cases through `--target exec:...` and gives
the native stack target's verdicts."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from harness.cli import main
from harness.execute import run_one
from harness.loader import load
from harness.result import NOT_APPLICABLE, PASS
from harness.suite import jobs_for, skipped_result

from tests.conftest import needs_root

ROOT = Path(__file__).resolve().parents[2]
ADAPTER = ROOT / "examples" / "stack_adapter.py"
TARGET = f"exec:{sys.executable} {ADAPTER}"
CASES = ["cases/rfc9293/handshake/simultaneous-open.yaml", "cases/rfc9293/close/fin-reads-eof.yaml",
         "cases/rfc1122/4.2.3.6-keepalive/keepalive-after-idle.yaml",
         "cases/rfc9293/window/zero-window-probes-backoff.yaml", "cases/rfc793/open/active-open-blocking.yaml"]


def test_the_example_imports_nothing_of_the_harness():
    tree = ast.parse(ADAPTER.read_text())
    modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {m for m in modules if m and m.split(".")[0] == "harness"}


@needs_root
def test_cases_through_the_example_give_the_stack_targets_verdicts():
    for path in CASES:
        (job,) = jobs_for(str(ROOT / path), [TARGET])
        assert skipped_result(job) is None, path        # the example has what the case needs
        script = load(str(ROOT / path))
        native, through = run_one(script, "stack"), run_one(script, TARGET)
        assert through.verdict == native.verdict == PASS, (path, through.failure)
        assert through.environment["stack"] == "rfcdrill-stack example"
        assert [p.direction for p in through.packets] == [p.direction for p in native.packets]
        assert [round(p.time, 6) for p in through.packets] == [round(p.time, 6) for p in native.packets]


def test_a_case_needing_a_sysctl_the_example_lacks_is_not_applicable():
    path = str(ROOT / "cases/rfc9293/handshake/syn-retries-give-up.yaml")
    (job,) = jobs_for(path, [TARGET])
    result = skipped_result(job)
    assert result.verdict == NOT_APPLICABLE
    assert result.expectation == "needs sysctl net.ipv4.tcp_syn_linear_timeouts"


@needs_root
def test_the_cli_runs_the_example_and_reports_not_applicable(tmp_path, capsys):
    code = main(["run", str(ROOT / "cases/rfc9293/handshake"), "--target", TARGET,
                 "--json", str(tmp_path / "results.json"), "--report", str(tmp_path / "report")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "N/A " in out and "needs sysctl net.ipv4.tcp_syn_linear_timeouts" in out
    assert "not-applicable: needs sysctl" in (tmp_path / "report" / "junit.xml").read_text()
    assert "Not applicable" in (tmp_path / "report" / "summary.md").read_text()
