"""The stylesheet and the script that html.py inlines into index.html (no network, no CDN).

The script filters the requirement matrix (RFC, level, status, text), counts the statuses of
the rows it shows into the data-shown-* spans, keeps the filter in the URL (#f:rfc=793&...),
filters the case panels by verdict, and opens the panel a link points at.
"""

STYLE = """
:root{--pass:#2e7d32;--fail:#c62828;--xfail:#b26a00;--xpass:#6a1b9a;--error:#8d3c00;--skip:#757575;
--interrupted:#455a64;--later:#00695c;--choice:#1565c0}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1360px;
padding:0 16px 40px;color:#1d2327;background:#fafafa}
h1{margin:16px 0 4px}h2{border-bottom:2px solid #cfd8dc;padding-bottom:2px;margin-top:28px}
code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
nav{position:sticky;top:0;background:#fafafa;padding:6px 0;border-bottom:1px solid #e0e0e0;z-index:2}
nav a{margin-right:16px}
.meta{display:flex;flex-wrap:wrap;gap:2px 18px;margin:6px 0}
.meta div{white-space:nowrap}.meta dt{display:inline;color:#546e7a}.meta dd{display:inline;margin:0 0 0 5px}
.muted{color:#78909c}
table{border-collapse:collapse;background:#fff}
td,th{border:1px solid #e0e0e0;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#eceff1}
.figures td[data-fig]{text-align:right;font-variant-numeric:tabular-nums}
.figures th{text-align:center;font-size:12px}.figures th.tgt{font-size:14px;background:#cfd8dc}
.figures tr.fig-rfc td,.figures tr.fig-all td{font-weight:600;background:#f5f7f8}
.figures td.zero{color:#cfd8dc}.figures td{padding:2px 5px}.figures td:first-child{white-space:nowrap}
.figures td:nth-child(2){white-space:nowrap}.badge[data-zero]{opacity:.35}
.bar{display:flex;width:80px;height:10px;background:#e0e0e0;border-radius:2px;overflow:hidden;margin-top:4px}
.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;margin:1px 2px;
color:#fff;background:var(--skip);white-space:nowrap}
.v-pass,.st-passed{background:var(--pass)}.v-fail,.st-failing{background:var(--fail)}
.v-xfail,.st-deviating{background:var(--xfail)}.v-xpass,.st-unexpected-pass{background:var(--xpass)}
.v-error,.st-error{background:var(--error)}.v-skipped,.st-untested{background:var(--skip)}
.v-interrupted{background:var(--interrupted)}
.v-follows,.st-follows-later-RFC{background:var(--later)}.v-choice,.st-choice{background:var(--choice)}
.figures td[class^="st-"]{background:none}
.figures td.st-passed{color:var(--pass)}.figures td.st-failing{color:var(--fail)}
.figures td.st-deviating{color:var(--xfail)}.figures td.st-unexpected-pass{color:var(--xpass)}
.figures td.st-error{color:var(--error)}
.figures td.st-follows-later-RFC{color:var(--later)}.figures td.st-choice{color:var(--choice)}
.filters{display:flex;gap:14px;align-items:center;flex-wrap:wrap;margin:8px 0}
.shown{margin:4px 0}
#matrix-table{width:100%}
#matrix-table .g-rfc th{background:#37474f;color:#fff;font-size:15px}
#matrix-table .g-section th{background:#eceff1;font-weight:600}
#matrix-table td.level,#matrix-table td:first-child{white-space:nowrap}
td.cell{min-width:110px;font-size:12.5px}
td.cell .st{font-weight:600}
td.cell.st-passed{background:#e8f5e9;color:var(--pass)}td.cell.st-failing{background:#ffebee;color:var(--fail)}
td.cell.st-deviating{background:#fff3e0;color:var(--xfail)}
td.cell.st-unexpected-pass{background:#f3e5f5;color:var(--xpass)}
td.cell.st-error{background:#fbe9e7;color:var(--error)}
td.cell.st-follows-later-RFC{background:#e0f2f1;color:var(--later)}td.cell.st-choice{background:#e3f2fd;color:var(--choice)}
.branches{color:var(--later)}td.cell.st-untested{background:#fff;color:#9e9e9e}
td.cell .reason{color:#5d4037;font-weight:normal}td.cell .cases a{margin-right:4px}
details.case{background:#fff;border:1px solid #e0e0e0;border-radius:4px;margin:4px 0;padding:4px 8px}
details.case>summary{cursor:pointer}details.case .title{color:#455a64}
details.case[open]{box-shadow:0 1px 4px #0002}
.run{border-top:1px solid #eceff1;padding:6px 0}
.run h4{margin:4px 0}
.path{color:#78909c;font-size:12px;margin:4px 0}
.expectation{color:var(--xfail)}
.failure{border-left:4px solid var(--fail);background:#fff5f5;padding:6px 10px;margin:6px 0}
.failure .message{font-weight:600;margin:0 0 4px}
.kv{display:grid;grid-template-columns:90px 1fr}.kv span{color:#78909c}
table.diff{margin-top:4px}table.diff td:nth-child(2){color:var(--pass)}table.diff td:nth-child(3){color:var(--fail)}
.timeline table{font-size:12.5px}.timeline tr.failed td{background:#ffebee}
svg.ladder{display:block;margin:6px 0;max-width:100%;height:auto;background:#fff}
svg.ladder .rail{stroke:#90a4ae;stroke-width:2}
svg.ladder .rail-name{font:600 13px system-ui,sans-serif;fill:#37474f}
svg.ladder .time{font:11px ui-monospace,monospace;fill:#78909c}
svg.ladder .seg{font:12px ui-monospace,monospace}
svg.ladder .none{font:12px system-ui,sans-serif;fill:#9e9e9e}
button{font:inherit}
"""

SCRIPT = """
(function () {
  "use strict";
  var form = document.getElementById("filters");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#matrix-table tbody tr"));
  var shownRows = document.getElementById("shown-rows");

  function readHash() {
    var h = decodeURIComponent(location.hash.slice(1));
    if (h.indexOf("f:") !== 0) return;
    h.slice(2).split("&").forEach(function (pair) {
      var kv = pair.split("="), field = form.elements[kv[0]];
      if (field && kv.length === 2) field.value = kv[1];
    });
  }

  function writeHash(state) {
    var parts = Object.keys(state).filter(function (k) { return state[k]; })
      .map(function (k) { return k + "=" + state[k]; });
    var hash = parts.length ? "#f:" + parts.join("&") : "";
    if (location.hash.indexOf("#f:") === 0 || hash) history.replaceState(null, "", hash || location.pathname);
  }

  function hasStatus(statuses, wanted) {
    if (wanted !== "tested") return statuses.indexOf(wanted) >= 0;
    return statuses.some(function (s) { return s !== "untested"; });
  }

  function filterMatrix(updateHash) {
    var st = {rfc: form.elements.rfc.value, level: form.elements.level.value,
              status: form.elements.status.value, q: form.elements.q.value.trim().toLowerCase()};
    var counts = {}, visible = 0, total = 0, section = false, rfc = false;
    for (var i = rows.length - 1; i >= 0; i--) {
      var row = rows[i];
      if (row.classList.contains("g-section")) { row.hidden = !section; section = false; continue; }
      if (row.classList.contains("g-rfc")) { row.hidden = !rfc; rfc = false; continue; }
      total++;
      var d = row.dataset, show = (!st.rfc || d.rfc === st.rfc) && (!st.level || d.level === st.level) &&
        (!st.status || hasStatus(d.status.split("|"), st.status)) &&
        (!st.q || d.search.indexOf(st.q) >= 0);
      row.hidden = !show;
      if (!show) continue;
      visible++; section = rfc = true;
      row.querySelectorAll("td.cell").forEach(function (cell) {
        var key = cell.dataset.target + "|" + cell.dataset.status;
        counts[key] = (counts[key] || 0) + 1;
      });
    }
    document.querySelectorAll("[data-shown-status]").forEach(function (span) {
      span.textContent = counts[span.dataset.shownTarget + "|" + span.dataset.shownStatus] || 0;
    });
    shownRows.textContent = visible + " of " + total + " requirements shown";
    shownRows.dataset.visible = visible;
    if (updateHash) writeHash(st);
  }

  var caseForm = document.getElementById("case-filter");
  var cases = Array.prototype.slice.call(document.querySelectorAll("details.case"));
  function filterCases() {
    var want = caseForm.elements.verdict.value, shown = 0;
    cases.forEach(function (c) {
      var show = !want || c.dataset.verdicts.split(" ").indexOf(want) >= 0;
      c.hidden = !show; if (show) shown++;
    });
    document.getElementById("shown-cases").textContent = shown + " of " + cases.length + " cases shown";
  }

  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1)), el = id && document.getElementById(id);
    if (!el) return;
    var panel = el.closest("details.case");
    if (panel) { panel.hidden = false; panel.open = true; }
    if (el.hidden) { el.hidden = false; }
    el.scrollIntoView();
  }

  form.addEventListener("input", function () { filterMatrix(true); });
  form.addEventListener("submit", function (e) { e.preventDefault(); });
  caseForm.addEventListener("change", filterCases);
  document.getElementById("expand").addEventListener("click", function () {
    cases.forEach(function (c) { if (!c.hidden) c.open = true; });
  });
  document.getElementById("collapse").addEventListener("click", function () {
    cases.forEach(function (c) { c.open = false; });
  });
  window.addEventListener("hashchange", function () { readHash(); filterMatrix(false); openTarget(); });
  readHash();
  filterMatrix(false);
  filterCases();
  openTarget();
})();
"""
