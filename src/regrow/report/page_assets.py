"""The style sheet and the one script of the HTML pages (`regrow.report.html`).

The script only sorts tables (click a header) and opens a task's row (click or Enter); without
it every row is shown open, so the page reads the same with JavaScript off.
"""

CSS = """
:root { --fg:#1d2330; --muted:#5f6775; --line:#e2e5ea; --bg:#f6f7f9; --card:#fff; --accent:#3b6fd4; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg);
       background:var(--bg); }
header { background:#1d2330; color:#fff; padding:18px 28px; }
header h1 { margin:0; font-size:20px; font-weight:600; }
header code { background:rgba(255,255,255,.12); color:#fff; }
header .meta { margin:6px 0 0; color:#c5cad3; }
main { padding:8px 28px 40px; max-width:1400px; }
h2 { font-size:16px; margin:26px 0 10px; }
h4 { margin:14px 0 4px; }
code { font:12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background:#eef0f4;
       padding:1px 4px; border-radius:3px; }
.cards { display:grid; grid-template-columns:repeat(auto-fill, minmax(190px, 1fr)); gap:10px; margin-top:16px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:10px 14px; }
.card .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.card .value { font-size:24px; font-weight:600; margin:2px 0; }
.sub, .note { color:var(--muted); font-size:12.5px; }
.charts { display:grid; grid-template-columns:repeat(auto-fill, minmax(330px, 1fr)); gap:12px; }
figure { margin:0; background:var(--card); border:1px solid var(--line); border-radius:8px; padding:10px; }
figcaption { font-weight:600; font-size:13px; margin-bottom:4px; }
svg.chart { width:100%; height:auto; display:block; font-size:10px; fill:var(--fg); }
svg .grid { stroke:#eceef2; } svg .axis { stroke:#9aa1ad; } svg .title { fill:var(--muted); font-size:10.5px; }
svg .value { font-size:10px; font-weight:600; }
.split { display:grid; grid-template-columns:minmax(300px, 460px) 1fr; gap:16px; align-items:start; }
.legend { display:flex; flex-wrap:wrap; gap:6px 14px; margin:8px 0; font-size:12.5px; }
.legend i { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:5px; }
table { border-collapse:collapse; background:var(--card); border:1px solid var(--line); }
th, td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#f0f2f5; font-weight:600; font-size:12.5px; white-space:nowrap; }
table.tasks, table.runs, table.matrix { width:100%; }
td.num, table.runs > tbody > tr > td:nth-child(n+3), table.tasks > tbody > tr.main > td:nth-child(n+2) { text-align:right; }
.js table.sortable > thead th { cursor:pointer; user-select:none; }
.js table.sortable > thead th::after { content:" \\2195"; color:#b3b9c3; }
.js table.sortable > thead th[aria-sort=ascending]::after { content:" \\2191"; color:var(--accent); }
.js table.sortable > thead th[aria-sort=descending]::after { content:" \\2193"; color:var(--accent); }
tr.main:hover td { background:#f4f7fd; }
.js tr.main { cursor:pointer; }
.js tbody.task:not(.open) tr.detail { display:none; }
.caret::before { content:"\\25B8"; color:var(--muted); display:inline-block; width:14px; }
.open .caret::before, html:not(.js) .caret::before { content:"\\25BE"; }
tr.detail > td { background:#fafbfc; padding:10px 16px 16px; text-align:left; }
.badge { display:inline-block; color:#fff; border-radius:10px; padding:0 8px; font-size:12px; font-weight:600; }
.badge.none { color:var(--muted); }
section.turn { border-left:3px solid var(--line); padding:2px 0 6px 12px; margin:10px 0; }
.turnhead { display:flex; gap:12px; align-items:center; flex-wrap:wrap; margin-bottom:6px; font-size:12.5px; }
.turnhead > span:not(.badge) { color:var(--muted); }
pre { white-space:pre-wrap; word-break:break-word; font:12px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace;
      background:#fff; border:1px solid var(--line); border-radius:6px; padding:8px 10px; margin:4px 0; }
pre.feedback { background:#fff7f5; border-color:#f3d3cc; max-height:320px; overflow:auto; }
pre.context { max-height:360px; overflow:auto; }
pre.sig { background:#f3f5f8; }
table.diff { width:100%; table-layout:fixed; font:12px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; }
table.diff th { font-family:system-ui, sans-serif; }
table.diff td { border:0; padding:0 6px; white-space:pre-wrap; word-break:break-word; }
table.diff td.ln { width:36px; color:#9aa1ad; text-align:right; user-select:none; background:#f6f7f9; }
table.diff td.del { background:#fdecec; } table.diff td.ins { background:#e8f6ec; }
table.diff td.empty { background:#f6f7f9; }
table.diff del { background:#f6b9b9; text-decoration:none; } table.diff ins { background:#a9e2b9; text-decoration:none; }
.same { color:#2e9d5b; font-weight:400; margin-left:6px; }
ul.tests { margin:4px 0; padding-left:18px; font:12px/1.5 ui-monospace, monospace; }
details > summary { cursor:pointer; color:var(--accent); font-size:12.5px; margin:4px 0; }
td.mark { text-align:center; font-weight:700; } td.mark.solved { color:#2e9d5b; background:#eef8f1; }
td.mark.failed, td.mark.timeout, td.mark.crashed, td.mark.malformed { color:#d64545; background:#fdf0f0; }
td.mark.none { color:#b3b9c3; }
tfoot td { font-weight:600; text-align:center; } tfoot td:first-child { text-align:left; }
"""

SCRIPT = """
document.documentElement.classList.add("js");
document.addEventListener("DOMContentLoaded", function () {
  function key(group, idx) {
    var row = group.tagName === "TBODY" ? group.rows[0] : group;
    var cell = row.cells[idx];
    var v = cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent.trim();
    var n = Number(v);
    return v === "" ? null : (isNaN(n) ? v.toLowerCase() : n);
  }
  function compare(a, b) {
    if (a === null || b === null) { return a === b ? 0 : (a === null ? 1 : -1); }
    if (typeof a === "number" && typeof b === "number") { return a - b; }
    return String(a).localeCompare(String(b));
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, idx) {
      th.tabIndex = 0;
      function sort() {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (o) { o.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var many = table.tBodies.length > 1;
        var parent = many ? table : table.tBodies[0];
        var groups = Array.prototype.slice.call(many ? table.tBodies : table.tBodies[0].rows);
        groups.sort(function (a, b) {
          var ka = key(a, idx), kb = key(b, idx);
          if (ka === null || kb === null) { return compare(ka, kb); }
          return asc ? compare(ka, kb) : compare(kb, ka);
        });
        var foot = many ? table.tFoot : null;
        groups.forEach(function (g) { parent.insertBefore(g, foot); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sort(); } });
    });
  });
  document.querySelectorAll("tr.main").forEach(function (tr) {
    tr.tabIndex = 0;
    tr.setAttribute("aria-expanded", "false");
    function toggle() {
      var open = tr.parentNode.classList.toggle("open");
      tr.setAttribute("aria-expanded", open ? "true" : "false");
    }
    tr.addEventListener("click", toggle);
    tr.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(); }
    });
  });
});
"""
