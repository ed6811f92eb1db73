"""How well a guest keeps time, measured at its boot, and what its results' timing is worth.

Under software emulation (TCG) a guest's runner injects segments milliseconds late (p99
7.5 ms measured on one machine against a 4 ms tolerance), so a case can fail on timing
because of the VM and not the kernel. The guest measures, before its cases, how late
injected segments leave (harness.bench.measure: the kernel's receive timestamps of segments
the runner meant to inject every 5 ms), and reads which accelerator runs it:

- `trusted`: KVM runs it and the p99 lateness is within half the tolerance the run asked
  for (packetdrill's 4 ms, times --tolerance-scale): the results stand as they are;
- otherwise `untrusted`: the guest runs its cases with no tolerance below twice the worst
  lateness measured (at most MAX_SCALE times the asked-for tolerance; `--tolerance-floor-ms`), the
  part of a tolerance that grows with the gap (12.5 %) staying as asked: the lateness is a few
  milliseconds whatever the gap, and scaling that part too let 6.12's 1 s SYN retransmission
  pass for RFC 6298's doubled 2 s (x5: 12.5 % of 2 s became 1.25 s). Every result
  carries the note (Result.timing, shown in the reports), and a failure on timing (a segment
  early, late or missing by its deadline, a call returning outside its window:
  Failure.timing) that the kernel's expectations do not already name becomes an `error`
  saying so with the measured lateness: never a kernel deviation. So does any other unnamed
  failure of a case in which the guest's runner woke later than that floor (harness.sched's
  lateness of the case): the kernel then answered a late peer.

An emulated CPU is never trusted, however punctual at boot: its timing follows the host's
load, which the one-second measure only samples. On this machine a TCG guest measured p99
1.4 ms at boot (load 3) and its run still had seven cases fail on timing alone (segments
7-35 ms late or early, known VM artefacts), where an hour earlier the same guest measured
p99 7.7 ms and, under load 15-20, a 5.10 guest 55 ms.

The accelerator the guest really runs under is read from inside it: KVM registers its
paravirtual clock (`kvm-clock` among the clock sources); without it the CPU is emulated.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from harness import sched
from harness.bench import percentile
from harness.model import Tolerance
from harness.result import ERROR, FAIL, Result

FILE = "fidelity.json"          # written by the guest into the shared folder
SEGMENTS = 200                  # injected at boot to measure (5 ms apart: about a second)
MARGIN = 2.0                    # the tolerance must hold this many times the lateness
MAX_SCALE = 10.0                # the widest widening, times the asked-for scale
BASE_MS = Tolerance().usecs / 1000   # packetdrill's default tolerance, in ms
CLOCKSOURCES = "/sys/devices/system/clocksource/clocksource0/available_clocksource"

ACCEL_KEY = "vm accelerator (seen in the guest)"
LATENESS_KEY = "vm injection lateness p50 / p99 / max (ms)"
TRUST_KEY = "vm timing"
SCALE_KEY = "vm tolerance scale"


@dataclass(frozen=True)
class Fidelity:
    accelerator: str            # kvm or tcg, as the guest sees itself
    segments: int = 0           # how many injections were measured (0: the measure failed)
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    asked_scale: float = 1.0    # --tolerance-scale of the run
    scale: float = 1.0          # the scale the guest ran its cases with
    trusted: bool = False
    problem: str = ""           # why there is no measure

    def note(self) -> str:
        """What a result of this guest says about its timing ("" when it is trusted)."""
        if self.trusted:
            return ""
        if self.problem:
            return f"untrusted timing: the guest's lateness could not be measured ({self.problem})"
        why = ("an emulated CPU keeps time only as well as the host's load allows"
               if self.accelerator != "kvm" else "more than half the tolerance")
        return (f"untrusted timing: the guest ({self.accelerator}; {why}) injected segments late "
                f"by p99 {self.p99_ms:.2f} ms (max {self.max_ms:.2f} ms) at boot, against a "
                f"tolerance of {BASE_MS * self.asked_scale:g} ms; tolerances widened "
                f"x{self.scale / self.asked_scale:g} (at least {BASE_MS * self.scale:g} ms)")

    def environment(self) -> dict[str, str]:
        lateness = (f"{self.p50_ms:.3f} / {self.p99_ms:.3f} / {self.max_ms:.3f} "
                    f"({self.segments} segments)") if self.segments else f"not measured: {self.problem}"
        return {ACCEL_KEY: self.accelerator, LATENESS_KEY: lateness,
                TRUST_KEY: "trusted" if self.trusted else self.note(), SCALE_KEY: f"{self.scale:g}"}


def judge(accelerator: str, late_ms: list[float], asked_scale: float, problem: str = "") -> Fidelity:
    """The guest's fidelity from its measured lateness (ms per injected segment), and the
    tolerance scale its cases run with."""
    if not late_ms:
        return Fidelity(accelerator, asked_scale=asked_scale, scale=asked_scale,
                        problem=problem or "no segment measured")
    p99, worst = percentile(late_ms, 99), max(late_ms)
    trusted = accelerator == "kvm" and MARGIN * p99 / BASE_MS <= asked_scale
    scale = asked_scale if trusted else min(asked_scale * MAX_SCALE,
                                            float(math.ceil(MARGIN * worst / BASE_MS)))
    return Fidelity(accelerator, len(late_ms), percentile(late_ms, 50), p99, worst,
                    asked_scale, max(scale, asked_scale), trusted)


def guest_accelerator(clocksources: str = CLOCKSOURCES) -> str:
    """"kvm" when the guest runs under KVM (its paravirtual clock is there), else "tcg"."""
    try:
        return "kvm" if "kvm-clock" in Path(clocksources).read_text().split() else "tcg"
    except OSError:
        return "tcg"


def save(out: Path, fidelity: Fidelity) -> None:
    (out / FILE).write_text(json.dumps(asdict(fidelity)))


def load(out: Path) -> Fidelity | None:
    try:
        return Fidelity(**json.loads((out / FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def mark(result: Result, fidelity: Fidelity) -> Result:
    """A guest's result (expectations applied) with its timing judged: in an untrusted guest,
    the note, and a failure left as a deviation turned into an error when it is on timing, or
    when the guest's runner itself woke later in that case than its tolerance floor: a peer
    that acts that late changes what the kernel does (a retransmission for an ACK that came
    late, an RTT sample that holds the lateness), so whatever failed then is not the kernel's."""
    if fidelity.trusted:
        return result
    note = fidelity.note()
    failure = result.failure
    if result.verdict != FAIL or failure is None:
        return replace(result, timing=note)
    late_ms, floor_ms = case_lateness_ms(result), BASE_MS * fidelity.scale
    if failure.timing:
        message = f"{note}; the case failed on timing: {failure.message}"
    elif late_ms > floor_ms:
        message = (f"{note}; the runner itself woke {late_ms:.1f} ms late in this case (more than "
                   f"the {floor_ms:g} ms tolerance), and the case failed: {failure.message}")
    else:
        return replace(result, timing=note)
    return replace(result, verdict=ERROR, timing=note, failure=replace(failure, message=message))


def case_lateness_ms(result: Result) -> float:
    """How late the runner woke, at worst, in this case (harness.sched; 0 when not recorded)."""
    try:
        return float(result.environment.get(sched.CASE_KEY, 0.0))
    except ValueError:
        return 0.0
