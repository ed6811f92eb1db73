"""Running a packetdrill corpus as its runners do: packetdrill's command line, the runners'
IP versions and arguments, ids unique by path, each script's folder as the working
directory, and the drop-in `rfcdrill-packetdrill`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import corpus, pdargs
from harness.errors import CaseError
from harness.execute import run_one
from harness.loader import load
from harness.result import FAIL, PASS
from harness.suite import case_ids

from tests.conftest import HANDSHAKE, needs_root

PKT = Path(__file__).resolve().parent.parent / "pkt"
QUIET = ("`sysctl -q -w net.ipv4.tcp_timestamps=0 net.ipv4.tcp_sack=0 "
         "net.ipv4.tcp_window_scaling=0`\n")


def test_packetdrill_command_line_options_defines_and_scripts_in_any_order():
    inv = pdargs.parse(["--ip_version=ipv6", "--mtu", "1520", "-D", "A=1", "-DB=x=y",
                        "one.pkt", "-v", "--strict_segments", "two.pkt"])
    assert inv.options == {"ip_version": "ipv6", "mtu": "1520", "strict_segments": ""}
    assert inv.defines == {"A": "1", "B": "x=y"}
    assert inv.verbose and inv.scripts == ["one.pkt", "two.pkt"]
    assert pdargs.parse(inv.argv()).options == inv.options


@pytest.mark.parametrize("argv, message", [
    (["--no_such_option", "x.pkt"], "unrecognized option '--no_such_option'"),
    (["--strict_segments=1"], "doesn't allow an argument"),
    (["--mtu"], "requires an argument"),
    (["-D", "=1"], "bad definition"),
    (["-x"], "invalid option -- 'x'"),
])
def test_a_command_line_packetdrill_refuses_is_refused(argv, message):
    with pytest.raises(pdargs.UsageError, match=message):
        pdargs.parse(argv)


def test_command_line_options_win_over_the_scripts_own(tmp_path):
    path = tmp_path / "s.pkt"
    path.write_text("--tolerance_usecs=1000\n--mtu=1400\n" + HANDSHAKE)
    script = load(path, overrides={"mtu": "9000", "ip_version": "ipv6",
                                   "local_ip": "fd3d:0a0b:17d6::1", "remote_ip": "fd3d:fa7b:d17d::1"})
    assert script.plan.mtu == 9000 and script.tolerance.usecs == 1000
    assert script.plan.ip_version == "ipv6" and script.plan.local_ip == "fd3d:a0b:17d6::1"


def test_a_bad_command_line_option_value_names_the_option(tmp_path):
    path = tmp_path / "s.pkt"
    path.write_text(HANDSHAKE)
    with pytest.raises(CaseError, match=r"--mtu=lots"):
        load(path, overrides={"mtu": "lots"})
    path.write_text("--mss=0\n" + HANDSHAKE)
    with pytest.raises(CaseError, match=r"s.pkt:1:1: --mss=0: an MSS is 1..65535"):
        load(path)


def _corpus(root: Path, names: list[str]) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(HANDSHAKE)


def test_run_all_versions_by_file_name_and_ids_by_path(tmp_path):
    _corpus(tmp_path, ["a/simple1.pkt", "a/opt/simple1.pkt", "b/x-v4.pkt", "b/y-v6.pkt"])
    runs = corpus.runs(str(tmp_path), "run_all")
    assert [r.id for r in runs] == [
        "a/opt/simple1@ipv4", "a/opt/simple1@ipv4-mapped-v6", "a/opt/simple1@ipv6",
        "a/simple1@ipv4", "a/simple1@ipv4-mapped-v6", "a/simple1@ipv6",
        "b/x-v4@ipv4", "b/x-v4@ipv4-mapped-v6", "b/y-v6@ipv6"]
    first = runs[0]
    assert first.argv[0] == "--send_omit_free" and first.argv[-1] == "simple1.pkt"
    assert first.folder == str(tmp_path / "a" / "opt") and first.loopback_up
    assert "TFO_COOKIE=c1d1e9742a47a9bc" in runs[2].argv


def test_ksft_runs_every_script_in_both_versions_with_the_runners_own_arguments(tmp_path):
    _corpus(tmp_path, ["tcp_a.pkt", "tcp_b.pkt"])
    (tmp_path / "ksft_runner.sh").write_text(
        "#!/bin/bash\nreadonly ipv4_args=('--ip_version=ipv4 '\n\t'-D X=1 ')\n"
        "readonly ipv6_args=('--ip_version=ipv6 ' '--mtu=1520 ')\n"
        "unshare -n packetdrill ${ipv4_args[@]} $(basename $script)\n")
    assert corpus.detect(str(tmp_path)) == "ksft"
    runs = corpus.runs(str(tmp_path), "ksft")
    assert [r.id for r in runs] == ["tcp_a@ipv4", "tcp_a@ipv6", "tcp_b@ipv4", "tcp_b@ipv6"]
    assert runs[0].argv == ("--ip_version=ipv4", "-D", "X=1", "tcp_a.pkt")
    assert runs[1].argv == ("--ip_version=ipv6", "--mtu=1520", "tcp_a.pkt")
    assert not runs[0].loopback_up


def test_a_later_ksft_runner_gives_three_versions_or_the_one_a_script_names(tmp_path):
    _corpus(tmp_path, ["tcp_a.pkt", "tcp_b_v6only.pkt", "tcp_c.pkt"])
    (tmp_path / "tcp_b_v6only.pkt").write_text("--ip_version=ipv6\n0 socket(...)\n")
    (tmp_path / "tcp_c.pkt").write_text("--ip_version=ipv4\n--ip_version=ipv6\n")
    (tmp_path / "ksft_runner.sh").write_text(
        '#!/bin/bash\ndeclare -A ip_args=(\n\t[ipv4]="--ip_version=ipv4\n\t\t-D X=1"\n'
        '\t[ipv4-mapped-ipv6]="--ip_version=ipv4-mapped-ipv6"\n'
        '\t[ipv6]="--ip_version=ipv6 --mtu=1520"\n)\n'
        'unshare -n packetdrill ${ip_args[$ip_version]} $script\n')
    runs = corpus.runs(str(tmp_path), "ksft")
    # tcp_c names two versions: the runner refuses it, so it has no run
    assert [r.id for r in runs] == ["tcp_a@ipv4", "tcp_a@ipv6", "tcp_a@ipv4-mapped-ipv6",
                                    "tcp_b_v6only@ipv6"]
    assert runs[0].argv == ("--ip_version=ipv4", "-D", "X=1", "tcp_a.pkt")
    assert runs[2].argv == ("--ip_version=ipv4-mapped-ipv6", "tcp_a.pkt")


def test_a_ksft_runner_without_its_argument_arrays_is_an_error(tmp_path):
    (tmp_path / "ksft_runner.sh").write_text("#!/bin/bash\npacketdrill \"$1\"\n")
    with pytest.raises(CaseError, match=r"ksft_runner.sh:1:1: expected the argument lists"):
        corpus.runs(str(tmp_path), "ksft")


def test_case_ids_of_a_folder_are_paths_so_two_scripts_of_one_name_stay_two(tmp_path):
    _corpus(tmp_path, ["server/simple1.pkt", "server/opt34/simple1.pkt"])
    ids = case_ids([str(tmp_path / "server")])
    assert sorted(ids.values()) == ["opt34/simple1", "simple1"]
    assert case_ids([str(tmp_path / "server" / "simple1.pkt")]) == {
        str(tmp_path / "server" / "simple1.pkt"): None}


@needs_root
def test_shell_commands_run_in_the_scripts_folder_with_packetdrill_pid(tmp_path):
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "helper.sh").write_text('#!/bin/sh\necho "$PACKETDRILL_PID" > "$1"\n')
    (tmp_path / "common" / "helper.sh").chmod(0o755)
    (tmp_path / "tests").mkdir()
    path = tmp_path / "tests" / "s.pkt"
    path.write_text(QUIET + "0 `../common/helper.sh pid.txt`\n" + HANDSHAKE)
    result = run_one(load(path), "kernel")
    assert result.verdict == PASS, result.failure
    pid = (tmp_path / "tests" / "pid.txt").read_text().strip()
    assert pid.isdigit() and int(pid) != os.getpid()


def _dropin(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.dropin", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})


def test_the_dropin_refuses_a_bad_command_line_as_packetdrill_does(tmp_path):
    done = _dropin(["--bogus", "x.pkt"], tmp_path)
    assert done.returncode == 1 and "unrecognized option '--bogus'" in done.stderr
    done = _dropin(["--ip_version=ipv4"], tmp_path)
    assert done.returncode == 1 and "missing script path" in done.stderr


@needs_root
def test_the_dropin_exits_0_on_a_pass_and_1_on_a_failure(tmp_path):
    (tmp_path / "good.pkt").write_text(QUIET + HANDSHAKE)
    (tmp_path / "bad.pkt").write_text(QUIET + HANDSHAKE + "+0 > P. 1:2(1) ack 1\n")
    args = ["--ip_version=ipv4", "--local_ip=192.168.0.1", "--remote_ip=192.0.2.1"]
    assert _dropin(args + ["good.pkt"], tmp_path).returncode == 0
    done = _dropin(args + ["-D", "X=1", "bad.pkt"], tmp_path)
    assert done.returncode == 1 and "bad.pkt:10:1: expected segment did not arrive" in done.stderr
    results = tmp_path / "results"
    env_run = subprocess.run([sys.executable, "-m", "harness.dropin", *args, "good.pkt"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=60,
                             env={**os.environ, "RFCDRILL_RESULTS": str(results),
                                  "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert env_run.returncode == 0 and (results / "good@ipv4.json").is_file()


@needs_root
def test_a_control_message_that_differs_fails_at_its_line_in_packetdrills_words(tmp_path):
    text = (PKT / "errqueue-zerocopy.pkt").read_text().replace(
        "ee_origin=SO_EE_ORIGIN_ZEROCOPY", "ee_origin=SO_EE_ORIGIN_LOCAL")
    path = tmp_path / "wrong-origin.pkt"
    path.write_text(text)
    result = run_one(load(path), "kernel")
    assert result.verdict == FAIL
    assert (result.failure.line, result.failure.column) == (19, 1)
    assert result.failure.message == "Bad origin in extended err 0: expected=1 actual=5"


@needs_root
def test_merged_segments_take_the_last_ones_psh_as_packetdrill_aggregates(tmp_path):
    # Two writes: the kernel marks only the segment that empties its queue with PSH.
    path = tmp_path / "merged.pkt"
    path.write_text(QUIET + HANDSHAKE + "+0 setsockopt(4, SOL_TCP, TCP_NODELAY, [1], 4) = 0\n"
                    "+0 write(4, ..., 3000) = 3000\n+0 > P. 1:3001(3000) ack 1\n")
    result = run_one(load(path, overrides={"strict_segments": ""}), "kernel")
    assert result.verdict == FAIL          # strict: three segments, only the last with PSH
    assert run_one(load(path), "kernel").verdict == PASS, "merged: the last one's P."


def test_unknown_constants_and_options_name_their_place(tmp_path):
    path = tmp_path / "bad.pkt"
    path.write_text("--no_such_option=1\n" + HANDSHAKE)
    with pytest.raises(CaseError, match=r"bad.pkt:1:1: unknown option --no_such_option"):
        load(path)
    path.write_text(HANDSHAKE + "+0 setsockopt(4, SOL_SOCKET, SO_NO_SUCH_THING, [1], 4) = 0\n")
    with pytest.raises(CaseError, match=r"bad.pkt:9:30: unknown name 'SO_NO_SUCH_THING'"):
        load(path)


@needs_root
def test_agree_compares_each_run_with_the_binary_it_is_given(tmp_path, capsys):
    # A stand-in for packetdrill: passes what is named good, fails the rest, and says
    # where it ran (each run must start in the script's folder).
    (tmp_path / "corpus" / "sub").mkdir(parents=True)
    (tmp_path / "corpus" / "sub" / "good.pkt").write_text(QUIET + HANDSHAKE)
    (tmp_path / "corpus" / "sub" / "bad.pkt").write_text(QUIET + HANDSHAKE)
    fake = tmp_path / "fake-packetdrill"
    fake.write_text('#!/bin/sh\nfor a; do last="$a"; done\npwd > "$last.cwd"\n'
                    'case "$last" in good*) exit 0;; *) echo "$last:1: error"; exit 1;; esac\n')
    fake.chmod(0o755)
    from harness import agree, cli
    code = cli.main(["agree", str(tmp_path / "corpus"), "--packetdrill", str(fake),
                     "--ip-version", "ipv4", "--json", str(tmp_path / "out.json")])
    out = capsys.readouterr().out
    assert code == 1                         # sub/bad: rfcdrill passes, the stand-in fails
    assert "sub/bad@ipv4" in out and "DIFFERS" in out and "packetdrill: bad.pkt:1: error" in out
    assert "agreement: 1 of 2 runs (50.0 %); of packetdrill's 1 passes rfcdrill passes 1" in out
    assert (tmp_path / "corpus" / "sub" / "good.pkt.cwd").read_text().strip() == str(tmp_path / "corpus" / "sub")
    theirs, _ = agree._earlier(str(tmp_path / "out.json"))
    assert {k: v.passed for k, v in theirs.items()} == {"sub/bad@ipv4": False, "sub/good@ipv4": True}


def test_the_md5_option_is_read_and_written_as_packetdrill_writes_it(tmp_path):
    from harness.peer import option_text
    path = tmp_path / "md5.pkt"
    digest = "000102030405060708090a0b0c0d0e0f"
    path.write_text(HANDSHAKE + f"+0 < . 1:1(0) ack 1 win 514 <md5 {digest},nop,nop>\n")
    option = load(path).events[-1].options[0]
    assert option == ("raw", 19, bytes.fromhex(digest)) and option_text(option) == f"md5 {digest}"
    path.write_text(HANDSHAKE + "+0 < . 1:1(0) ack 1 win 514 <md5 0001>\n")
    with pytest.raises(CaseError, match=r"md5.pkt:9:\d+: .*16-byte MD5 digest"):
        load(path)


@needs_root
def test_agree_refuses_a_missing_corpus_or_binary_in_one_line(tmp_path, capsys):
    from harness import cli
    assert cli.main(["agree", str(tmp_path / "none")]) == 2
    assert cli.main(["agree", str(tmp_path), "--packetdrill", str(tmp_path / "pd")]) == 2
    err = capsys.readouterr().err
    assert "none: not a folder" in err and "pd: not an executable file" in err
