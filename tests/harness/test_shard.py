"""`rfcdrill run --shard K/N` and `rfcdrill report merge`: the parts of a suite partition it,
the split does not depend on the order of the inputs, and the shards' results merged are the
unsharded run's."""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

import pytest

from harness import shard
from harness.suite import case_files, jobs_for
from tests.conftest import needs_root
from tests.harness.test_cli import rfcdrill

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ["stack", "stack-alt"]


def suite_jobs():
    return [job for path in case_files([str(ROOT / "cases")]) for job in jobs_for(path, TARGETS)]


@pytest.mark.parametrize("text, problem", [
    ("0/3", "K must be 1 to N (3), not 0"), ("4/3", "K must be 1 to N (3), not 4"),
    ("1/0", "N must be 1 to 1000, not 0"), ("2", "is not K/N"), ("a/b", "is not K/N"),
    ("1/3/4", "is not K/N"), ("-1/3", "is not K/N")])
def test_a_bad_shard_is_one_clear_line(text: str, problem: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(problem)):
        shard.parse(text)
    assert shard.parse(" 2/3 ") == (2, 3)


def test_the_shards_partition_the_suite_whatever_the_order() -> None:
    jobs = suite_jobs()
    ids = {j.case_id for j in jobs}
    assert len(ids) > 200
    shuffled = list(jobs)
    random.Random(7).shuffle(shuffled)
    for n in (1, 2, 3, 7):
        parts = [{j.case_id for j in shard.select(jobs, k, n)} for k in range(1, n + 1)]
        assert set().union(*parts) == ids
        assert sum(map(len, parts)) == len(ids)          # no case in two parts
        again = [{j.case_id for j in shard.select(shuffled, k, n)} for k in range(1, n + 1)]
        assert again == parts
        # Every run of a case (targets, IP versions) goes with it.
        for k, part in enumerate(parts, 1):
            assert [j for j in shard.select(jobs, k, n)] == [j for j in jobs if j.case_id in part]


def test_the_shards_carry_about_equal_timelines() -> None:
    jobs = suite_jobs()
    weights = shard.weights(jobs)
    where = shard.assign(jobs, 4)
    loads = [sum(w for c, w in weights.items() if where[c] == k) for k in range(1, 5)]
    # Largest first, each to the lightest part: no part exceeds another by more than the
    # heaviest single case.
    assert max(loads) - min(loads) <= max(weights.values())


def _verdicts(path: Path) -> dict[tuple[str, str], tuple]:
    data = json.loads(path.read_text())
    return {(r["case_id"], r["target"]): (r["verdict"], r["raw_verdict"], r["expectation"],
                                          (r["failure"] or {}).get("message"),
                                          json.dumps(r["branches"]))
            for r in data["results"]}


@needs_root
def test_merged_shards_give_the_unsharded_verdicts(tmp_path: Path) -> None:
    cases = str(ROOT / "cases" / "rfc793")
    common = [cases, "-q", *[a for t in TARGETS for a in ("--target", t)]]
    whole = rfcdrill("run", *common, "--json", str(tmp_path / "all.json"))
    assert whole.returncode in (0, 1), whole.stderr
    parts = []
    for k in (1, 2, 3):
        done = rfcdrill("run", *common, "--shard", f"{k}/3", "--json", str(tmp_path / f"{k}.json"))
        assert done.returncode in (0, 1), done.stderr
        assert f"shard {k}/3:" in done.stdout
        parts.append(str(tmp_path / f"{k}.json"))
        assert json.loads((tmp_path / f"{k}.json").read_text())["run"]["shard"] == f"{k}/3"
    merged = rfcdrill("report", "merge", *parts, "--report", str(tmp_path / "report"))
    assert merged.returncode == 0, merged.stderr
    assert _verdicts(tmp_path / "report" / "results.json") == _verdicts(tmp_path / "all.json")
    assert len(_verdicts(tmp_path / "all.json")) == 2 * len(case_files([cases]))
    meta = json.loads((tmp_path / "report" / "results.json").read_text())["run"]
    assert meta["targets"] == TARGETS and [i["shard"] for i in meta["inputs"]] == ["1/3", "2/3", "3/3"]
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert f"joined from {parts[1]} shard 2/3: stack, stack-alt" in summary
    html = (tmp_path / "report" / "index.html").read_text()
    assert "joined from" in html and "<th>stack-alt</th>" in html
    assert (tmp_path / "report" / "junit.xml").is_file()

    # The same file twice adds nothing; a case with two different results is an error naming both.
    again = rfcdrill("report", "merge", *parts, parts[0], "--report", str(tmp_path / "again"))
    assert again.returncode == 0 and _verdicts(tmp_path / "again" / "results.json") == \
        _verdicts(tmp_path / "all.json")
    data = json.loads(Path(parts[0]).read_text())
    data["results"][0]["verdict"] = "fail" if data["results"][0]["verdict"] != "fail" else "pass"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data))
    clash = rfcdrill("report", "merge", parts[0], str(other), "--report", str(tmp_path / "x"))
    first = data["results"][0]
    assert clash.returncode == 2
    assert f"{first['case_id']} on {first['target']} is in both {parts[0]}" in clash.stderr
    assert str(other) in clash.stderr and "Traceback" not in clash.stderr


def test_merge_needs_results_files(tmp_path: Path) -> None:
    one = rfcdrill("report", "merge", "a.json", "--report", str(tmp_path / "r"))
    assert one.returncode == 2 and "two or more results.json files (given 1)" in one.stderr
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "empty.json").write_text('{"run": {}, "results": []}')
    bad = rfcdrill("report", "merge", str(tmp_path / "empty.json"), str(tmp_path / "bad.json"),
                   "--report", str(tmp_path / "r"))
    assert bad.returncode == 2 and f"{tmp_path / 'bad.json'}:1:2: not JSON" in bad.stderr
    two = rfcdrill("report", "a.json", "b.json", "--out", str(tmp_path / "r"))
    assert two.returncode == 2 and "rfcdrill report merge a.json b.json" in two.stderr


@needs_root
def test_runs_of_one_target_on_two_machines_merge_under_new_names(tmp_path: Path) -> None:
    cases = str(ROOT / "cases" / "rfc793" / "reset")
    hosts = []
    for host in ("a", "b"):
        done = rfcdrill("run", cases, "-q", "--target", "stack", "--json", str(tmp_path / f"{host}.json"))
        assert done.returncode in (0, 1), done.stderr
        hosts.append(str(tmp_path / f"{host}.json"))
    clash = rfcdrill("report", "merge", *hosts, "--report", str(tmp_path / "x"))
    if clash.returncode == 0:       # two identical runs are one; make them differ
        data = json.loads(Path(hosts[1]).read_text())
        data["results"][0]["duration"] = data["results"][0].get("duration", 0) + 1
        Path(hosts[1]).write_text(json.dumps(data))
        clash = rfcdrill("report", "merge", *hosts, "--report", str(tmp_path / "x"))
    assert clash.returncode == 2 and f"--rename {hosts[1]}:stack=NEW" in clash.stderr

    merged = rfcdrill("report", "merge", *hosts, "--rename", f"{hosts[1]}:stack=stack@b",
                      "--report", str(tmp_path / "r"))
    assert merged.returncode == 0, merged.stderr
    meta = json.loads((tmp_path / "r" / "results.json").read_text())["run"]
    assert meta["targets"] == ["stack", "stack@b"] and set(meta["environments"]) == {"stack", "stack@b"}
    by_target = _verdicts(tmp_path / "r" / "results.json")
    ours = {case: verdict for (case, target), verdict in by_target.items() if target == "stack@b"}
    assert ours == {case: verdict for (case, target), verdict in _verdicts(Path(hosts[1])).items()}
    assert "<th>stack@b</th>" in (tmp_path / "r" / "index.html").read_text()


@pytest.mark.parametrize("rename, problem", [
    ("{b}:stack", "expected FILE:TARGET=NEW"), ("{b}:=x", "expected FILE:TARGET=NEW"),
    ("other.json:stack=x", "FILE one of the files merged"),
    ("{b}:kernel=x", "has no target kernel (its targets: stack)")])
def test_a_bad_rename_is_one_clear_line(tmp_path: Path, rename: str, problem: str) -> None:
    run = {"run": {"targets": ["stack"], "environments": {"stack": {}}}, "results": []}
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(run))
    b.write_text(json.dumps(run))
    done = rfcdrill("report", "merge", str(a), str(b), "--rename", rename.format(b=b),
                    "--report", str(tmp_path / "r"))
    assert done.returncode == 2 and problem in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
