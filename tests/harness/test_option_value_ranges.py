"""getsockopt's value may be a range (`[>=7200]`, `[1..255]`, `[<=0]`): for option values the
RFCs bound without fixing, such as RFC 1122 4.2.3.6's keep-alive interval of "no less than
two hours", or SO_ERROR's "some error" (`[>=1]`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.convert import yaml_to_pkt
from harness.errors import CaseError
from harness.execute import run_one
from harness.grammar import parse_script
from harness.loader import load
from harness.model import SyscallEvent
from harness.result import FAIL, PASS
from harness.values import ValueSet
from tests.conftest import case_yaml, needs_root

SOCKET = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"


def call(line: str) -> SyscallEvent:
    events = parse_script(SOCKET + line, "x.yaml", 10, 3)
    assert isinstance(events[-1], SyscallEvent)
    return events[-1]


def error(line: str) -> str:
    with pytest.raises(CaseError) as caught:
        parse_script(SOCKET + line, "x.yaml", 10, 3)
    return str(caught.value)


def test_ranges_parse_as_sets_and_plain_values_stay_plain() -> None:
    at_least = call("+0 getsockopt(3, IPPROTO_TCP, TCP_KEEPIDLE, [>=7200], [4]) = 0").args[3]
    assert at_least.kind == "array" and at_least.value[0].kind == "set"
    assert 7200 in at_least.value[0].value and 7199 not in at_least.value[0].value
    between = call("+0 getsockopt(3, IPPROTO_TCP, TCP_KEEPIDLE, [60..7200], [4]) = 0").args[3]
    assert between.value[0].value == ValueSet(((60, 7200),)) and str(between) == "[60..7200]"
    plain = call("+0 getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNREFUSED], [4]) = 0").args[3]
    assert plain.value[0].kind == "name"
    struct = call("+0 getsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, [8]) = 0").args[3]
    assert struct.kind == "struct"


def test_range_errors_are_located() -> None:
    assert error("+0 getsockopt(3, IPPROTO_TCP, TCP_KEEPIDLE, [9..3], [4]) = 0") == \
        "x.yaml:11:48: range 9..3 ends before it starts"
    assert error("+0 getsockopt(3, IPPROTO_TCP, TCP_KEEPIDLE, [>=1, 2], [4]) = 0").startswith(
        "x.yaml:11:51: expected ']' after the range")


def test_a_range_has_no_packetdrill_syntax(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(case_yaml("c", SOCKET + "+0 getsockopt(3, SOL_SOCKET, SO_ERROR, [<=0], [4]) = 0\n"))
    with pytest.raises(CaseError) as caught:
        yaml_to_pkt(str(path))
    assert "the option value range [<=0] has no packetdrill syntax" in str(caught.value)


@needs_root
@pytest.mark.parametrize("value, verdict", [("[>=7200]", PASS), ("[7200..7200]", PASS),
                                            ("[>=7201]", FAIL), ("[<=7199]", FAIL)])
def test_a_range_passes_every_value_in_it_and_fails_the_rest(write_case, value: str,
                                                            verdict: str) -> None:
    script = SOCKET + f"+0 getsockopt(3, IPPROTO_TCP, TCP_KEEPIDLE, {value}, [4]) = 0\n"
    result = run_one(load(write_case("case.yaml", case_yaml("case", script))), "stack")
    assert result.verdict == verdict, result.failure
    if verdict == FAIL:
        assert result.failure.message == f"option value is 7200, expected {value}"
