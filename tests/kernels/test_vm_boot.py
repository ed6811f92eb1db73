"""One real boot: Debian's 6.1 under virtme-ng runs three cases (slow: about a minute under
TCG, plus a download of about 70 MB the first time). Opt-in: RFCDRILL_VM_TEST=1 pytest -m vm
tests/kernels/test_vm_boot.py, as root, after RFCDRILL_VM=1 bash ci/setup.sh."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.kernels import fidelity, vm
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
    # The guest measured its timing at boot; an untrusted guest marks every result.
    assert opened["environment"][fidelity.LATENESS_KEY].endswith(f"({fidelity.SEGMENTS} segments)")
    trust = opened["environment"][fidelity.TRUST_KEY]
    assert trust == "trusted" or trust.startswith("untrusted timing: the guest")
    assert all(r["timing"] == ("" if trust == "trusted" else trust) for r in results
               if r["verdict"] not in ("not-applicable", "skipped"))
    assert "scheduling lateness, max (ms)" not in opened["environment"] or \
        float(opened["environment"]["scheduling lateness, max (ms)"]) >= 0
    assert status in (0, 1)


def test_a_kernel_image_of_ones_own_boots_with_its_modules(tmp_path: Path) -> None:
    """kernel@PATH, the kernel developer's case: an unpacked Debian kernel copied out of the
    cache stands for one's own bzImage with its modules (`<tree>/boot/vmlinuz-*`,
    `<tree>/lib/modules/<release>`); its release is learned in the guest and picks the
    series' expectations."""
    kept = vm.kernel_for("kernel@6.1")
    tree = tmp_path / "tree"
    shutil.copytree(Path(kept.image).parents[1], tree)
    (tree / "kernel.json").unlink()                 # not a cached kernel: a tree of one's own
    image = next(tree.glob("boot/vmlinuz-*"))
    target = f"kernel@{image}"
    files = [str(ROOT / "cases" / "rfc793" / name) for name in CASES]
    status = main(["run", *files, "--target", target, "--json", str(tmp_path / "r.json")])
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    assert {r["target"] for r in results} == {target} and len(results) == len(CASES)
    by_id = {r["case_id"]: r for r in results}
    assert by_id["rfc793-syn-retransmission-exponential-backoff"]["verdict"] == "not-applicable"
    opened = by_id["rfc793-passive-open"]
    assert opened["environment"]["kernel"] == kept.release
    assert opened["environment"][vm.IMAGE_KEY] == str(image)
    assert opened["verdict"] in ("pass", "error"), opened     # error only as untrusted timing
    assert opened["verdict"] == "pass" or opened["failure"]["message"].startswith("untrusted timing")
    assert status in (0, 1)
