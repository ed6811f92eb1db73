"""Accurate ECN's notation in packetdrill scripts (RFC 9768): the AE flag, the ACE counter
written as a digit, the AccECN option's two orders, and the errors each can give."""

from __future__ import annotations

import pytest

from harness.errors import CaseError
from harness.loader import load
from harness.peer import option_text
from harness.tcp import ACK, AE, CWR, ECE, PSH

from tests.conftest import HANDSHAKE


def _last_event(tmp_path, line: str):
    path = tmp_path / "accecn.pkt"
    path.write_text(HANDSHAKE + line + "\n")
    return load(path).events[-1]


def test_the_option_takes_its_kind_and_counter_order_from_its_first_counter(tmp_path):
    event = _last_event(tmp_path, "+0 < . 1:1(0) ack 1 win 514 <ECN e0b 1 ceb 1000 e1b 2,nop>")
    assert event.options[0] == ("raw", 172, bytes.fromhex("000001" "0003e8" "000002"))
    assert option_text(event.options[0]) == "ECN e0b 1 ceb 1000 e1b 2"
    event = _last_event(tmp_path, "+0 < . 1:1(0) ack 1 win 514 <ECN e1b 7,nop,nop,nop>")
    assert event.options[0] == ("raw", 174, bytes.fromhex("000007"))
    assert option_text(event.options[0]) == "ECN e1b 7"


def test_flag_letters_and_the_ace_digit_give_the_same_bits(tmp_path):
    assert _last_event(tmp_path, "+0 < EAP. 1:1(0) ack 1 win 514").flags == ECE | AE | PSH | ACK
    assert _last_event(tmp_path, "+0 < P.5 1:1(0) ack 1 win 514").flags == ECE | AE | PSH | ACK
    assert _last_event(tmp_path, "+0 < P6. 1:1(0) ack 1 win 514").flags == CWR | AE | PSH | ACK


@pytest.mark.parametrize("line, where, words", [
    ("+0 < . 1:1(0) ack 1 win 514 <ECN ceb 1>", r"9:34", r"e0b or e1b after ECN"),
    ("+0 < . 1:1(0) ack 1 win 514 <ECN e0b 16777216>", r"9:38", r"AccECN counter 16777216 does not fit its 24-bit field"),
    ("+0 < . 1:1(0) ack 1 win 514 <ECN e1b 1 e0b 1>", r"9:40", r"',' or '>' in the TCP options"),
    ("+0 < E.5 1:1(0) ack 1 win 514", r"9:6", r"conflicting TCP flag '5'"),
])
def test_a_malformed_accecn_field_names_its_place(tmp_path, line, where, words):
    path = tmp_path / "bad.pkt"
    path.write_text(HANDSHAKE + line + "\n")
    with pytest.raises(CaseError, match=rf"bad.pkt:{where}: .*{words}"):
        load(path)
