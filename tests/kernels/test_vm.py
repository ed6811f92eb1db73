"""Booting a kernel: the command, the accelerator, the error paths and the merge of the
guest's results, with a fake vng in place of the VM (harness.kernels.vm)."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from harness import expectations
from harness.capabilities import missing
from harness.execute import Job
from harness.kernels import cache, spec, tools, vm
from harness.loader import load
from harness.result import ERROR, FAIL, NOT_APPLICABLE, PASS, XFAIL, Result
from harness.suite import skipped_result
from harness.targets import resolve

KERNEL = cache.Kernel("/k/boot/vmlinuz-6.1.0-57-amd64", "6.1.0-57-amd64", "6.1.192",
                      "linux-image-6.1.0-57-amd64", "6.1.192-3", "bookworm-security")
CASE = """\
id: {id}
requirements: [rfc793:transition:LISTEN:syn]
sysctl: {{{sysctl}: 1}}
script: |
  0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
"""


@pytest.fixture
def case_dir(tmp_path: Path) -> Path:
    (tmp_path / "expectations").mkdir()
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(CASE.format(id=name, sysctl="net.ipv4.tcp_sack"))
    (tmp_path / "expectations" / "kernel.yaml").write_text(
        "a: {outcome: fail, reason: the host kernel deviates}\n"
        "b: {outcome: fail, reason: every kernel deviates}\n")
    (tmp_path / "expectations" / "kernel@6.1.yaml").write_text(
        "a: {outcome: pass, reason: 6.1 predates the change}\n")
    return tmp_path


def _jobs(folder: Path, target: str = "kernel@6.1") -> list[Job]:
    return [Job(str(folder / f"{n}.yaml"), target, load(str(folder / f"{n}.yaml")), case_id=n)
            for n in ("a", "b")]


def test_the_command_boots_the_image_with_a_shared_folder_and_the_guest_runner(tmp_path: Path) -> None:
    args = vm.run_args(_jobs(_cases(tmp_path)), tmp_path, 2, 5.0, {"MSS": "1000"}, ["ipv4"])
    command = vm.vng_command(KERNEL, tmp_path, args, "tcg")
    assert command[1:4] == ["--run", KERNEL.image, "--disable-kvm"]
    assert command[command.index("--rwdir") + 1] == str(tmp_path)
    assert command[command.index("--exec") + 1] == \
        f"{sys.executable} -m harness.kernels.guest {tmp_path}"
    given = " ".join(json.loads((tmp_path / "args.json").read_text())["run"])
    for part in ("--target kernel", f"--json {tmp_path}/results.json", "--jobs 2",
                 "--tolerance-scale 5.0", "-D MSS=1000", "--ip-version ipv4", str(tmp_path / "a.yaml")):
        assert part in given
    assert "--disable-kvm" not in vm.vng_command(KERNEL, tmp_path, args, "kvm")


def _cases(folder: Path) -> Path:
    for name in ("a", "b"):
        (folder / f"{name}.yaml").write_text(CASE.format(id=name, sysctl="net.ipv4.tcp_sack"))
    return folder


def test_the_run_limit_grows_with_cases_and_emulation(tmp_path: Path) -> None:
    jobs = _jobs(_cases(tmp_path))
    assert vm.run_limit(jobs, 1, 1.0, "tcg") > vm.run_limit(jobs, 1, 1.0, "kvm") > vm.START_COST
    assert vm.run_limit(jobs, 2, 1.0, "tcg") < vm.run_limit(jobs, 1, 1.0, "tcg")


def test_kvm_only_where_an_ordinary_guest_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    real_exists = Path.exists
    monkeypatch.setattr(vm.os, "access", lambda path, mode: True)
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: "flags\t: fpu vmx sse\n")
    monkeypatch.setattr(Path, "exists", lambda self: False if str(self).endswith("kvm_pvm")
                        else real_exists(self))
    assert vm.accelerator() == "kvm"
    monkeypatch.setattr(Path, "exists", lambda self: str(self).endswith("kvm_pvm") or real_exists(self))
    assert vm.accelerator() == "tcg"             # the PVM flavour of KVM runs no Debian kernel
    monkeypatch.setattr(Path, "exists", lambda self: False if str(self).endswith("kvm_pvm")
                        else real_exists(self))
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: "flags\t: fpu sse\n")
    assert vm.accelerator() == "tcg"             # no hardware virtualization


def test_missing_tools_say_how_to_get_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tools, "vng_path", lambda: None)
    assert "RFCDRILL_VM=1 bash ci/setup.sh" in tools.missing_tools()
    monkeypatch.setattr(tools, "vng_path", lambda: "/bin/true")
    monkeypatch.setattr(tools.shutil, "which", lambda name: None)
    monkeypatch.setattr(tools.Path, "exists", lambda self: False)
    assert "qemu-system-x86" in tools.missing_tools() and "busybox-static" in tools.missing_tools()


def _fake_vng(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    """vng replaced by a shell script; $OUT is the shared folder."""
    script = tmp_path / "fake-vng"
    script.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    script.chmod(0o755)
    monkeypatch.setattr(vm, "vng_command", lambda kernel, out, args, accel:
                        ["env", f"OUT={out}", str(script)])


def _boot(tmp_path: Path, limit: float = 30.0) -> vm.Boot:
    out = tmp_path / "out"
    out.mkdir()
    return vm.boot_and_run(KERNEL, "kernel@6.1", _jobs(_cases(tmp_path)), [], out, limit, "tcg",
                           lambda: False, lambda text: None)


def test_a_guest_that_never_starts_is_a_boot_failure(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_vng(tmp_path, monkeypatch, "echo 'qemu: could not load kernel'; exit 255\n")
    boot = _boot(tmp_path)
    assert boot.results == [] and "the guest did not boot" in boot.problem
    assert "could not load kernel" in boot.problem


def test_a_guest_that_hangs_at_boot_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_vng(tmp_path, monkeypatch, "echo $$ > $OUT/pid; exec sleep 60\n")
    monkeypatch.setattr(vm, "BOOT_LIMIT", 1.0)
    boot = _boot(tmp_path)
    assert "did not come up within 1 s" in boot.problem
    pid = int((tmp_path / "out" / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)                      # the VM's process group is gone


def test_a_guest_run_over_its_limit_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_vng(tmp_path, monkeypatch, "echo 4.2 > $OUT/started; exec sleep 60\n")
    boot = _boot(tmp_path, limit=1.0)
    assert "run took over 1 s" in boot.problem and boot.boot_s > 0


def test_results_come_back_through_the_shared_folder(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    results = {"run": {}, "results": [Result("a", "a.yaml", "kernel", PASS, raw_verdict=PASS).to_json()]}
    (tmp_path / "results.json").write_text(json.dumps(results))
    _fake_vng(tmp_path, monkeypatch, f"echo 4.2 > $OUT/started; cp {tmp_path}/results.json $OUT/; "
              "echo 0 > $OUT/rc; exit 255\n")             # vng's 255 means nothing
    boot = _boot(tmp_path)
    assert boot.problem == "" and [r.case_id for r in boot.results] == ["a"]


def test_the_guest_kernel_series_expectations_apply(case_dir: Path) -> None:
    guest = [Result("a", str(case_dir / "a.yaml"), "kernel", XFAIL, raw_verdict=PASS,
                    expectation="the host kernel deviates", environment={"kernel": "6.1.0-57-amd64"}),
             Result("b", str(case_dir / "b.yaml"), "kernel", XFAIL, raw_verdict=FAIL,
                    environment={"kernel": "6.1.0-57-amd64"}),
             Result("c", str(case_dir / "c.yaml"), "kernel", PASS, raw_verdict=PASS)]
    lacking = Result("b", str(case_dir / "b.yaml"), "kernel", NOT_APPLICABLE,
                     raw_verdict=NOT_APPLICABLE, expectation="needs sysctl net.ipv4.tcp_x")
    boot = vm.Boot(guest, boot_s=4.5)
    merged = list(vm.results_for("kernel@6.1", _jobs(case_dir), KERNEL, boot, "tcg"))
    assert [(r.case_id, r.target, r.verdict) for r in merged] == [
        ("a", "kernel@6.1", PASS), ("b", "kernel@6.1", XFAIL)]     # c was not asked for
    assert merged[0].expectation == ""                 # kernel@6.1.yaml lifts kernel.yaml's entry
    assert merged[1].expectation == "every kernel deviates"
    assert merged[0].environment[vm.ACCEL_KEY] == "tcg"
    assert merged[0].environment[vm.BOOT_KEY] == "4.5"
    assert "6.1.192-3" in merged[0].environment[vm.IMAGE_KEY]
    kept = list(vm.results_for("kernel@6.1", _jobs(case_dir), KERNEL, vm.Boot([lacking]), "tcg"))
    assert [(r.verdict, r.expectation) for r in kept] == [(NOT_APPLICABLE, "needs sysctl net.ipv4.tcp_x")]
    assert kept[0].environment["kernel"] == KERNEL.release   # known even where no case ran


def test_a_failed_boot_is_an_error_for_each_case(case_dir: Path) -> None:
    merged = list(vm.results_for("kernel@6.1", _jobs(case_dir), KERNEL,
                                 vm.Boot([], "the guest did not boot: no kernel"), "tcg"))
    assert [r.verdict for r in merged] == [ERROR, ERROR]
    assert "kernel@6.1: the guest did not boot" in merged[0].failure.message


def test_versioned_expectations_come_first(case_dir: Path) -> None:
    names = [Path(f).name for f in expectations.files_for(str(case_dir / "a.yaml"), "kernel@6.1")]
    assert names == ["kernel@6.1.yaml", "kernel.yaml"]
    assert spec.expectations_name("6.12.95+deb13-amd64") == "kernel@6.12"
    assert resolve("kernel@6.1.192").expectations_name == "kernel@6.1"


def test_a_sysctl_the_kernel_lacks_makes_the_case_not_applicable(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text(CASE.format(id="x", sysctl="net.ipv4.tcp_from_a_later_kernel"))
    script = load(str(tmp_path / "x.yaml"))
    assert missing(script, resolve("kernel").capabilities) == ["sysctl net.ipv4.tcp_from_a_later_kernel"]
    result = skipped_result(Job(str(tmp_path / "x.yaml"), "kernel", script, case_id="x"))
    assert result is not None and result.verdict == NOT_APPLICABLE
    (tmp_path / "y.yaml").write_text(CASE.format(id="y", sysctl="net.ipv4.conf.tun0.forwarding"))
    assert missing(load(str(tmp_path / "y.yaml")), resolve("kernel").capabilities) == []
