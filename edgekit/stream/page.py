"""The status page: one self-contained HTML file (no framework, no CDN: the Pi may be offline).

Made for a wall screen: the live frame fills the left of the full width with the detection
boxes drawn over it as SVG (boxes of frame N over frame N: ``/snapshot.jpg?f=N``); the right
column holds the tiles (fps, latency, inference, backend), three charts over the last 5 minutes
or hour (fps; latency mean and max; per-label counts) from ``/history.json``, and the recent
events with thumbnails from ``/events.json``. A few lines of plain JavaScript draw the charts
as inline SVG. The reported label (classification) is rendered on the server too, so the page
says something without JavaScript. Its style sheet is :mod:`~.page_style`, its script
:mod:`~.page_script`.
"""

from __future__ import annotations

import html

from edgekit.stream.draw import PALETTE
from edgekit.stream.page_script import SCRIPT
from edgekit.stream.page_style import STYLE


def render(latest: dict, title: str = "edgekit") -> str:
    """The page for the current ``/latest`` dict."""
    r = latest.get("result")
    if r is None:
        label = "waiting for the first frame"
    elif "detections" in r:
        counts = r.get("counts") or {}
        label = " · ".join(f"{n} {k}" for k, n in counts.items()) or "nothing in view"
    else:
        label = "(nothing above threshold)" if r.get("label") is None else str(r["label"])
    palette = ",".join(f'"{c}"' for c in PALETTE)
    return (
        _PAGE.replace("{{LABEL}}", html.escape(label))
        .replace("{{TITLE}}", html.escape(title))
        .replace("{{PALETTE}}", palette)
    )


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{TITLE}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
""" + STYLE + """</style></head><body>
<header><span class="name">{{TITLE}}</span><span class="sub" id="model"></span>
<span id="health" class="badge warn">starting</span><span class="sub" id="reason"></span>
<span class="clock"><span id="frametext">frame <span id="frame">-</span></span> ·
<span id="clock"></span></span></header>
<main>
<div class="col">
 <div class="live"><img id="snap" src="/snapshot.jpg" alt="latest frame">
  <svg id="boxes" preserveAspectRatio="none"></svg></div>
 <h1 id="label">{{LABEL}}</h1>
 <div class="chips" id="chips"></div>
</div>
<div class="col">
 <div class="tiles">
  <div class="tile"><small>fps</small><span id="fps">-</span></div>
  <div class="tile" title="capture to result, p50 / p99"><small>latency ms</small>
   <span id="latency">-</span></div>
  <div class="tile"><small>inference ms</small><span id="inference">-</span></div>
  <div class="tile"><small>dropped</small><span id="dropped">-</span></div>
  <div class="tile"><small>backend</small><span id="backend">-</span></div>
 </div>
 <div class="card"><h2>fps <span class="span" id="spans"><button data-s="1">5 min</button>
  <button data-s="10">1 hour</button></span></h2><svg class="chart" id="c-fps"></svg></div>
 <div class="card"><h2>latency ms <span class="legend"><span><i style="background:#58a6ff">
  </i>mean</span><span><i style="background:#f0883e"></i>max</span></span></h2>
  <svg class="chart" id="c-lat"></svg></div>
 <div class="card"><h2>in view <span class="legend" id="legend"></span></h2>
  <svg class="chart" id="c-labels"></svg></div>
 <div class="card" id="devcard" hidden><h2>device</h2><ul id="device"></ul></div>
 <div class="card" id="tpucard" hidden><h2>Edge TPUs</h2><table id="devices"></table></div>
 <div class="card evcard"><h2>recent events</h2><ul id="events"></ul></div>
</div>
</main>
<footer><a href="/latest">/latest</a> · <a href="/history.json">/history.json</a> ·
<a href="/events.json">/events.json</a> · <a href="/metrics">/metrics</a> ·
<a href="/healthz">/healthz</a> · <a href="/snapshot.jpg?boxes=1">/snapshot.jpg</a></footer>
<script>
""" + SCRIPT + """</script></body></html>
"""
