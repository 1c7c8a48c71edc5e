"""The status page's script (:mod:`edgekit.stream.page`), plain JavaScript: polls ``/latest``
(every 0.5 s), ``/history.json`` and ``/events.json`` (every 2 s), swaps in frame N with its own
boxes as SVG, and draws the charts as inline SVG. ``{{PALETTE}}`` is filled in by
:func:`~edgekit.stream.page.render` (the colours of :mod:`edgekit.stream.draw`)."""

SCRIPT = """const PALETTE = [{{PALETTE}}];
const $ = (id) => document.getElementById(id);
const NS = "http://www.w3.org/2000/svg";
function color(label) {  // the same hash as edgekit/stream/draw.py
  let h = 0;
  for (let i = 0; i < label.length; i++) h = (Math.imul(h, 31) + label.charCodeAt(i)) >>> 0;
  return PALETTE[h % PALETTE.length];
}
function el(tag, attrs, parent, text) {
  const e = document.createElementNS(NS, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}
let shown = -1, pending = -1, bucket = null;
function drawBoxes(r, w, h) {
  const svg = $("boxes");
  svg.innerHTML = "";
  svg.setAttribute("viewBox", "0 0 " + w + " " + h);
  const fs = Math.max(12, h / 24);
  for (const d of (r && r.detections) || []) {
    const [x0, y0, x1, y1] = d.box, c = color(d.label);
    el("rect", {x: x0, y: y0, width: Math.max(0, x1 - x0), height: Math.max(0, y1 - y0),
      fill: "none", stroke: c, "stroke-width": 4, "vector-effect": "non-scaling-stroke"}, svg);
    const sp = d.classes && d.classes.length ? d.classes[0] : null;  // a cascade's species
    const text = d.label + " " + Math.round(100 * d.score) + "%"
      + (sp ? ": " + sp.label + " " + Math.round(100 * sp.score) + "%" : "");
    const ty = y0 - fs * 1.25 >= 0 ? y0 - fs * 1.25 : y0;
    el("rect", {x: x0, y: ty, width: fs * 0.62 * text.length + fs * 0.5, height: fs * 1.25,
      fill: c}, svg);
    el("text", {x: x0 + fs * 0.25, y: ty + fs, "font-size": fs, fill: "#000"}, svg, text);
  }
}
function showFrame(r) {  // load frame r.frame, then swap it in with its own boxes
  if (!r || r.frame === shown || r.frame === pending) return;
  pending = r.frame;
  const img = new Image();
  img.onload = () => {
    $("snap").src = img.src; shown = r.frame;
    document.querySelector(".live").style.setProperty("--ar", img.naturalWidth / img.naturalHeight);
    drawBoxes(r, img.naturalWidth, img.naturalHeight);
  };
  img.onerror = () => { pending = -1; };
  img.src = "/snapshot.jpg?f=" + r.frame;
}
function chips(counts) {
  const box = $("chips");
  box.innerHTML = "";
  for (const [label, n] of Object.entries(counts || {})) {
    const c = document.createElement("span"), i = document.createElement("i");
    const b = document.createElement("b");
    c.className = "chip"; i.style.background = color(label); b.textContent = n;
    c.append(i, document.createTextNode(label + " "), b); box.appendChild(c);
  }
}
async function refresh() {
  try {
    const d = await (await fetch("/latest", {cache: "no-store"})).json();
    const r = d.result, s = d.stats;
    if (r) {
      if (r.detections) {
        const parts = Object.entries(r.counts).map(([k, n]) => n + " " + k);
        $("label").textContent = parts.length ? parts.join(" · ") : "nothing in view";
        chips(d.in_view || r.counts);
      } else {
        $("label").textContent = r.label === null ? "(nothing above threshold)" : r.label;
        chips(Object.fromEntries(r.classes.map(c => [c.label,
          (100 * c.score).toFixed(1) + "%"])));
      }
      $("frame").textContent = r.frame;
      showFrame(r);
    }
    $("fps").textContent = s.fps.toFixed(1);
    if (s.latency_ms.p50 === null) $("latency").textContent = "-";
    else {
      const p99 = document.createElement("small");
      p99.textContent = " / " + Math.round(s.latency_ms.p99);
      $("latency").replaceChildren(Math.round(s.latency_ms.p50), p99);
    }
    $("inference").textContent = s.inference_ms.p50 === null ? "-" : fmtNum(s.inference_ms.p50);
    $("dropped").textContent = s.dropped;
    $("backend").textContent = (d.backend || "?") + (d.degraded ? " DEGRADED" : "");
    const m = d.model;  // the bundle serving now (hot reload: edgekit.stream.reload)
    $("model").textContent = m ? [m.bundle.split("/").pop(), (m.sha256 || "").slice(0, 12),
      m.reloads ? "reloaded " + m.reloads + "x" : ""].filter(Boolean).join(" · ") : "";
    devices(d.devices || []);
    $("health").textContent = d.healthy ? "frames flowing" : "NO FRAMES";
    $("health").className = "badge " + (d.healthy ? (d.degraded ? "warn" : "ok") : "bad");
    $("reason").textContent = d.healthy ? "" : (d.reason || d.state || "");
    devicePanel(d.device_health, d.healing);
    if (bucket === null) setSpan(s.uptime_s < 600 ? 1 : 10);
  } catch (e) {
    $("health").textContent = "server unreachable"; $("health").className = "badge bad";
  }
}
function devicePanel(h, heal) {  // link health per Edge TPU, the Pi's power, self-healing
  const rows = [];
  for (const x of (h && h.devices) || []) {
    const k = x.kernel;
    rows.push([x.device + " " + x.port + " " + x.ids, (x.speed_mbps || "?") + " Mb/s, " +
      (k ? k.resets + " USB resets since boot" : "resets unknown") + ", autosuspend " +
      (x.autosuspend || "?"), x.findings.length ? "fault" : "recover"]);
  }
  const p = h && h.power;
  if (p && (p.throttled !== null || p.hwmon_alarm !== null))
    rows.push(["Pi power", p.throttled_hex ? "get_throttled=" + p.throttled_hex :
      "under-voltage alarm " + (p.hwmon_alarm ? "ON" : "off"), (p.now && p.now.length) ||
      p.hwmon_alarm ? "fault" : "recover"]);
  const dr = h && h.drift;
  if (dr && dr.ratio !== null) rows.push(["latency drift", dr.ratio.toFixed(2) + "x the first " +
    "minute", dr.ratio >= 1.5 ? "fault" : "recover"]);
  if (heal) rows.push(["self-healing", heal.state + ", " + heal.recovered + " recovered, " +
    heal.failed + " failed", heal.state === "failed" || heal.state === "limited" ? "fault" :
    "recover"]);
  for (const f of (h && h.findings) || []) rows.push(["fix", f.fix, "fault"]);
  $("devcard").hidden = rows.length === 0;
  $("device").replaceChildren(...rows.map(([a, b, cls]) => {
    const li = document.createElement("li"), t = document.createElement("b");
    li.className = cls; t.textContent = a + ": "; li.append(t, document.createTextNode(b));
    return li;
  }));
}
function devices(list) {  // one row per worker/device (edgekit.stream.pool)
  $("tpucard").hidden = list.length === 0;
  const rows = [["device", "state", "fps", "inference ms", "frames", "restarts"]];
  for (const x of list) rows.push([x.device, x.state, x.fps.toFixed(1),
    x.inference_ms === null ? "-" : fmtNum(x.inference_ms), x.frames, x.restarts]);
  $("devices").replaceChildren(...rows.map((r, i) => {
    const tr = document.createElement("tr");
    if (i > 0 && list[i - 1].state !== "running") tr.className = "down";
    for (const v of r) {
      const td = document.createElement(i ? "td" : "th");
      td.textContent = String(v);
      tr.appendChild(td);
    }
    return tr;
  }));
}
function fmtNum(v) { return v >= 100 ? Math.round(v) : +v.toPrecision(3); }
function chart(svg, t, series, fixedMax) {
  const W = svg.clientWidth || 600, H = svg.clientHeight || 120, L = 34, B = 14;
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  svg.innerHTML = "";
  let max = fixedMax || 0;
  for (const s of series) for (const v of s.values) if (v !== null && v > max) max = v;
  max = max > 0 ? max * 1.15 : 1;
  const n = t.length, x = (i) => L + (W - L - 4) * (n > 1 ? i / (n - 1) : 1);
  const y = (v) => 4 + (H - B - 8) * (1 - v / max);
  for (const f of [0, 0.5, 1]) {
    el("line", {x1: L, x2: W - 4, y1: y(max * f / 1.15), y2: y(max * f / 1.15),
      stroke: "#30363d"}, svg);
    el("text", {x: L - 4, y: y(max * f / 1.15) + 4, "text-anchor": "end"}, svg,
      fmtNum(max * f / 1.15));
  }
  const span = n > 1 ? t[n - 1] - t[0] : 0;
  el("text", {x: L, y: H - 2}, svg, span >= 3000 ? "-1 h" : "-" + Math.round(span / 60) + " min");
  el("text", {x: W - 4, y: H - 2, "text-anchor": "end"}, svg, "now");
  for (const s of series) {
    let pts = [];
    const flush = () => {
      if (pts.length === 1) el("circle", {cx: pts[0][0], cy: pts[0][1], r: 2, fill: s.color}, svg);
      else if (pts.length) el("polyline", {points: pts.join(" "), fill: "none",
        stroke: s.color, "stroke-width": 2, "stroke-linejoin": "round"}, svg);
      pts = [];
    };
    s.values.forEach((v, i) => { if (v === null) flush(); else pts.push([x(i), y(v)]); });
    flush();
  }
}
async function history() {
  if (bucket === null) return;
  try {
    const h = await (await fetch("/history.json?res=" + bucket, {cache: "no-store"})).json();
    chart($("c-fps"), h.t, [{values: h.fps, color: "#3fb950"}]);
    chart($("c-lat"), h.t, [{values: h.latency_ms, color: "#58a6ff"},
                            {values: h.latency_max_ms, color: "#f0883e"}]);
    const labels = Object.keys(h.labels);
    chart($("c-labels"), h.t, labels.map(k => ({values: h.labels[k], color: color(k)})));
    $("legend").innerHTML = "";
    for (const k of labels) {
      const s = document.createElement("span"), i = document.createElement("i");
      i.style.background = color(k); s.append(i, document.createTextNode(k));
      $("legend").appendChild(s);
    }
  } catch (e) {}
}
const KIND = {label_appeared: "appeared", tpu_restored: "recover", source_reconnected: "recover",
  backend_reopened: "recover", worker_restarted: "recover", mqtt_connected: "recover",
  source_lost: "fault", source_failed: "fault", cpu_fallback: "fault", inference_error: "fault",
  decode_error: "fault", tpu_still_failing: "fault", worker_crashed: "fault",
  worker_hung: "fault", mqtt_disconnected: "fault", device_recovered: "recover",
  device_reset_started: "fault", device_reset_failed: "fault", device_reset_limited: "fault",
  usb_reset: "fault", usb_link_slow: "fault", undervoltage: "fault", latency_drift: "fault",
  model_reloaded: "recover", reload_failed: "fault"};
async function events() {
  try {
    const list = await (await fetch("/events.json?limit=40", {cache: "no-store"})).json();
    const ul = $("events");
    ul.innerHTML = "";
    for (const e of list) {
      const li = document.createElement("li");
      if (e.thumb) {
        const im = document.createElement("img"); im.src = e.thumb; li.appendChild(im);
      }
      const div = document.createElement("div"), k = document.createElement("span");
      k.className = "k " + (KIND[e.event] || (/fault|crash|hung|lost|error|fail/.test(e.event)
        ? "fault" : ""));
      k.textContent = e.event.replace(/_/g, " ");
      const m = document.createElement("b"), t = document.createElement("small");
      m.textContent = " " + e.message;
      t.textContent = new Date(e.time * 1000).toLocaleTimeString();
      div.append(k, m, t); li.appendChild(div); ul.appendChild(li);
    }
  } catch (e) {}
}
function setSpan(b) {
  bucket = b;
  for (const btn of document.querySelectorAll("#spans button"))
    btn.className = +btn.dataset.s === b ? "on" : "";
  history();
}
for (const btn of document.querySelectorAll("#spans button"))
  btn.onclick = () => setSpan(+btn.dataset.s);
function tick() { $("clock").textContent = new Date().toLocaleTimeString(); }
refresh(); events(); tick();
setInterval(refresh, 500); setInterval(history, 2000); setInterval(events, 2000);
setInterval(tick, 1000);
"""
