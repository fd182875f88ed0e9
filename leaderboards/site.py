"""The static site: one folder of HTML files that opens from disk, no server and no network.

- ``index.html``: the board as a table (click a header to sort, type in the box to filter by
  system name), a quality-versus-latency Pareto plot (inline SVG; the Pareto-optimal systems are
  filled and joined), and the published reference tables, marked "published" with their source;
- ``systems/<id>.html``: one page per system with its full submission manifest (provenance).

Every user-supplied string goes through :func:`html.escape` (quotes included) before it reaches
the page; the script never writes text into the page as HTML (it only reorders and hides rows
and reads numbers from ``data-v`` attributes), so a name like ``<script>`` stays text.
"""

from __future__ import annotations

import json
import math
from html import escape
from typing import Any

CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}th[data-col]{cursor:pointer;background:#f3f3f3}
th.asc::after{content:" \\25B2"}th.desc::after{content:" \\25BC"}.ci{color:#777;font-size:85%}
.published{background:#fff8e0}.tag{font-size:75%;background:#e8b100;color:#000;padding:1px 4px;border-radius:3px}
svg text{font-size:11px}"""

SCRIPT = """(function(){
var table=document.getElementById('board'),body=table.tBodies[0];
function cmp(a,b,col){var x=a.cells[col].getAttribute('data-v'),y=b.cells[col].getAttribute('data-v');
 var nx=parseFloat(x),ny=parseFloat(y);if(!isNaN(nx)&&!isNaN(ny))return nx-ny;
 if(isNaN(nx)&&isNaN(ny))return x.localeCompare(y);return isNaN(nx)?1:-1;}
Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,col){
 if(!th.hasAttribute('data-col'))return;
 th.addEventListener('click',function(){
  var asc=!th.classList.contains('asc');
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(h){h.classList.remove('asc','desc');});
  th.classList.add(asc?'asc':'desc');
  var rows=Array.prototype.slice.call(body.rows);
  rows.sort(function(a,b){var d=cmp(a,b,col);return asc?d:-d;});
  rows.forEach(function(r){body.appendChild(r);});
 });
});
document.getElementById('filter').addEventListener('input',function(e){
 var q=e.target.value.toLowerCase();
 Array.prototype.forEach.call(body.rows,function(r){
  r.style.display=r.getAttribute('data-name').toLowerCase().indexOf(q)>=0?'':'none';});
});
})();"""


def _num(x: Any) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else repr(float(x))


def _fmt(value: Any, low: Any = None, high: Any = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = f"{value:.3g}"
    if low is not None and high is not None and not (math.isnan(low) or math.isnan(high)):
        text += f' <span class="ci">[{low:.3g}, {high:.3g}]</span>'
    return text


def _short(name: str, limit: int = 28) -> str:
    """A plot label: the name, cut to ``limit`` characters with an ellipsis (the tooltip keeps it whole)."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _page(title: str, body: str, script: str = "") -> str:
    js = f"<script>{script}</script>" if script else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{CSS}</style></head><body>\n{body}\n{js}</body></html>\n")  # fmt: skip


def pareto_front(points: list[tuple[float, float]], higher_is_better: bool) -> list[int]:
    """Indices of the points no other point beats on both latency (lower) and quality."""
    front = []
    for i, (x, y) in enumerate(points):
        better = [(x2 <= x and (y2 >= y if higher_is_better else y2 <= y)) and (x2, y2) != (x, y) for x2, y2 in points]
        if not any(better):
            front.append(i)
    return front


def pareto_svg(data: dict[str, Any], width: int = 560, height: int = 360) -> str:
    """Quality (the board's ``quality_metric``) against latency (seconds per clip, log scale)."""
    metric = data["quality_metric"]
    hib = data["metrics"][metric]
    pts = [(s["latency"], s["metrics"][metric]["value"], s["name"]) for s in data["systems"]
           if s["latency"] and s["metrics"].get(metric)]  # fmt: skip
    if not pts:
        return "<p>No system reports its latency.</p>"
    xs, ys = [math.log10(p[0]) for p in pts], [p[1] for p in pts]
    pad = 50
    x0, x1 = min(xs) - 0.1, max(xs) + 0.1
    y0, y1 = min(ys), max(ys)
    y0, y1 = (y0 - 1, y1 + 1) if y0 == y1 else (y0 - 0.08 * (y1 - y0), y1 + 0.08 * (y1 - y0))

    def sx(v: float) -> float:
        return pad + (v - x0) / (x1 - x0) * (width - 2 * pad)

    def sy(v: float) -> float:
        return height - pad - (v - y0) / (y1 - y0) * (height - 2 * pad)

    front = pareto_front([(p[0], p[1]) for p in pts], hib)
    out = [f'<svg id="pareto" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
           f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#444"/>',
           f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#444"/>',
           f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle">seconds per clip (log scale)</text>',
           f'<text x="14" y="{height / 2}" transform="rotate(-90 14 {height / 2})" text-anchor="middle">'
           f'{escape(metric)} ({"higher" if hib else "lower"} is better)</text>']  # fmt: skip
    line = sorted((sx(xs[i]), sy(ys[i])) for i in front)
    if len(line) > 1:
        coords = " ".join(f"{a:.1f},{b:.1f}" for a, b in line)
        out.append(f'<polyline fill="none" stroke="#c33" points="{coords}"/>')
    for i, (lat, val, name) in enumerate(pts):
        on = i in front
        out.append(f'<circle cx="{sx(xs[i]):.1f}" cy="{sy(ys[i]):.1f}" r="5" fill="{"#c33" if on else "#fff"}" '
                   f'stroke="#c33" data-pareto="{str(on).lower()}"><title>{escape(name)}: {val:.3g} at {lat:.3g} s'
                   f'</title></circle><text x="{sx(xs[i]) + 7:.1f}" y="{sy(ys[i]) - 6:.1f}">'
                   f"{escape(_short(name))}</text>")
    for v in (x0 + 0.1, x1 - 0.1):
        out.append(f'<text x="{sx(v):.1f}" y="{height - pad + 15}" text-anchor="middle">{10 ** v:.3g}</text>')
    for v in (y0, y1):
        out.append(f'<text x="{pad - 4}" y="{sy(v):.1f}" text-anchor="end">{v:.3g}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _index(data: dict[str, Any]) -> str:
    metrics, listen = list(data["metrics"]), data["listening_columns"]
    head = ['<th data-col="rank">rank</th>', '<th data-col="system">system</th>',
            '<th data-col="mean_rank">mean rank [95% CI]</th>']  # fmt: skip
    head += [f'<th data-col="{escape(m)}">{escape(m)} {"↑" if data["metrics"][m] else "↓"}</th>' for m in metrics]
    head += [f'<th data-col="{escape(c["key"])}">{escape(c["label"])} {"↑" if c["higher_is_better"] else "↓"}</th>'
             for c in listen]  # fmt: skip
    head.append('<th data-col="latency">seconds per clip</th>')
    rows = []
    for s in data["systems"]:
        o = s["overall"]
        name = escape(s["name"])
        cells = [f'<td data-v="{o["rank"]}">{o["rank"]}</td>',
                 f'<td data-v="{name}"><a href="systems/{escape(s["id"])}.html">{name}</a></td>',
                 f'<td data-v="{_num(o["mean_rank"])}">'
                 f'{_fmt(o["mean_rank"], o["ci_low"], o["ci_high"])}</td>']  # fmt: skip
        for m in metrics:
            c = s["metrics"][m]
            cells.append(f'<td data-v="{_num(c["value"])}">{_fmt(c["value"], c["ci_low"], c["ci_high"])} '
                         f'<span class="ci">#{c["rank"]}</span></td>')  # fmt: skip
        for col in listen:
            c = s["listening"].get(col["key"])
            cells.append('<td data-v="">-</td>' if c is None else
                         f'<td data-v="{_num(c["value"])}">{_fmt(c["value"], c.get("ci_low"), c.get("ci_high"))}</td>')
        cells.append(f'<td data-v="{_num(s["latency"])}">{_fmt(s["latency"])}</td>')
        rows.append(f'<tr data-name="{escape(s["name"])}">' + "".join(cells) + "</tr>")
    p = data["protocol"]
    body = [f"<h1>{escape(data['title'])}</h1>",
            f"<p>Evaluation set <b>{escape(p['eval_set']['name'])}</b>, {p['eval_set']['clips']} clips "
            f"(manifest sha256 <code>{escape(p['eval_set']['manifest_sha256'][:16])}…</code>), "
            f"{escape(p['audio']['channels'])}, {p['audio']['sample_rate']} Hz, {p['audio']['clip_seconds']:g} s, "
            f"best-of-{p['best_of_n']}, loudness: {escape(p['audio']['loudness'])}. Ranks are shared where 95% "
            f"bootstrap CIs overlap; the overall rank is the mean of per-metric ranks with a joint bootstrap CI.</p>",
            '<p><label>Filter systems: <input id="filter" type="search" placeholder="name"></label></p>',
            '<table id="board"><thead><tr>' + "".join(head) + "</tr></thead><tbody>",
            *rows, "</tbody></table>", "<h2>Quality versus latency</h2>", pareto_svg(data)]  # fmt: skip
    pub = data.get("published")
    if pub:
        body.append("<h2>Published reference results</h2><p>Numbers as published in papers, under other "
                    "protocols: not comparable with the board above and never ranked. "
                    f"{escape(pub.get('note', ''))}</p>")
        for t in pub["tables"]:
            body.append(f'<h3>{escape(t["title"])} <span class="tag">published</span></h3>'
                        f'<p>Source: {escape(t["source"])}</p><table class="published"><thead><tr>'
                        + "".join(f"<th>{escape(str(c))}</th>" for c in t["columns"]) + "</tr></thead><tbody>")
            for row in t["rows"]:
                body.append("<tr>" + "".join(f"<td>{escape('-' if v is None else str(v))}</td>" for v in row) + "</tr>")
            body.append("</tbody></table>")
    return _page(data["title"], "\n".join(body), SCRIPT)


def _system(data: dict[str, Any], s: dict[str, Any]) -> str:
    doc = json.dumps(s["submission"], indent=2, sort_keys=True, ensure_ascii=False)
    rows = "".join(f"<tr><th>{escape(m)}</th><td>{_fmt(c['value'], c['ci_low'], c['ci_high'])}</td>"
                   f"<td>#{c['rank']}</td><td>{escape(c['source'])}</td></tr>"
                   for m, c in s["metrics"].items())  # fmt: skip
    body = (f'<p><a href="../index.html">← {escape(data["title"])}</a></p><h1>{escape(s["name"])}</h1>'
            f'<table><tr><th>metric</th><th>value [95% CI]</th><th>rank</th><th>how</th></tr>{rows}</table>'
            f'<h2>Provenance (submission manifest)</h2><pre id="manifest">{escape(doc)}</pre>')  # fmt: skip
    return _page(s["name"], body)


def pages(data: dict[str, Any]) -> dict[str, str]:
    """Relative path → HTML text of every page of the site."""
    out = {"index.html": _index(data)}
    for s in data["systems"]:
        out[f"systems/{s['id']}.html"] = _system(data, s)
    return out
