"""One real boot: Debian's 6.1 under virtme-ng runs three cases (slow: about a minute under
TCG, plus a download of about 70 MB the first time). Opt-in: RFCDRILL_VM_TEST=1 pytest -m vm
tests/kernels/test_vm_boot.py, as root, after RFCDRILL_VM=1 bash ci/setup.sh."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.cli import main
from harness.kernels import vm
from harness.kernels.tools import missing_tools

pytestmark = [pytest.mark.vm,
              pytest.mark.skipif(not os.environ.get("RFCDRILL_VM_TEST"),
                                 reason="boots a VM: set RFCDRILL_VM_TEST=1"),
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]
ROOT = Path(__file__).resolve().parents[2]
CASES = {"open/active-open-nonblocking.yaml": "rfc793-active-open-nonblocking",
         "open/passive-open.yaml": "rfc793-passive-open",
         "retransmission/syn-backoff-exponential.yaml": "rfc793-syn-retransmission-exponential-backoff"}


def test_a_debian_kernel_runs_cases_in_a_vm(tmp_path: Path) -> None:
    assert missing_tools() == ""
    files = [str(ROOT / "cases" / "rfc793" / name) for name in CASES]
    status = main(["run", *files, "--target", "kernel@6.1", "--json", str(tmp_path / "r.json")])
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    assert sorted(r["case_id"] for r in results) == sorted(CASES.values())
    by_id = {r["case_id"]: r for r in results}
    assert all(r["target"] == "kernel@6.1" for r in results)
    # 6.1 has no net.ipv4.tcp_syn_linear_timeouts: not applicable there, not an error
    backoff = by_id["rfc793-syn-retransmission-exponential-backoff"]
    assert backoff["verdict"] == "not-applicable", backoff
    assert "tcp_syn_linear_timeouts" in backoff["expectation"]
    opened = by_id["rfc793-active-open-nonblocking"]
    assert opened["environment"]["kernel"].startswith("6.1.")
    assert opened["environment"][vm.ACCEL_KEY] in ("kvm", "tcg")
    assert "scheduling lateness, max (ms)" not in opened["environment"] or \
        float(opened["environment"]["scheduling lateness, max (ms)"]) >= 0
    assert status in (0, 1)
