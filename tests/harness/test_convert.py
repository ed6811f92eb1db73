"""`rfcdrill convert`: every `.pkt` and every YAML case the project ships survives a round
trip through the other format with its meaning intact."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from harness.convert import convert, rfcdrill_only
from harness.errors import CaseError
from harness.loader import load
from harness.model import Script, walk
from harness.suite import case_files

ROOT = Path(__file__).resolve().parent.parent.parent
SHIPPED_PKT = sorted(str(p) for p in ROOT.rglob("*.pkt") if ".venv" not in p.parts)
DEFINES = {"shell-python-defines.pkt": {"SIZE": "500", "MARKER": "/dev/null"}}
SHIPPED_YAML = [p for p in case_files([str(ROOT / "cases")]) if p.endswith((".yaml", ".yml"))]


def _without_places(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_places(v) for k, v in value.items() if k not in ("loc", "text")}
    if isinstance(value, (list, tuple)):
        return [_without_places(v) for v in value]
    return value


def _event(event: object) -> tuple:
    return (type(event).__name__, repr(_without_places(dataclasses.asdict(event))))


def meaning(script: Script) -> dict[str, object]:
    """What the runner acts on, with sysctls read from an init `sysctl -q -w` as well."""
    sysctl = {k: str(v) for k, v in script.sysctl.items()}
    init = script.init_command.command if script.init_command else ""
    m = re.match(r"sysctl -q -w((?: \S+=\S+)+)(?:; (.*))?$", init, re.S)
    if m:
        sysctl.update(pair.split("=", 1) for pair in m.group(1).split())
        init = m.group(2) or ""
    plan = dataclasses.replace(script.plan, ignored=())
    return {"id": script.id, "requirements": script.requirements, "sysctl": sysctl,
            "init": init, "cleanup": script.cleanup_command.command if script.cleanup_command else "",
            "tolerance": script.tolerance, "plan": plan,
            "events": [_event(e) for e in script.events]}


@pytest.mark.parametrize("source", SHIPPED_PKT + SHIPPED_YAML,
                         ids=lambda p: str(Path(p).relative_to(ROOT)))
def test_round_trip_keeps_the_meaning(source, tmp_path):
    other = tmp_path / ("case.yaml" if source.endswith(".pkt") else "case.pkt")
    back = tmp_path / ("back.pkt" if source.endswith(".pkt") else "back.yaml")
    defines = DEFINES.get(Path(source).name)
    only = [e for e in walk(load(source, defines).events) if rfcdrill_only(e)]
    if only and not source.endswith(".pkt"):     # no packetdrill syntax: refused, named
        with pytest.raises(CaseError) as caught:
            convert(source, str(other), defines=defines)
        assert str(caught.value).startswith(f"{source}:{only[0].loc.line}:")
        assert "has no packetdrill syntax" in str(caught.value)
        return
    convert(source, str(other), defines=defines)
    convert(str(other), str(back), defines=defines)
    original = meaning(load(source, defines))
    assert meaning(load(other, defines)) == original
    assert meaning(load(back, defines)) == original


def test_a_list_sysctl_becomes_what_sysctl_w_takes(tmp_path):
    source = tmp_path / "rmem.yaml"
    source.write_text("id: rmem\nrequirements: [rfc9293:MUST-2]\n"
                      "sysctl:\n  net.ipv4.tcp_rmem: [4096, 87380, 6291456]\n"
                      "script: |\n  0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    convert(str(source), str(tmp_path / "rmem.pkt"))
    assert "`sysctl -q -w net.ipv4.tcp_rmem='4096 87380 6291456'`" in (tmp_path / "rmem.pkt").read_text()


def test_a_pkt_without_requirements_needs_them_for_yaml(tmp_path):
    source = tmp_path / "bare.pkt"
    source.write_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    with pytest.raises(CaseError, match="needs requirement ids"):
        convert(str(source), str(tmp_path / "out.yaml"))
    convert(str(source), str(tmp_path / "out.yaml"), ["rfc793:transition:LISTEN:syn"])
    assert load(tmp_path / "out.yaml").requirements == ["rfc793:transition:LISTEN:syn"]


def _loosened(event: object) -> object:
    """An expected segment as --loose writes it: options unchecked (`<...>`)."""
    return dataclasses.replace(event, options=None, any_layout=False, may_lack=frozenset())


@pytest.mark.parametrize("source", SHIPPED_YAML, ids=lambda p: str(Path(p).relative_to(ROOT)))
def test_loose_writes_unsayable_options_unchecked_and_nothing_else(source, tmp_path):
    events = list(walk(load(source).events))
    only = [e for e in events if rfcdrill_only(e)]
    if not only or any(rfcdrill_only(_loosened(e)) for e in only
                       if type(e).__name__ == "PacketEvent"):
        pytest.skip("nothing --loose changes: converts as it is, or is refused as without it")
    if any(type(e).__name__ != "PacketEvent" for e in only):
        with pytest.raises(CaseError) as caught:
            convert(source, str(tmp_path / "case.pkt"), loose=[])
        assert "has no packetdrill syntax" in str(caught.value)
        return
    warnings: list[str] = []
    convert(source, str(tmp_path / "case.pkt"), loose=warnings)
    assert warnings == [f"{e.loc}: {rfcdrill_only(e)} written as <...> (options not checked): "
                        "the .pkt checks less than the case" for e in only]
    lines = {e.loc.line for e in only}
    original = load(source)
    expected = dataclasses.replace(original, events=[
        _loosened(e) if e.loc.line in lines else e for e in original.events])
    assert meaning(load(str(tmp_path / "case.pkt"))) == meaning(expected)
    with pytest.raises(CaseError) as caught:        # without --loose: refused, and told of it
        convert(source, str(tmp_path / "strict.pkt"))
    assert "--loose writes its options as <...>" in str(caught.value)
