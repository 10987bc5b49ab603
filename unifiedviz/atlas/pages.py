"""The atlas's HTML: index pages (a sortable, filterable table of units) and one page per unit.

Pages are self-contained: CSS and JavaScript inline, images as relative PNG paths, no network,
so the folder opens from disk (file://) and can be copied anywhere. Every value shown is
escaped; numbers sort by their `data-` attributes (NaN, e.g. a dead unit's selectivity, last).
"""
from __future__ import annotations

import html
import math

from .metrics import COLUMNS

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
header,main,nav.pages,.controls{max-width:1100px;margin:0 auto;padding:0 16px}
header{padding-top:14px}h1{font-size:20px;margin:6px 0}h2{font-size:16px;margin:22px 0 8px}
.meta{color:#555;margin:2px 0 10px}code{font:13px ui-monospace,Menlo,Consolas,monospace}
a{color:#0a58ca;text-decoration:none}a:hover{text-decoration:underline}
table{border-collapse:collapse;width:100%;background:#fff;margin:8px 0 24px}
th,td{border-bottom:1px solid #e3e3e3;padding:4px 8px;text-align:right;vertical-align:middle}
th:first-child,td:first-child{text-align:left}
th[data-key]{cursor:pointer;user-select:none;white-space:nowrap;background:#f0f0f3}
th[data-key]:hover{background:#e4e6ee}th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}
img.thumb{width:48px;height:48px;image-rendering:pixelated;display:block;margin:auto;border:1px solid #ddd}
.controls input{width:min(640px,100%);padding:6px 8px;font-size:14px}
.controls{display:flex;gap:12px;align-items:center;margin-top:6px}#shown{color:#555}
nav.pages a,nav.pages span{margin-right:6px}nav.pages span{font-weight:600}
.gallery{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;background:#fff;padding:6px;border:1px solid #e3e3e3}
figure img{display:block;image-rendering:pixelated;height:96px}figcaption{font-size:12px;color:#444;margin-top:3px}
figure img.plot{height:auto;image-rendering:auto;max-width:100%}
dl.stats{display:grid;grid-template-columns:max-content auto;gap:2px 14px;margin:8px 0}dt{color:#555}dd{margin:0}
button{font-size:13px;padding:3px 9px;margin-left:8px;cursor:pointer}.note{color:#555;font-size:13px}
.dead{color:#a00}h1 code{font-size:20px}
"""

INDEX_JS = """
(function(){
  var table=document.getElementById('units'),body=table.tBodies[0],heads=table.querySelectorAll('th[data-key]');
  function value(row,key,type){var v=row.getAttribute('data-'+key);
    if(type==='text')return v;var n=parseFloat(v);return isNaN(n)?null:n;}
  heads.forEach(function(th){th.addEventListener('click',function(){
    var key=th.getAttribute('data-key'),type=th.getAttribute('data-type');
    var dir=th.getAttribute('aria-sort')==='descending'?'ascending':'descending';
    heads.forEach(function(h){h.removeAttribute('aria-sort');});th.setAttribute('aria-sort',dir);
    var sign=dir==='ascending'?1:-1,rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){var x=value(a,key,type),y=value(b,key,type);
      if(x===null&&y===null)return 0;if(x===null)return 1;if(y===null)return -1;
      if(type==='text')return sign*x.localeCompare(y,undefined,{numeric:true});return sign*(x-y);});
    rows.forEach(function(r){body.appendChild(r);});});});
  var input=document.getElementById('filter'),shown=document.getElementById('shown');
  var alias={max:'max',sel:'sel',selectivity:'sel',classes:'classes',poly:'poly',polysemantic:'poly'};
  function test(row,term){
    var m=/^([a-z]+)(<=|>=|<|>|=)(.+)$/.exec(term);
    if(m&&alias[m[1]]){var v=parseFloat(row.getAttribute('data-'+alias[m[1]]));
      var t=m[3]==='yes'?1:m[3]==='no'?0:parseFloat(m[3]);if(isNaN(v)||isNaN(t))return false;
      return m[2]==='<'?v<t:m[2]==='>'?v>t:m[2]==='<='?v<=t:m[2]==='>='?v>=t:v===t;}
    return row.getAttribute('data-address').toLowerCase().indexOf(term)>=0;}
  function apply(){var terms=input.value.toLowerCase().split(/\\s+/).filter(Boolean),n=0;
    Array.prototype.forEach.call(body.rows,function(r){var ok=terms.every(function(t){return test(r,t);});
      r.hidden=!ok;if(ok)n++;});shown.textContent=n+' of '+body.rows.length+' units shown';}
  input.addEventListener('input',apply);apply();
})();
"""

COPY_JS = """
(function(){
  var button=document.getElementById('copy'),code=document.getElementById('address');
  function done(){button.textContent='copied';setTimeout(function(){button.textContent='copy address';},1500);}
  function fallback(){var range=document.createRange();range.selectNodeContents(code);
    var sel=window.getSelection();sel.removeAllRanges();sel.addRange(range);
    try{if(document.execCommand('copy'))done();}catch(e){}}
  button.addEventListener('click',function(){
    if(navigator.clipboard&&window.isSecureContext){navigator.clipboard.writeText(code.textContent).then(done,fallback);}
    else{fallback();}});
})();
"""

_FILTER_PLACEHOLDER = "filter, e.g.: latent  sel>0.5  classes<=2  max>1  poly=no"
_FILTER_HELP = ("Filter: words match the unit address (e.g. latent, channel=3); conditions on max, sel, classes "
                "and poly (yes/no) use <, <=, =, >=, >; every term must hold.")


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def number(value, digits: int = 3) -> str:
    """A cell's text: finite numbers rounded, NaN/None as an em dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "\u2014"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}g}"


def _attr(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "nan"
    return str(int(value)) if isinstance(value, bool) else repr(value)


def _page(title: str, body: str, script: str = "") -> str:
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>{_e(title)}</title><link rel=\"icon\" href=\"data:,\"><style>{CSS}</style></head>\n"
            f"<body>\n{body}\n" + (f"<script>{script}</script>\n" if script else "") + "</body></html>\n")


def index_name(page: int) -> str:
    """File name of index page `page` (0-based): index.html, index-2.html, ..."""
    return "index.html" if page == 0 else f"index-{page + 1}.html"


def _pager(page: int, pages: int) -> str:
    if pages < 2:
        return ""
    links = [f"<span>{p + 1}</span>" if p == page else f"<a href=\"{index_name(p)}\">{p + 1}</a>"
             for p in range(pages)]
    return f"<nav class=\"pages\">Pages: {''.join(links)}</nav>"


def index_page(entries: list[dict], *, page: int, pages: int, title: str, meta: str, labelled: bool) -> str:
    """One index page; `entries`: {address, href, thumb, row} with `row` the unit's metrics."""
    heads = ["<th data-key=\"address\" data-type=\"text\">unit</th><th>AM image</th>",
             "<th data-key=\"max\" data-type=\"num\" title=\"highest value over the data\">max activation</th>"]
    keys = {"max_activation": "max", "selectivity": "sel", "classes": "classes", "polysemantic": "poly"}
    if labelled:
        heads += [f"<th data-key=\"{keys[k]}\" data-type=\"num\" title=\"{_e(tip)}\">{_e(h)}</th>"
                  for k, h, tip in COLUMNS[1:]]
    rows = []
    for e in entries:
        r = e["row"]
        data = " ".join(f"data-{keys[k]}=\"{_e(_attr(r.get(k)))}\"" for k in keys if k in r)
        cells = [f"<td><a href=\"{_e(e['href'])}\"><code>{_e(e['address'])}</code></a></td>",
                 f"<td><img class=\"thumb\" src=\"{_e(e['thumb'])}\" alt=\"AM image of {_e(e['address'])}\"></td>",
                 f"<td>{number(r['max_activation'])}</td>"]
        if labelled:
            dead = " class=\"dead\" title=\"dead: no class mean above 0\"" if r.get("dead") else ""
            cells += [f"<td{dead}>{number(r['selectivity'])}</td>", f"<td>{number(r['classes'])}</td>",
                      f"<td>{number(r['polysemantic'])}</td>"]
        rows.append(f"<tr data-address=\"{_e(e['address'])}\" {data}>{''.join(cells)}</tr>")
    body = (f"<header><h1>{_e(title)}</h1><p class=\"meta\">{meta}</p></header>\n{_pager(page, pages)}\n"
            f"<div class=\"controls\"><input id=\"filter\" type=\"search\" placeholder=\"{_e(_FILTER_PLACEHOLDER)}\" "
            f"title=\"{_e(_FILTER_HELP)}\" aria-label=\"filter units\"><span id=\"shown\"></span></div>\n"
            f"<main><table id=\"units\"><thead><tr>{''.join(heads)}</tr></thead>\n<tbody>\n"
            + "\n".join(rows) + "\n</tbody></table>"
            f"<p class=\"note\">{_e(_FILTER_HELP)} Click a column header to sort (again to reverse). Class "
            "selectivity, classes and polysemantic follow superposition.metrics.unit_selectivity on each unit's "
            "values over the data.</p>"
            f"</main>\n{_pager(page, pages)}")
    return _page(title, body, INDEX_JS)


def _figure(src: str, caption: str, alt: str, css: str = "") -> str:
    cls = f" class=\"{css}\"" if css else ""
    return (f"<figure><img{cls} src=\"{_e(src)}\" alt=\"{_e(alt)}\"><figcaption>{_e(caption)}</figcaption>"
            "</figure>")


def unit_page(record: dict, *, index_href: str, prev_href: str | None, next_href: str | None, meta: str) -> str:
    """The page of one unit from its record (see `site.unit_record`); image paths relative to the page."""
    a = record["address"]
    r = record["row"]
    files = record["files"]
    nav = [f"<a href=\"{_e(index_href)}\">\u2190 atlas index</a>"]
    if prev_href:
        nav.append(f"<a href=\"{_e(prev_href)}\">previous unit</a>")
    if next_href:
        nav.append(f"<a href=\"{_e(next_href)}\">next unit</a>")
    stats = [("max activation (data)", number(r["max_activation"]))]
    if "selectivity" in r:
        stats += [("class selectivity", number(r["selectivity"])), ("classes responded to", number(r["classes"])),
                  ("polysemantic", number(r["polysemantic"])), ("dead", number(bool(r["dead"])))]
    stats.append(("AM images' values", ", ".join(number(v) for v in record["am_values"])))
    if record.get("generated_value") is not None:
        stats.append(("learned-prior image's value", number(record["generated_value"])))
    am = [_figure(f, f"seed copy {i}: {number(v)}", f"AM image {i} of {a}")
          for i, (f, v) in enumerate(zip(files["am"], record["am_values"]))]
    if files.get("generated"):
        am.append(_figure(files["generated"], f"learned prior ({record['generator']}): "
                                              f"{number(record['generated_value'])}", f"generator image of {a}"))

    def shots(kind: str) -> str:
        return "".join(_figure(f, f"{e['name']}" + (f" \u00b7 {e['class']}" if "class" in e else "")
                               + f" \u00b7 {number(e['value'])}", f"{kind} exemplar {e['name']}")
                       for f, e in zip(files[kind], record[kind]))

    heat = ("Each exemplar: the image, and beside it the unit's positive value at every position upsampled onto "
            "it (one colour scale per unit)." if record["has_map"] else
            "This unit has no spatial map (a vector entry, a logit or a token unit): exemplars are shown alone.")
    if record["kind"] == "head":
        heat += (" For a head on attention probabilities the overlay is where the head attends (its attention "
                 "to each patch, averaged over queries); on per-head outputs, how strongly it writes each token.")
    means = record.get("class_means")
    means_html = ""
    if means:
        cells = "".join(f"<th>{_e(c)}</th>" for c in means)
        vals = "".join(f"<td>{number(v)}</td>" for v in means.values())
        means_html = (f"<table><thead><tr><th>class</th>{cells}</tr></thead><tbody><tr><td>mean value</td>"
                      f"{vals}</tr></tbody></table>")
    what = record["reads"]
    links = " \u00b7 ".join(nav)
    body = (f"<header><p>{links}</p><h1><code id=\"address\">{_e(a)}</code>"
            f"<button id=\"copy\" type=\"button\">copy address</button></h1><p class=\"meta\">{meta}</p></header>\n"
            f"<main><dl class=\"stats\">{''.join(f'<dt>{_e(k)}</dt><dd>{v}</dd>' for k, v in stats)}</dl>"
            f"<p class=\"note\">{_e(what)}</p>"
            f"<h2>Activation maximisation</h2><div class=\"gallery\">{''.join(am)}</div>"
            f"<h2>Top {len(record['top'])} exemplars</h2><p class=\"note\">{_e(heat)}</p>"
            f"<div class=\"gallery\">{shots('top')}</div>"
            f"<h2>Bottom {len(record['bottom'])} exemplars</h2><div class=\"gallery\">{shots('bottom')}</div>"
            f"<h2>Values over the data</h2><div class=\"gallery\">"
            f"{_figure(files['histogram'], 'per class; dashed: the AM images', f'histogram of {a}', 'plot')}</div>"
            f"{means_html}</main>")
    return _page(f"{a} \u2014 unit atlas", body, COPY_JS)


__all__ = ["index_page", "unit_page", "index_name", "number"]
