// The live dashboard served at / of the monitoring endpoint (docs/monitoring.md): served, gapped, KoD and
// denied packets per second as a chart, overload control's state (paper §12: past the redline or not, the
// last second's demand and what is withheld, by class), the top talkers of the MRU list (paper §5's
// elephants), and the blocklist (paper §11) with a remove button. Everything it needs is here and is served by ntpshield itself:
// no CDN, no front-end package, no build step; the page works on an air-gapped host.
//
// The three assets are strings so that they travel with the compiled package (the build compiles .ts files
// only). The page obeys a strict Content-Security-Policy (script and style from this origin only, no inline
// script or style, fetch to this origin only), so the script below builds the DOM with createElement and
// textContent, never innerHTML. It reads /api/stats every second and turns the counters into rates from
// the difference between two readings and the server's own clock (takenAt), so a late timer does not
// distort the rate.
//
// The client script is plain ES2020 in a template literal: it must contain no backquote, and no "${" but the
// one that puts in the number of pools per class (src/defence/overload.ts), so the page cannot disagree.

import { POOLS } from "../../defence/overload.ts";

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ntpshield</title>
<link rel="stylesheet" href="/dashboard.css">
<script src="/dashboard.js" defer></script>
</head>
<body>
<header>
  <h1>ntpshield</h1>
  <span id="server" class="dim"></span>
  <span id="clock" class="dim"></span>
  <span id="uptime" class="dim"></span>
  <span id="overload-badge" class="badge" hidden>overload: past the redline</span>
  <span id="status" class="status offline">connecting</span>
</header>
<main>
  <section class="cards" aria-label="packets per second">
    <div class="card"><div class="label">received/s</div><div class="value" id="rate-received">-</div><div class="total" id="total-received">-</div></div>
    <div class="card served"><div class="label">served/s</div><div class="value" id="rate-served">-</div><div class="total" id="total-served">-</div></div>
    <div class="card gapped"><div class="label">gapped/s</div><div class="value" id="rate-gapped">-</div><div class="total" id="total-gapped">-</div></div>
    <div class="card kod"><div class="label">KoD/s</div><div class="value" id="rate-kod">-</div><div class="total" id="total-kod">-</div></div>
    <div class="card denied"><div class="label">denied/s</div><div class="value" id="rate-denied">-</div><div class="total" id="total-denied">-</div></div>
    <div class="card"><div class="label">MRU records</div><div class="value" id="mru-size">-</div><div class="total" id="mru-capacity">-</div></div>
  </section>
  <section aria-label="chart">
    <h2>Packets per second <span class="dim">(last 2 minutes)</span></h2>
    <div class="legend">
      <span class="key served">served</span><span class="key gapped">gapped</span>
      <span class="key kod">KoD</span><span class="key denied">denied</span>
    </div>
    <canvas id="chart" width="960" height="260" role="img" aria-label="packets per second"></canvas>
  </section>
  <section id="overload" aria-label="overload control">
    <h2>Overload control <span class="dim">(paper §12: past the redline, mice first, the rest withheld by rotating pools)</span></h2>
    <div class="overload">
      <dl>
        <dt>past the redline</dt><dd id="overload-active">-</dd>
        <dt>redline</dt><dd id="overload-redline">-</dd>
        <dt>demand (last second)</dt><dd id="overload-demand">-</dd>
        <dt>times entered</dt><dd id="overload-entered">-</dd>
      </dl>
      <table id="overload-classes">
        <thead><tr><th>class</th><th class="num">demand (last second)</th><th class="num">pools withheld</th><th class="num">requests withheld</th></tr></thead>
        <tbody>
          <tr data-class="mice"><td>mice</td><td class="num" id="overload-demand-mice">-</td><td class="num" id="overload-pools-mice">-</td><td class="num" id="overload-withheld-mice">-</td></tr>
          <tr data-class="known"><td>known</td><td class="num" id="overload-demand-known">-</td><td class="num" id="overload-pools-known">-</td><td class="num" id="overload-withheld-known">-</td></tr>
          <tr data-class="new"><td>new</td><td class="num" id="overload-demand-new">-</td><td class="num" id="overload-pools-new">-</td><td class="num" id="overload-withheld-new">-</td></tr>
        </tbody>
      </table>
    </div>
  </section>
  <div class="columns">
    <section aria-label="top talkers">
      <h2>Top talkers <span class="dim">(most packets in the MRU list)</span></h2>
      <table id="talkers">
        <thead><tr><th>address</th><th class="num">count</th><th class="num">avgint</th><th class="num">lstint</th><th>r</th><th class="num">drop</th></tr></thead>
        <tbody></tbody>
      </table>
    </section>
    <section aria-label="blocklist">
      <h2>Blocklist <span class="dim" id="blocklist-count"></span></h2>
      <form id="block-form" autocomplete="off">
        <input id="block-address" placeholder="address" required>
        <input id="block-duration" placeholder="for (1d, 15m; empty = ever)">
        <input id="block-reason" placeholder="reason">
        <button type="submit">Block</button>
      </form>
      <table id="blocklist">
        <thead><tr><th>address</th><th>reason</th><th>expires</th><th class="num">hits</th><th>source</th><th></th></tr></thead>
        <tbody></tbody>
      </table>
    </section>
  </div>
  <p id="message" role="status"></p>
</main>
</body>
</html>
`;

export const DASHBOARD_CSS = `:root {
  --bg: #0f1419; --panel: #171d24; --line: #2a323c; --text: #d7dde4; --dim: #8a95a3;
  --served: #3fb950; --gapped: #d29922; --kod: #f0883e; --denied: #f85149; --accent: #58a6ff;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); font: 14px/1.4 system-ui, sans-serif; }
header { display: flex; gap: 1.2em; align-items: baseline; padding: 0.8em 1.2em; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
h1 { font-size: 1.3em; margin: 0; }
h2 { font-size: 1em; margin: 1.2em 0 0.5em; }
main { padding: 0 1.2em 1.2em; }
.dim { color: var(--dim); font-weight: normal; }
.status { margin-left: auto; padding: 0.1em 0.6em; border-radius: 1em; font-size: 0.85em; }
.status.live { background: #1f3d2a; color: var(--served); }
.status.offline { background: #3d1f1f; color: var(--denied); }
.badge { padding: 0.1em 0.6em; border-radius: 1em; font-size: 0.85em; background: #3d2a1f; color: var(--kod); font-weight: bold; }
[hidden] { display: none !important; }
.overload { display: grid; grid-template-columns: minmax(260px, 1fr) 2fr; gap: 1.2em; align-items: start; }
.overload dl { display: grid; grid-template-columns: auto 1fr; gap: 0.3em 1em; margin: 0; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 0.6em 0.8em; }
.overload dt { color: var(--dim); }
.overload dd { margin: 0; font-variant-numeric: tabular-nums; }
.overload dd.over { color: var(--kod); font-weight: bold; }
@media (max-width: 720px) { .overload { grid-template-columns: 1fr; } }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 0.8em; margin-top: 1em; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 0.6em 0.8em; border-top: 3px solid var(--accent); }
.card.served { border-top-color: var(--served); }
.card.gapped { border-top-color: var(--gapped); }
.card.kod { border-top-color: var(--kod); }
.card.denied { border-top-color: var(--denied); }
.card .label { color: var(--dim); font-size: 0.85em; }
.card .value { font-size: 1.8em; font-variant-numeric: tabular-nums; }
.card .total { color: var(--dim); font-size: 0.8em; font-variant-numeric: tabular-nums; }
canvas { width: 100%; height: 260px; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; display: block; }
.legend { display: flex; gap: 1.2em; margin-bottom: 0.4em; font-size: 0.85em; }
.key::before { content: ""; display: inline-block; width: 1.4em; height: 3px; margin-right: 0.4em; vertical-align: middle; background: var(--accent); }
.key.served::before { background: var(--served); }
.key.gapped::before { background: var(--gapped); }
.key.kod::before { background: var(--kod); }
.key.denied::before { background: var(--denied); }
.columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1.2em; }
table { width: 100%; border-collapse: collapse; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; }
th, td { text-align: left; padding: 0.3em 0.6em; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--dim); font-weight: normal; font-size: 0.85em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.empty { color: var(--dim); text-align: center; }
td.flag-K { color: var(--kod); font-weight: bold; }
td.flag-L { color: var(--gapped); font-weight: bold; }
form { display: flex; gap: 0.4em; margin-bottom: 0.6em; flex-wrap: wrap; }
form input { width: 11em; }
input { background: var(--panel); color: var(--text); border: 1px solid var(--line); border-radius: 4px; padding: 0.3em 0.5em; }
button { background: #21262d; color: var(--text); border: 1px solid var(--line); border-radius: 4px; padding: 0.3em 0.8em; cursor: pointer; }
button:hover { border-color: var(--accent); }
button.remove:hover { border-color: var(--denied); color: var(--denied); }
#message { color: var(--dim); min-height: 1.4em; }
#message.error { color: var(--denied); }
`;

export const DASHBOARD_JS = `"use strict";
(function () {
  var HISTORY = 120;
  var SERIES = [
    { key: "served", color: "#3fb950" },
    { key: "gapped", color: "#d29922" },
    { key: "kod", color: "#f0883e" },
    { key: "denied", color: "#f85149" }
  ];
  var CLASSES = ["mice", "known", "new"];
  var POOLS = ${POOLS};
  var history = [];
  var previous = null;
  var tick = 0;
  var blocklistEnabled = true;

  function $(id) { return document.getElementById(id); }

  function setText(id, text) {
    var el = $(id);
    if (el && el.textContent !== text) el.textContent = text;
  }

  function fmtRate(x) {
    if (x === null || !isFinite(x)) return "-";
    if (x >= 100) return Math.round(x).toLocaleString("en");
    if (x >= 10) return x.toFixed(1);
    return x.toFixed(2);
  }

  function fmtInt(x) { return Math.round(x).toLocaleString("en"); }

  function fmtSeconds(s) {
    if (s < 1) return s.toFixed(3);
    if (s < 10) return s.toFixed(2);
    return String(Math.round(s));
  }

  function fmtDuration(s) {
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + m + "m";
    return m + "m " + Math.floor(s % 60) + "s";
  }

  function message(text, isError) {
    var el = $("message");
    el.textContent = text;
    el.className = isError ? "error" : "";
  }

  function getJson(path) {
    return fetch(path, { cache: "no-store" }).then(function (r) {
      return r.json().then(function (body) { return { status: r.status, body: body }; });
    });
  }

  function totalsOf(stats) {
    var p = stats.packets;
    return {
      t: stats.takenAt,
      received: p.received,
      served: p.accepted,
      gapped: p.rateLimited,
      kod: p.kod.RATE + p.kod.RSTR + (p.kod.DENY ?? 0),
      denied: p.denied
    };
  }

  function refreshStats() {
    return getJson("/api/stats").then(function (r) {
      if (r.status !== 200) throw new Error(r.body.error || ("HTTP " + r.status));
      var s = r.body;
      var now = totalsOf(s);
      setText("server", s.server + "  v" + s.version);
      if (s.clock) setText("clock", "stratum " + s.clock.stratum + "  refid " + s.clock.refid + "  leap " + s.clock.leap);
      setText("uptime", "up " + fmtDuration(s.uptime));
      var names = ["received", "served", "gapped", "kod", "denied"];
      var point = { t: now.t };
      for (var i = 0; i < names.length; i++) {
        var k = names[i];
        setText("total-" + k, fmtInt(now[k]) + " total");
        var rate = null;
        if (previous && now.t > previous.t) rate = Math.max(0, (now[k] - previous[k]) / (now.t - previous.t));
        point[k] = rate;
        setText("rate-" + k, fmtRate(rate));
      }
      setText("mru-size", fmtInt(s.mru.size));
      setText("mru-capacity", "of " + fmtInt(s.mru.capacity));
      showOverload(s.overload);
      blocklistEnabled = s.blocklist.enabled;
      if (previous) {
        history.push(point);
        if (history.length > HISTORY) history.shift();
      }
      previous = now;
      var st = $("status");
      st.textContent = "live";
      st.className = "status live";
      draw();
    });
  }

  // Overload control (src/defence/overload.ts): absent from the answer of a server without it.
  function showOverload(o) {
    $("overload").hidden = !o;
    $("overload-badge").hidden = !(o && o.overloaded);
    if (!o) return;
    setText("overload-active", o.overloaded ? "yes" : "no");
    $("overload-active").className = o.overloaded ? "over" : "";
    setText("overload-redline", o.capacity > 0 ? fmtInt(o.capacity) + " requests/s" : "not known yet");
    setText("overload-entered", fmtInt(o.entered));
    var demand = 0;
    for (var i = 0; i < CLASSES.length; i++) {
      var c = CLASSES[i];
      demand += o.demand[i] || 0;
      setText("overload-demand-" + c, fmtInt(o.demand[i] || 0));
      setText("overload-pools-" + c, (o.withheldPools[i] || 0) + " of " + POOLS);
      setText("overload-withheld-" + c, fmtInt(o.withheld[i] || 0));
    }
    setText("overload-demand", fmtInt(demand) + " requests/s");
  }

  function cell(row, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  function emptyRow(tbody, columns, text) {
    var tr = document.createElement("tr");
    var td = cell(tr, text, "empty");
    td.colSpan = columns;
    tbody.appendChild(tr);
  }

  function refreshTalkers() {
    return getJson("/api/clients?sort=-count&limit=10").then(function (r) {
      if (r.status !== 200) throw new Error(r.body.error || ("HTTP " + r.status));
      var tbody = $("talkers").tBodies[0];
      var rows = document.createDocumentFragment();
      var clients = r.body.clients;
      for (var i = 0; i < clients.length; i++) {
        var c = clients[i];
        var tr = document.createElement("tr");
        tr.setAttribute("data-address", c.address);
        cell(tr, c.address);
        // A client known by its prefix (2001:db8:1:2::/64): the address it last came from, on hover.
        if (c.lastAddress && c.lastAddress !== c.address) tr.lastChild.title = "last from " + c.lastAddress;
        cell(tr, fmtInt(c.count), "num");
        cell(tr, fmtSeconds(c.avgint), "num");
        cell(tr, fmtSeconds(c.lstint), "num");
        cell(tr, c.r, "flag-" + c.r);
        cell(tr, fmtInt(c.drop), "num");
        rows.appendChild(tr);
      }
      tbody.replaceChildren(rows);
      if (clients.length === 0) emptyRow(tbody, 6, "no clients yet");
    });
  }

  function refreshBlocklist() {
    return getJson("/api/blocklist").then(function (r) {
      var tbody = $("blocklist").tBodies[0];
      if (r.status === 409) {
        tbody.replaceChildren();
        emptyRow(tbody, 6, "the blocklist is disabled ([blocklist] enabled = false)");
        setText("blocklist-count", "(disabled)");
        $("block-form").hidden = true;
        return;
      }
      if (r.status !== 200) throw new Error(r.body.error || ("HTTP " + r.status));
      $("block-form").hidden = false;
      setText("blocklist-count", "(" + r.body.count + ")");
      var rows = document.createDocumentFragment();
      var entries = r.body.entries;
      for (var i = 0; i < entries.length; i++) {
        var e = entries[i];
        var tr = document.createElement("tr");
        tr.setAttribute("data-address", e.address);
        cell(tr, e.address);
        cell(tr, e.reason);
        cell(tr, e.expires === null ? "never" : e.expires.replace("T", " ").slice(0, 19));
        cell(tr, fmtInt(e.hits), "num");
        cell(tr, e.source);
        var td = cell(tr, "");
        var button = document.createElement("button");
        button.type = "button";
        button.className = "remove";
        button.textContent = "Remove";
        button.setAttribute("data-address", e.address);
        button.addEventListener("click", onRemove);
        td.appendChild(button);
        rows.appendChild(tr);
      }
      tbody.replaceChildren(rows);
      if (entries.length === 0) emptyRow(tbody, 6, "no address is blocked");
    });
  }

  function onRemove(ev) {
    var button = ev.currentTarget;
    var address = button.getAttribute("data-address");
    button.disabled = true;
    fetch("/api/blocklist?address=" + encodeURIComponent(address), { method: "DELETE" })
      .then(function (r) { return r.json().then(function (body) { return { status: r.status, body: body }; }); })
      .then(function (r) {
        if (r.status === 200) message("removed " + r.body.address + " from the blocklist", false);
        else message("could not remove " + address + ": " + (r.body.error || ("HTTP " + r.status)), true);
        return refreshBlocklist();
      })
      .catch(function (err) { message("could not remove " + address + ": " + err.message, true); button.disabled = false; });
  }

  function onBlock(ev) {
    ev.preventDefault();
    var body = { address: $("block-address").value.trim() };
    var duration = $("block-duration").value.trim();
    var reason = $("block-reason").value.trim();
    if (duration !== "") body.duration = /^[0-9.]+$/.test(duration) ? Number(duration) : duration;
    if (reason !== "") body.reason = reason;
    fetch("/api/blocklist", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
      .then(function (r) { return r.json().then(function (b) { return { status: r.status, body: b }; }); })
      .then(function (r) {
        if (r.status === 201) {
          message("blocked " + r.body.address, false);
          $("block-form").reset();
        } else {
          message("could not block: " + (r.body.error || ("HTTP " + r.status)), true);
        }
        return refreshBlocklist();
      })
      .catch(function (err) { message("could not block: " + err.message, true); });
  }

  function draw() {
    var canvas = $("chart");
    var ratio = window.devicePixelRatio || 1;
    var w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
      canvas.width = Math.round(w * ratio);
      canvas.height = Math.round(h * ratio);
    }
    var ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    var left = 56, right = 12, top = 12, bottom = 24;
    var pw = w - left - right, ph = h - top - bottom;
    var max = 1;
    for (var i = 0; i < history.length; i++) {
      for (var j = 0; j < SERIES.length; j++) {
        var v = history[i][SERIES[j].key];
        if (v !== null && v > max) max = v;
      }
    }
    var step = Math.pow(10, Math.floor(Math.log10(max)));
    var nice = Math.ceil(max / step) * step;
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#8a95a3";
    ctx.strokeStyle = "#2a323c";
    ctx.lineWidth = 1;
    for (var g = 0; g <= 4; g++) {
      var y = top + ph - (ph * g) / 4;
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(left + pw, y);
      ctx.stroke();
      ctx.textAlign = "right";
      ctx.fillText(fmtRate((nice * g) / 4), left - 6, y + 4);
    }
    ctx.textAlign = "center";
    for (var sec = 0; sec <= HISTORY; sec += 30) {
      var x = left + pw - (pw * sec) / HISTORY;
      ctx.fillText(sec === 0 ? "now" : "-" + sec + "s", x, h - 6);
    }
    var last = history.length ? history[history.length - 1].t : 0;
    for (var s = 0; s < SERIES.length; s++) {
      ctx.strokeStyle = SERIES[s].color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      var started = false;
      for (var k = 0; k < history.length; k++) {
        var p = history[k];
        var val = p[SERIES[s].key];
        if (val === null) continue;
        var px = left + pw - (pw * (last - p.t)) / HISTORY;
        var py = top + ph - (ph * val) / nice;
        if (px < left) continue;
        if (!started) { ctx.moveTo(px, py); started = true; } else ctx.lineTo(px, py);
      }
      ctx.stroke();
    }
  }

  function loop() {
    tick++;
    // The counters every second; the talkers (a walk of the whole MRU list) and the blocklist every other.
    var work = [refreshStats()];
    if (tick % 2 === 1) work.push(refreshTalkers(), refreshBlocklist());
    Promise.all(work).catch(function (err) {
      var st = $("status");
      st.textContent = "offline";
      st.className = "status offline";
      message("cannot read the server: " + err.message, true);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("block-form").addEventListener("submit", onBlock);
    window.addEventListener("resize", draw);
    loop();
    setInterval(loop, 1000);
  });
})();
`;
