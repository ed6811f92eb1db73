"""Case files: YAML with `script:` or `steps:`, the schema, the catalogue, and error positions."""

from __future__ import annotations

import pytest

from harness.errors import CaseError
from harness.loader import load
from harness.model import PacketEvent, SyscallEvent

from tests.conftest import case_yaml

SCRIPT = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 listen(3, 1) = 0\n"


def load_error(write_case, text: str) -> str:
    path = write_case("bad.yaml", text)
    with pytest.raises(CaseError) as info:
        load(path)
    return str(info.value).replace(str(path), "bad.yaml")


def test_script_case_loads_with_its_metadata(write_case):
    path = write_case("ok.yaml", case_yaml("ok-case", SCRIPT, extra="title: A title\n"
                                            "tolerance: {usecs: 1000, percent: 5}\n"
                                            "targets: [kernel]\n"))
    script = load(path)
    assert script.id == "ok-case" and script.title == "A title" and script.targets == ["kernel"]
    assert script.tolerance.usecs == 1000 and script.tolerance.percent == 5
    assert script.sysctl["net.ipv4.tcp_sack"] == 0
    assert [type(e) for e in script.events] == [SyscallEvent, SyscallEvent]


def test_script_lines_keep_their_place_in_the_file(write_case):
    path = write_case("pos.yaml", case_yaml("pos", SCRIPT + "+0 bogus(1) = 0\n"))
    with pytest.raises(CaseError) as info:
        load(path)
    # The script block starts on line 8 of the file; its lines are indented by two spaces.
    assert str(info.value).startswith(f"{path}:10:6: not supported: bogus")


def test_steps_load_into_the_same_events_as_script_lines(write_case):
    steps = """id: steps-case
requirements: [rfc793:transition:LISTEN:syn]
steps:
  - "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3"
  - at: "+0.1"
    inject: {flags: S, seq: 0, win: 65535, options: [[mss, 1460], [wscale, 7]], tos: 0xe0}
  - at: "+0"
    expect: {flags: S., seq: 0, ack: 1, options: "<mss 1460,wscale *>"}
  - at: "+0"
    assert: {fd: 3, state: SYN_RECV}
  - at: "+0"
    call: "close(3) = 0"
"""
    script = load(write_case("steps.yaml", steps))
    inject, expect = script.events[1], script.events[2]
    assert isinstance(inject, PacketEvent) and inject.ip == {"tos": 0xE0}
    assert inject.options == [("mss", 1460), ("wscale", 7)] and inject.win == 65535
    assert expect.direction == ">" and expect.ack == 1
    assert script.events[3].checks == [("state", "==", "SYN_RECV")]
    assert script.events[1].loc.line == 5


@pytest.mark.parametrize("text, expected", [
    (case_yaml("x", SCRIPT, requirements="rfc793:no-such-rule"),
     "bad.yaml:2:16: unknown requirement id 'rfc793:no-such-rule'"),
    (case_yaml("x", SCRIPT, extra="colour: blue\n"),
     "bad.yaml:1:1: unknown key 'colour' in the case"),
    ("id: x\nrequirements: [rfc793:transition:LISTEN:syn]\n",
     "bad.yaml:1:1: a case needs exactly one of 'script'"),
    ("id: x\nrequirements: [rfc793:transition:LISTEN:syn]\nsysctl: {a: {b: 1}}\nscript: '0 listen(3, 1) = 0'\n",
     "bad.yaml:3:13: sysctl.a:"),
    ("id: [x\n", "bad.yaml:2:1: YAML syntax"),
    (case_yaml("x", "0 listen(3, 1) = 0\n0.5 listen(3, 1) = 0\n0.2 close(3) = 0\n"),
     "bad.yaml:10:3: time goes backwards: 0.2 is before the previous event at 0.5"),
    (case_yaml("x", "0 < S 0:10(0) win 1\n"), "bad.yaml:8:9: sequence numbers do not add up"),
    (case_yaml("x", "0 setsockopt(3, SOL_SOCKET, SO_NOPE, [1], 4) = 0\n"),
     "bad.yaml:8:31: unknown name 'SO_NOPE'"),
    ("id: x\nrequirements: [rfc793:transition:LISTEN:syn]\nsteps:\n  - at: 0\n    inject: {flags: Q}\n",
     "bad.yaml:4:5: expected TCP flags"),
])
def test_every_mistake_is_reported_at_its_place(write_case, text, expected):
    message = load_error(write_case, text)
    assert message.startswith(expected), message


def test_a_missing_file_is_a_case_error(tmp_path):
    with pytest.raises(CaseError, match="cannot read the file: No such file"):
        load(tmp_path / "missing.yaml")
