"""Any bytes as a segment, in any state: the stack raises nothing and keeps its TCB's
invariants (the short profile of `python -m stack.fuzz`, under hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stack import fuzz, seqnum
from stack.events import State

SHORT = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_each_state_is_reached_with_its_invariants_holding() -> None:
    for state in fuzz.STATES:
        for options in (False, True):
            scene = fuzz.Scene(state, options)
            assert scene.reached is state
            assert fuzz.problems(scene.host) == []


def test_a_broken_tcb_is_found() -> None:
    scene = fuzz.Scene(State.ESTABLISHED, True)
    conn = scene.connection()
    conn.snd_una = seqnum.add(conn.snd_nxt, 1)
    conn.rcv_nxt = seqnum.add(conn.rcv_adv, 1)
    found = " ".join(fuzz.problems(scene.host))
    assert "send sequence out of order" in found and "RCV.WND < 0" in found


def test_an_exception_in_the_stack_is_found(monkeypatch) -> None:
    def crash(self, packet: bytes) -> None:
        raise IndexError("deliberate")
    monkeypatch.setattr(fuzz.Host, "receive", crash)
    found = fuzz.check(State.LISTEN, False, "packet", b"")
    assert len(found) == 1 and found[0].startswith("raised:") and "deliberate" in found[0]


@SHORT
@given(state=st.sampled_from(fuzz.STATES), options=st.booleans(),
       shape=st.sampled_from(fuzz.SHAPES), data=st.binary(max_size=200))
def test_any_bytes_in_any_state_break_nothing(state: State, options: bool, shape: str,
                                              data: bytes) -> None:
    assert fuzz.check(state, options, shape, data) == []


@SHORT
@given(state=st.sampled_from(fuzz.STATES), options=st.booleans(),
       head=st.binary(min_size=9, max_size=9), payload=st.binary(max_size=1500))
def test_any_segment_near_the_windows_breaks_nothing(state: State, options: bool, head: bytes,
                                                     payload: bytes) -> None:
    assert fuzz.check(state, options, "segment", head + payload) == []


def test_the_long_run_says_how_many_inputs_it_tried_and_found_wrong(capsys) -> None:
    assert fuzz.main(["--inputs", "60", "--seed", "3"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "60 inputs tried (seed 3), 0 found wrong"
