"""index.html: the whole report as one self-contained page (inline CSS, JS and SVG).

Sections: the run (version, host, targets, sysctls), verdict totals, coverage figures per
RFC and level, the requirement x target matrix with its filters, and one collapsed panel
per case. Figures and matrix cells carry data- attributes (data-fig, data-status,
data-target...) so that scripts and tests can read what the page shows.

The page is a pure function of (run metadata, results, pcap policy): rendering it again
from results.json gives the same bytes.
"""

from __future__ import annotations

from collections import defaultdict
from html import escape
from typing import Any

from harness.catalog import Requirement
from harness.report.assets import SCRIPT, STYLE
from harness.report.coverage import (LEVELS, STATUSES, UNTESTED, Coverage, Figures, coverage,
                                     natural_key, run_targets)
from harness.report.merge import merged_from
from harness.report.panel import VERDICT_CLASS, anchor, badge, case_panel, link
from harness.result import CHOICE, FOLLOWS, NOT_APPLICABLE, SKIPPED, VERDICTS, XFAIL, Result

SHORT = {"deviating": "dev.", "unexpected pass": "xpass", "untested": "none",
         "follows later RFC": "later"}


def render(meta: dict[str, Any], results: list[Result], keep_all_pcaps: bool = False) -> str:
    targets = run_targets(meta, results)
    cov = coverage(results, targets)
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>rfcdrill report</title><style>{STYLE}</style></head><body>"
            + _header(meta, results, targets)
            + '<nav><a href="#coverage">Coverage</a> <a href="#matrix">Requirements</a> '
              '<a href="#cases">Cases</a></nav>'
            + _coverage(cov) + _matrix(cov) + _cases(results, targets, keep_all_pcaps)
            + f"<script>{SCRIPT}</script></body></html>\n")


def status_class(status: str) -> str:
    return "st-" + status.replace(" ", "-")


# -- the run -----------------------------------------------------------------------------------

def _header(meta: dict[str, Any], results: list[Result], targets: list[str]) -> str:
    host = meta.get("host", {})
    facts = [("rfcdrill", meta.get("version", "?")), ("started", meta.get("started", "?")),
             ("finished", meta.get("finished", "?")), ("host kernel", host.get("kernel", "?")),
             ("machine", host.get("machine", "?")), ("python", host.get("python", "?")),
             ("targets", ", ".join(targets))]
    if meta.get("interrupted"):
        facts.append(("interrupted by", meta["interrupted"]))
    facts += [("joined from", part) for part in merged_from(meta)]
    dl = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(str(v))}</dd></div>" for k, v in facts)
    totals = "".join(_verdict_totals(t, [r for r in results if r.target == t]) for t in targets)
    envs = "".join(_environment(t, env) for t, env in meta.get("environments", {}).items())
    return (f'<header><h1>rfcdrill report</h1><dl class="meta">{dl}</dl>'
            f'<div class="totals">{totals}</div>{envs}</header>')


def _verdict_totals(target: str, results: list[Result]) -> str:
    counts = "".join(
        f'<span class="badge v-{VERDICT_CLASS[v]}" data-target="{escape(target)}" '
        f'data-verdict-count="{escape(v)}"{"" if any(r.verdict == v for r in results) else " data-zero"}>{sum(r.verdict == v for r in results)} {escape(v)}</span>'
        for v in VERDICTS)
    return (f'<p><strong>{escape(target)}</strong>: {len(results)} results '
            f'{counts}</p>')


def _environment(target: str, env: dict[str, str]) -> str:
    rows = "".join(f"<tr><td>{escape(k)}</td><td><code>{escape(str(v))}</code></td></tr>"
                   for k, v in sorted(env.items()))
    return (f'<details class="env"><summary>Environment of {escape(target)} '
            f'({len(env)} settings)</summary><table>{rows}</table></details>')


# -- coverage figures --------------------------------------------------------------------------

def _coverage(cov: Coverage) -> str:
    per_target = ("covered", *STATUSES)
    groups = "".join(f'<th colspan="{len(per_target) + 1}" class="tgt">{escape(t)}</th>'
                     for t in cov.targets)
    names = "".join(f'<th title="{escape(c)}">{escape(SHORT.get(c, c))}</th>'
                    for c in per_target) + "<th></th>"
    rows = []
    for rfc in cov.rfcs():
        rows.append(_figure_row(cov, rfc, ""))
        rows.extend(_figure_row(cov, rfc, level) for level in LEVELS
                    if cov.figures(None, rfc, level).total)
    rows.append(_figure_row(cov, "", ""))
    return ('<section id="coverage"><h2>Coverage</h2><p class="muted">Requirements of the '
            "catalogue by status. A requirement's status on a target combines all its cases "
            "there, worst first: any fail &rarr; failing, else any error &rarr; error, else any "
            "unexpected pass, else any expected failure &rarr; deviating, else any pass &rarr; "
            'passed, else untested (no case, or all skipped).</p><table class="figures">'
            f'<tr><th rowspan="2">RFC</th><th rowspan="2">level</th><th rowspan="2">total</th>'
            f'<th rowspan="2">wire-testable</th>{groups}</tr><tr>{names * len(cov.targets)}</tr>'
            + "".join(rows) + "</table></section>")


def _figure_row(cov: Coverage, rfc: str, level: str) -> str:
    kind = "level" if level else "rfc" if rfc else "all"
    common = cov.figures(None, rfc or None, level or None)
    cells = [f"<td>{escape('' if level else f'RFC {rfc}' if rfc else 'all')}</td>",
             f"<td>{escape(level)}</td>",
             f'<td data-fig="total">{common.total}</td>',
             f'<td data-fig="wire_testable">{common.wire_testable}</td>']
    for target in cov.targets:
        figures = cov.figures(target, rfc or None, level or None)
        values = {"covered": figures.covered, **figures.by_status}
        cells.extend(f'<td data-target="{escape(target)}" data-fig="{escape(name)}" '
                     f'class="{status_class(name) if n else "zero"}">{n}</td>'
                     for name, n in values.items())
        cells.append(f"<td>{_bar(figures)}</td>")
    return (f'<tr class="fig-{kind}" data-rfc="{escape(rfc)}" data-level="{escape(level)}">'
            + "".join(cells) + "</tr>")


def _bar(figures: Figures) -> str:
    spans = "".join(f'<span class="{status_class(s)}" style="width:{100 * n / figures.total:.2f}%" '
                    f'title="{n} {escape(s)}"></span>'
                    for s, n in figures.by_status.items() if n and s != UNTESTED)
    return f'<div class="bar">{spans}</div>'


# -- the matrix ----------------------------------------------------------------------------------

def _matrix(cov: Coverage) -> str:
    rfcs = "".join(f'<option value="{escape(r)}">RFC {escape(r)}</option>' for r in cov.rfcs())
    levels = "".join(f'<option value="{escape(v)}">{escape(v)}</option>' for v in LEVELS)
    statuses = "".join(f'<option value="{escape(s)}">{escape(s)}</option>' for s in STATUSES)
    shown = "".join(
        f'<p class="shown"><strong>{escape(t)}</strong>: '
        + " ".join(f'<span class="badge {status_class(s)}"><span data-shown-target="{escape(t)}" '
                   f'data-shown-status="{escape(s)}">?</span> {escape(s)}</span>'
                   for s in STATUSES) + "</p>"
        for t in cov.targets)
    targets = "".join(f"<th>{escape(t)}</th>" for t in cov.targets)
    width = 3 + len(cov.targets)
    body = []
    for rfc in cov.rfcs():
        body.append(f'<tr class="group g-rfc"><th colspan="{width}">RFC {escape(rfc)}</th></tr>')
        for section, reqs in cov.sections(rfc).items():
            title = reqs[0].title
            body.append(f'<tr class="group g-section"><th colspan="{width}">'
                        f"{escape(section)} {escape(title)}</th></tr>")
            body.extend(_requirement_row(cov, req) for req in reqs)
    return ('<section id="matrix"><h2>Requirements</h2><form class="filters" id="filters">'
            f'<label>RFC <select name="rfc"><option value="">all</option>{rfcs}</select></label>'
            f'<label>level <select name="level"><option value="">all</option>{levels}</select></label>'
            '<label>status <select name="status"><option value="">any</option>'
            f'<option value="tested">tested</option>{statuses}</select></label>'
            '<label>search <input name="q" type="search" placeholder="id, words, case"></label>'
            '<span id="shown-rows" class="muted"></span></form>'
            f'{shown}<table id="matrix-table"><thead><tr><th>requirement</th><th>level</th>'
            f"<th>summary</th>{targets}</tr></thead><tbody>{''.join(body)}</tbody></table></section>")


def _requirement_row(cov: Coverage, req: Requirement) -> str:
    statuses = [cov.status(req.id, t) for t in cov.targets]
    cases = {r.case_id for t in cov.targets for r in cov.results.get((req.id, t), [])}
    search = " ".join([req.id, req.section, req.title, req.summary, req.level, *sorted(cases)])
    cells = "".join(_cell(cov, req.id, t, s) for t, s in zip(cov.targets, statuses))
    testable = "" if req.wire_testable else ' <span class="muted" title="not wire-testable">(api)</span>'
    return (f'<tr class="req" id="{escape(anchor("req", req.id))}" data-rfc="{escape(req.rfc)}" '
            f'data-level="{escape(req.level)}" data-status="{escape("|".join(statuses))}" '
            f'data-search="{escape(search.lower())}"><td><code>{escape(req.id)}</code></td>'
            f'<td class="level">{escape(req.level)}</td><td>{escape(req.summary)}{testable}</td>'
            f"{cells}</tr>")


def _cell(cov: Coverage, req_id: str, target: str, status: str) -> str:
    runs = cov.results.get((req_id, target), [])
    links = " ".join(link("case", r.case_id, r.case_id) for r in runs)
    reasons = sorted({r.expectation for r in runs if r.verdict == XFAIL and r.expectation}
                     | {f"{r.verdict}: {r.failure.message}" for r in runs
                        if r.verdict in (SKIPPED, NOT_APPLICABLE) and r.failure is not None}
                     | {f"follows {r.follows}" for r in runs if r.verdict == FOLLOWS}
                     | {f"chose: {t.label}" for r in runs if r.verdict == CHOICE
                        for t in r.branches if t.kind == "choice"})
    reason = "".join(f'<div class="reason">{escape(x)}</div>' for x in reasons)
    detail = f'<div class="cases">{links}</div>' if links else ""
    return (f'<td class="cell {status_class(status)}" data-target="{escape(target)}" '
            f'data-status="{escape(status)}"><span class="st">{escape(status)}</span>'
            f"{reason}{detail}</td>")


# -- the cases -----------------------------------------------------------------------------------

def _cases(results: list[Result], targets: list[str], keep_all_pcaps: bool) -> str:
    by_case: dict[str, list[Result]] = defaultdict(list)
    for result in sorted(results, key=lambda r: (natural_key(r.path), r.case_id)):
        by_case[result.case_id].append(result)
    order = {t: i for i, t in enumerate(targets)}
    panels = "".join(case_panel(sorted(runs, key=lambda r: order[r.target]), keep_all_pcaps)
                     for runs in by_case.values())
    choices = "".join(f'<option value="{c}">{escape(v)}</option>'
                      for v, c in VERDICT_CLASS.items())
    return ('<section id="cases"><h2>Cases</h2><form class="filters" id="case-filter">'
            '<label>verdict on any target <select name="verdict"><option value="">any</option>'
            f'{choices}</select></label><span id="shown-cases" class="muted"></span>'
            f'<button type="button" id="expand">expand shown</button>'
            f'<button type="button" id="collapse">collapse all</button></form>'
            f'<p class="legend">{badge(XFAIL, "expected failure")} = a known deviation listed '
            f"in the target's expectations file; {badge(FOLLOWS)} = the target does what a "
            f"later RFC requires instead (which one is shown); {badge(CHOICE)} = it took one "
            "option the RFC leaves open (shown; never a failure).</p>"
            f"{panels}</section>")
