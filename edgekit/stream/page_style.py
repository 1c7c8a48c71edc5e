"""The status page's style sheet (:mod:`edgekit.stream.page`): a dark wall-screen layout, the
live frame left, tiles, charts and events right; one column below 900 px wide."""

STYLE = """*{box-sizing:border-box}
html,body{margin:0;height:100%}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#0d1117;color:#e6edf3;
 display:flex;flex-direction:column;font-size:clamp(13px,1.05vw,20px)}
header{display:flex;align-items:center;gap:1em;padding:.5em 1em;background:#161b22;
 border-bottom:1px solid #30363d}
header .name{font-weight:700;font-size:1.2em} header .sub{color:#8b949e}
header .clock{margin-left:auto;font-variant-numeric:tabular-nums;color:#8b949e}
.badge{padding:.15em .7em;border-radius:1em;font-weight:600;font-size:.9em}
.ok{background:#1f6f3f;color:#d2f8dd} .bad{background:#8e1c1c;color:#ffd7d5}
.warn{background:#7a5a00;color:#fff2c2}
main{flex:1;display:grid;grid-template-columns:minmax(0,3fr) minmax(340px,2fr);
 grid-template-rows:minmax(0,1fr);gap:1em;padding:1em;min-height:0}
.col{display:flex;flex-direction:column;gap:.8em;min-height:0;min-width:0;overflow-y:auto}
.live{position:relative;background:#000;border:1px solid #30363d;border-radius:6px;
 overflow:hidden;line-height:0;flex:none;align-self:center;
 width:min(100%,calc((100vh - 12em) * var(--ar,1.333)))}
.live img{width:100%;height:auto;display:block;min-height:200px}
.live svg{position:absolute;left:0;top:0;width:100%;height:100%;pointer-events:none}
.live svg text{font-weight:700;paint-order:stroke}
#label{font-size:2.2em;margin:0;line-height:1.2;overflow-wrap:anywhere}
.chips{display:flex;flex-wrap:wrap;gap:.5em}
.chip{display:flex;align-items:center;gap:.4em;padding:.25em .8em;border-radius:1em;
 background:#21262d;font-size:1.1em} .chip i{width:.8em;height:.8em;border-radius:50%}
.chip b{font-variant-numeric:tabular-nums}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(5.5em,1fr));gap:.5em;flex:none}
.tile{background:#161b22;border:1px solid #30363d;border-radius:6px;padding:.35em .6em;
 overflow:hidden;white-space:nowrap}
.tile small{display:block;color:#8b949e;font-size:.75em}
.tile span{font-size:1.35em;font-weight:600;font-variant-numeric:tabular-nums}
.tile span small{display:inline;font-size:.6em;color:#8b949e}
.card{background:#161b22;border:1px solid #30363d;border-radius:6px;padding:.4em .7em;
 flex:none}
#devices{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums;font-size:.85em}
#devices th{color:#8b949e;font-weight:400;text-align:left}
#devices td,#devices th{padding:.1em .4em .1em 0}
#devices tr.down td{color:#f85149}
.card h2{font-size:.9em;margin:0 0 .2em;color:#8b949e;font-weight:600;display:flex;gap:1em}
.card h2 .legend{margin-left:auto;display:flex;flex-wrap:wrap;gap:.2em .8em;font-weight:400}
.legend span{max-width:14em;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.legend i{display:inline-block;width:.7em;height:.7em;border-radius:2px;margin-right:.3em}
.chart{width:100%;height:6.5em;display:block}
.chart text{fill:#8b949e;font-size:11px}
.span button{background:#21262d;color:#e6edf3;border:1px solid #30363d;border-radius:4px;
 padding:.1em .6em;cursor:pointer;font:inherit} .span button.on{background:#1f6feb}
#events{list-style:none;margin:0;padding:0;overflow-y:auto;flex:1;min-height:0}
#events li{display:flex;gap:.7em;align-items:center;padding:.35em 0;border-top:1px solid #21262d}
#events img{width:6.5em;height:auto;border-radius:3px;flex:none;background:#000}
#events .k{font-size:.75em;padding:.05em .5em;border-radius:1em;background:#30363d}
#events .k.appeared{background:#1f6f3f} #events .k.fault{background:#8e1c1c}
#events .k.recover{background:#1f4f8f}
#events small{color:#8b949e;display:block}
#device{list-style:none;margin:0;padding:0;font-size:.85em}
#device .fault{color:#f0883e} #device .recover{color:#8b949e}
.evcard{display:flex;flex-direction:column;flex:1 0 9em;min-height:9em}
footer{padding:.3em 1em;color:#8b949e;font-size:.8em} a{color:#58a6ff}
@media (max-width:900px){html,body{height:auto} main{grid-template-columns:1fr;
 grid-template-rows:auto} .col{overflow:visible} .live{width:100%} .evcard{flex:none;min-height:0}
 #events{overflow:visible;flex:none}}
"""
