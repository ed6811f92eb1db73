"""Any text or bytes given to the grammar, the loader or `rfcdrill check` are valid or a
CaseError at a place in that input, never another exception, within bounded time.

Property tests (hypothesis) over the three, and the short profile of the mutation fuzzer
(harness/fuzz.py) over the project's own cases and scripts; its long profile is
`python -m harness.fuzz --inputs 20000` (README, "Bad input")."""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from harness import fuzz
from harness.cli import cmd_check
from harness.errors import CaseError
from harness.grammar import parse_program
from harness.loader import load, load_pkt, load_yaml

LIMIT = 5.0     # seconds for one input; fuzz.isolated enforces memory in the mutation profile
PROPERTY = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Pieces of the script grammar, so that random text reaches past the first token.
TOKENS = ["0", "+0", "+.1", "*", "~", "...", "<", ">", "S", "S.", "P.", "F.", "R", ".", "0:0(0)",
          "1:1001(1000)", "ack", "win", "urg", "65535", "70000", "<mss 1460>", "mss", "wscale",
          "nop", "sackOK", "TS", "val", "ecr", "sack", "1:2", "opt", "len", "0x0102", "[", "]",
          "(", ")", "{", "}", ",", "=", ":", ";", "|", "socket(..., SOCK_STREAM, IPPROTO_TCP)",
          "write", "read", "close", "setsockopt", "SOL_SOCKET", "SO_LINGER", "htons", "-1",
          "EINPROGRESS", '"', '"abc"', "\\", "\\u12", "\\x", "%{", "}%", "`", "`true`", "assert",
          "state", "ESTABLISHED", "tcpi_rto", "==", "icmp", "unreachable", "frag_needed", "mtu",
          "tos", "0x1ff", "ttl", "id", "ect0", "src", "192.0.2.1", "::1", "40001>8080", "FO",
          "\n", " ", "//", "/*", "*/", "#", "99999999999999999999", "9" * 70, "065535", "02",
          "1e400", "nan", "\t", "\r", "é", "\0"]
script_text = st.lists(st.sampled_from(TOKENS), max_size=60).map(" ".join) | st.text(max_size=400)
YAML_HEAD = "id: fuzz\nrequirements: [rfc793:transition:LISTEN:syn]\nscript: |\n"


def judged(action, text: str | bytes, file: str) -> None:
    """`action` returns or raises a CaseError placed inside `text`, within LIMIT seconds."""
    started = time.monotonic()
    lines = (text.count("\n") if isinstance(text, str) else text.count(b"\n")) + 1
    try:
        action()
    except CaseError as exc:
        assert exc.loc is not None and exc.loc.file == file, str(exc)
        assert 1 <= exc.loc.line <= lines and exc.loc.col >= 1, str(exc)
    assert time.monotonic() - started < LIMIT


@PROPERTY
@given(script_text)
def test_the_grammar_takes_any_text(text):
    judged(lambda: parse_program(text, "x.pkt"), text, "x.pkt")


@PROPERTY
@given(script_text)
def test_the_loader_takes_any_script_in_a_yaml_case(text):
    body = "".join(f"  {line}\n" for line in text.split("\n"))
    document = YAML_HEAD + body
    judged(lambda: load_yaml(document, "x.yaml"), document, "x.yaml")


@PROPERTY
@given(st.text(max_size=600) | st.lists(st.sampled_from(
    ["id: x", "requirements:", "script:", "steps:", "- ", "  ", "&a", "*a", "[", "]", "{", "}",
     ":", ",", "'", '"', "!!binary", "!!python/object", "<<:", "---", "~", ".nan", "\n",
     "tolerance:", "usecs:", "sysctl:", "net.ipv4.tcp_sack:", "options:", "mtu:", "9" * 5000]),
    max_size=80).map("".join))
def test_the_loader_takes_any_yaml(text):
    judged(lambda: load_yaml(text, "x.yaml"), text, "x.yaml")


@PROPERTY
@given(script_text)
def test_the_loader_takes_any_pkt(text):
    judged(lambda: load_pkt(text, "x.pkt"), text, "x.pkt")


@PROPERTY
@given(st.binary(max_size=400), st.sampled_from(["case.yaml", "case.pkt"]))
def test_any_bytes_in_a_file_load_or_fail_at_a_place(tmp_path_factory, data, name):
    path = tmp_path_factory.mktemp("bytes") / name
    path.write_bytes(data)
    judged(lambda: load(path), data, str(path))


@PROPERTY
@given(st.binary(max_size=300), script_text)
def test_check_takes_a_folder_of_anything(tmp_path_factory, data, text):
    folder: Path = tmp_path_factory.mktemp("check")
    (folder / "a.yaml").write_bytes(data)
    (folder / "b.pkt").write_text(text)
    (folder / "expectations").mkdir()
    (folder / "expectations" / "kernel.yaml").write_bytes(data)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        assert cmd_check([str(folder)], {}) in (0, 1)
    assert "2 case files checked" in out.getvalue()


def test_the_mutation_fuzzers_short_profile_finds_nothing_wrong():
    wrong: list[str] = []
    tally = fuzz.fuzz(count=240, seed=20261205, report=wrong.append)
    assert tally.tried == 240 and tally.errors > 0 and tally.valid > 0
    assert wrong == [] and tally.wrong == 0
