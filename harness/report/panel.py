"""A case's panel in index.html: its verdict on each target, and for each run the failure,
the ladder diagram, the timeline of steps and the link to the pcap.

Every piece of text from a result is escaped here; nothing from a case reaches the page raw.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from harness.report import ladder, pcap
from harness.record import ADAPTER_STDERR
from harness.result import (CHOICE, ERROR, FAIL, FOLLOWS, INTERRUPTED, NOT_APPLICABLE, PASS, SKIPPED,
                            XFAIL, XPASS, Failure, Result, Step)

VERDICT_CLASS = {PASS: "pass", FOLLOWS: "follows", CHOICE: "choice", FAIL: "fail", XFAIL: "xfail",
                 XPASS: "xpass", ERROR: "error", SKIPPED: "skipped", INTERRUPTED: "interrupted",
                 NOT_APPLICABLE: "skipped"}


def anchor(kind: str, name: str) -> str:
    """An element id for a case or requirement; ids may hold anything but whitespace."""
    return f"{kind}-" + "_".join(name.split())


def link(kind: str, name: str, text: str) -> str:
    return f'<a href="#{escape(quote(anchor(kind, name), safe=":/"))}">{escape(text)}</a>'


def badge(verdict: str, text: str = "") -> str:
    return f'<span class="badge v-{VERDICT_CLASS[verdict]}">{escape(text or verdict)}</span>'


def case_panel(runs: list[Result], keep_all_pcaps: bool) -> str:
    """One <details> for a case, holding its runs on every target (collapsed)."""
    first = runs[0]
    verdicts = " ".join(VERDICT_CLASS[r.verdict] for r in runs)
    badges = "".join(badge(r.verdict, f"{r.target}: {r.verdict}"
                           + (" (untrusted timing)" if r.timing else "")) for r in runs)
    reqs = ", ".join(link("req", q, q) for q in first.requirements) or "none"
    return (f'<details class="case" id="{escape(anchor("case", first.case_id))}" '
            f'data-verdicts="{verdicts}"><summary>{badges} <code>{escape(first.case_id)}</code>'
            f' <span class="title">{escape(first.title)}</span></summary>'
            f'<p class="path">{escape(first.path)}</p><p>Requirements: {reqs}</p>'
            + "".join(_run(r, keep_all_pcaps) for r in runs) + "</details>")


def _run(result: Result, keep_all_pcaps: bool) -> str:
    parts = [f'<section class="run"><h4>{badge(result.verdict)} on '
             f'{escape(result.target)} <span class="muted">in {result.duration:.3f} s</span></h4>']
    if result.timing:
        parts.append(f'<p class="expectation timing" data-timing="untrusted">'
                     f'{escape(result.timing)}</p>')
    if result.verdict == NOT_APPLICABLE:
        parts.append(f'<p class="expectation">Not applicable on {escape(result.target)}: '
                     f'{escape(result.expectation)}</p>')
    elif result.expectation:
        kind = "Follows " + result.follows if result.verdict == FOLLOWS else "Expected deviation"
        parts.append(f'<p class="expectation">{escape(kind)} on {escape(result.target)}: '
                     f'{escape(result.expectation)}</p>')
    parts.extend(f'<p class="branches" data-branch="{escape(t.label)}" data-kind="{escape(t.kind)}">'
                 f"{escape(t.describe())}</p>" for t in result.branches)
    if result.failure is not None and result.verdict not in (SKIPPED, NOT_APPLICABLE):
        parts.append(_failure_box(result.failure))
    if pcap.kept(result, keep_all_pcaps):
        name = pcap.name(result)
        parts.append(f'<p><a class="pcap" href="{escape(quote(name))}">{escape(name)}</a> '
                     f'<span class="muted">({len(result.packets)} packets)</span></p>')
    if result.packets:
        parts.append(ladder.svg(result.packets, result.failure, result.target))
    if result.timeline:
        parts.append(_timeline(result.timeline, result.failure))
    stderr = result.environment.get(ADAPTER_STDERR)
    if stderr:
        parts.append(f'<details class="stderr"><summary>What the adapter wrote on stderr</summary>'
                     f'<pre>{escape(stderr)}</pre></details>')
    parts.append("</section>")
    return "".join(parts)


def _failure_box(failure: Failure) -> str:
    """The failure in the script's terms: message, line, expected vs actual, field diff."""
    where = f"line {failure.line}: " if failure.line else ""
    rows = [f'<p class="message">{escape(where + failure.message)}</p>']
    for name, text in (("script line", failure.script_line), ("expected", failure.expected),
                       ("actual", failure.actual)):
        if text:
            rows.append(f'<div class="kv"><span>{name}</span><code>{escape(text)}</code></div>')
    if failure.diff:
        rows.append('<table class="diff"><tr><th>field</th><th>expected</th><th>actual</th></tr>'
                    + "".join(f"<tr><td>{escape(d['field'])}</td><td>{escape(d['expected'])}</td>"
                              f"<td>{escape(d['actual'])}</td></tr>" for d in failure.diff)
                    + "</table>")
    return '<div class="failure">' + "".join(rows) + "</div>"


def _timeline(steps: list[Step], failure: Failure | None) -> str:
    rows = "".join(
        f'<tr class="k-{escape(s.kind)}"><td>{s.time:.6f}</td>'
        f'<td>{"" if s.due is None else f"{s.due:.6f}"}</td><td>{s.line}</td>'
        f"<td>{escape(s.kind)}</td><td><code>{escape(s.text)}</code></td>"
        f"<td>{escape(s.note)}</td></tr>" for s in steps)
    if failure is not None and failure.line:
        rows += (f'<tr class="failed"><td></td><td></td><td>{failure.line}</td><td>failed</td>'
                 f"<td><code>{escape(failure.script_line)}</code></td>"
                 f"<td>{escape(failure.message)}</td></tr>")
    return ('<details class="timeline"><summary>Timeline: '
            f'{len(steps)} steps</summary><table><tr><th>time (s)</th><th>due</th><th>line</th>'
            f"<th>kind</th><th>script</th><th>note</th></tr>{rows}</table></details>")
