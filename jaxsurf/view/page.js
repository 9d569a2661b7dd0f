// The jaxsurf viewer's page script (package data of jaxsurf, inlined into every page by
// jaxsurf/view.py). It reads the page's data from the JSON element #jaxsurf-data with
// JSON.parse; nothing is substituted into this text.
"use strict";
const DATA = JSON.parse(document.getElementById("jaxsurf-data").textContent);
const CONFIG = {displaylogo: false, responsive: true, displayModeBar: "hover"};

function decode(m) {
  const bin = atob(m.b64), bytes = new Uint8Array(bin.length);
  for (let k = 0; k < bin.length; k++) bytes[k] = bin.charCodeAt(k);
  return m.dtype === "f4" ? new Float32Array(bytes.buffer) : new Float64Array(bytes.buffer);
}
for (const g of DATA.groups) for (const it of g.items)
  for (const name in it.metrics) it.metrics[name].values = decode(it.metrics[name]);

const isSem = (it, n) => n.endsWith("_sem") && (n.slice(0, -4) in it.metrics);
const fmt = v => (v === null || !isFinite(v)) ? String(v) : Number(v).toPrecision(5);
const fin = v => (v === null || !isFinite(v)) ? null : v;

// value of metric `name` at grid index (i, j): metrics[name][i, j], row-major (alphas, betas)
// a volume (metrics[name][i, j, k]) shows the slice k = it.k, chosen with its slider
function at(it, name, i, j) {
  const v = it.metrics[name].values, ij = i * it.betas.length + j;
  return it.gammas ? v[ij * it.gammas.length + it.k] : v[ij];
}
function transform(v, log) { return !isFinite(v) ? null : (log ? (v > 0 ? Math.log10(v) : null) : v); }

function hoverText(it) {           // text[j][i], plotly's z[row = beta][column = alpha]
  const names = Object.keys(it.metrics), na = it.alphas.length, nb = it.betas.length;
  const text = [];
  for (let j = 0; j < nb; j++) {
    const row = [];
    for (let i = 0; i < na; i++)
      row.push(`alpha ${fmt(it.alphas[i])}, beta ${fmt(it.betas[j])}` +
               (it.gammas ? `, gamma ${fmt(it.gammas[it.k])}` : "") + "<br>" +
               names.filter(n => !isSem(it, n)).map(n => `${n} ${fmt(at(it, n, i, j))}` +
                 ((n + "_sem") in it.metrics ? ` ± ${fmt(at(it, n + "_sem", i, j))} (SEM)` : ""))
                 .join("<br>"));
    text.push(row);
  }
  return text;
}

function zGrid(it, name, log) {    // z[j][i] = metrics[name][i, j]
  const z = [];
  for (let j = 0; j < it.betas.length; j++) {
    const row = [];
    for (let i = 0; i < it.alphas.length; i++) row.push(transform(at(it, name, i, j), log));
    z.push(row);
  }
  return z;
}

function bilinear(it, name, a, b, log) {
  const A = it.alphas, B = it.betas;
  if (a < A[0] || a > A[A.length - 1] || b < B[0] || b > B[B.length - 1]) return null;
  let i = 0, j = 0;
  while (i < A.length - 2 && A[i + 1] < a) i++;
  while (j < B.length - 2 && B[j + 1] < b) j++;
  const ta = A.length > 1 ? (a - A[i]) / (A[i + 1] - A[i]) : 0;
  const tb = B.length > 1 ? (b - B[j]) / (B[j + 1] - B[j]) : 0;
  const v = (1 - ta) * (1 - tb) * at(it, name, i, j) + ta * (1 - tb) * at(it, name, i + 1, j)
          + (1 - ta) * tb * at(it, name, i, j + 1) + ta * tb * at(it, name, i + 1, j + 1);
  return transform(v, log);
}

function sharedRange(g, name, log) {
  let lo = Infinity, hi = -Infinity;
  for (const it of g.items) if (name in it.metrics)
    for (const v of it.metrics[name].values) {
      const t = transform(v, log);
      if (t !== null) { lo = Math.min(lo, t); hi = Math.max(hi, t); }
    }
  if (!(hi > lo)) { hi = lo + 1; }
  return [lo, hi];
}

function boxAspect(it) {
  const wa = it.alphas[it.alphas.length - 1] - it.alphas[0];
  const wb = it.betas[it.betas.length - 1] - it.betas[0];
  if (!(wa > 0 && wb > 0) || wa / wb > 4 || wb / wa > 4) return {x: 1, y: 1, z: 0.75};
  const s = 1 / Math.max(wa, wb);
  return {x: wa * s, y: wb * s, z: 0.75};
}

// log10 heights, labelled in the metric's own values: 1-2-5 ticks per decade
// (decades only when there are many), as the static figures' log colour bars
function logTicks(range) {
  const lo = range[0], hi = range[1], vals = [], text = [];
  if (!(isFinite(lo) && isFinite(hi)) || hi <= lo) return {};
  const subs = hi - lo <= 3 ? [1, 2, 5] : [1];
  for (let e = Math.floor(lo); e <= Math.ceil(hi); e++)
    for (const s of subs) {
      const v = Math.log10(s) + e;
      if (v >= lo - 1e-9 && v <= hi + 1e-9) {
        vals.push(v); text.push(String(Number((s * Math.pow(10, e)).toPrecision(3))));
      }
    }
  if (vals.length < 2) return {};
  return {tickvals: vals, ticktext: text};
}

function planeTraces(it, name, log, range, showScale, zlabel) {
  const z = zGrid(it, name, log), text = hoverText(it);
  const common = {x: it.alphas, y: it.betas, z: z, text: text, colorscale: "Viridis",
                  hovertemplate: "%{text}<extra></extra>"};
  const bar = Object.assign({title: {text: zlabel}, len: 0.8}, log ? logTicks(range) : {});
  const surf = Object.assign({type: "surface", name: it.name, cmin: range[0], cmax: range[1],
                              showscale: false}, common);   // the contour's bar is the scale
  const size = (range[1] - range[0]) / 20;
  const cont = Object.assign({type: "contour", name: it.name, zmin: range[0], zmax: range[1],
    autocontour: false, contours: {start: range[0] + size / 2, end: range[1], size: size,
                                   coloring: "heatmap", showlines: true},
    line: {width: 0.5, color: "rgba(0,0,0,0.35)"}, showscale: showScale, colorbar: bar}, common);
  const t3 = [surf], t2 = [cont];
  const mark = (pts, label, style) => {
    const zs = pts.map(p => bilinear(it, name, p[0], p[1], log));
    t2.push(Object.assign({type: "scatter", mode: style.mode, x: pts.map(p => p[0]),
      y: pts.map(p => p[1]), name: label, text: style.text, textposition: "top right",
      marker: style.marker, line: style.line, hovertemplate: label + " %{x:.4g}, %{y:.4g}<extra></extra>"}));
    t3.push({type: "scatter3d", mode: style.mode3d || style.mode.replace("+text", ""),
      x: pts.map(p => p[0]), y: pts.map(p => p[1]), z: zs, name: label,
      marker: Object.assign({}, style.marker, {size: 4}), line: style.line,
      hovertemplate: label + " %{x:.4g}, %{y:.4g}: %{z:.5g}<extra></extra>"});
  };
  const A = it.alphas, B = it.betas;
  for (const p of it.paths)
    mark(p.points, p.name, {mode: p.labels.length ? "lines+markers+text" : "lines+markers",
      text: p.labels, marker: {size: 5, color: "#d62728"}, line: {color: "#d62728", width: 2}});
  const G = it.gammas, nearest0 = G ? G.reduce((m, g, k) => Math.abs(g) < Math.abs(G[m]) ? k : m, 0) : 0;
  if (A[0] <= 0 && 0 <= A[A.length - 1] && B[0] <= 0 && 0 <= B[B.length - 1]
      && (!G || (it.k === nearest0 && G[0] <= 0 && 0 <= G[G.length - 1])))
    mark([[0, 0]], "solution (origin)", {mode: "markers", marker: {size: 14, symbol: "star",
      color: "white", line: {color: "black", width: 1.5}}, mode3d: "markers"});
  for (const t of t3) if (t.type === "scatter3d" && t.name === "solution (origin)")
    t.marker = {size: 6, symbol: "diamond", color: "white", line: {color: "black", width: 2}};
  return [t3, t2];
}

function drawPlaneGroup(g, gi, name, log) {
  const range = sharedRange(g, name, log);
  const zlabel = log ? `${name} (log scale)` : name;
  g.items.forEach((it, k) => {
    const d3 = document.getElementById(`g${gi}-i${k}-surface`);
    const d2 = document.getElementById(`g${gi}-i${k}-contour`);
    const note = document.getElementById(`g${gi}-i${k}-note`);
    if (!(name in it.metrics)) {
      Plotly.purge(d3); Plotly.purge(d2); note.textContent = `no metric ${name} in this surface`;
      return;
    }
    note.textContent = "";
    const last = k === g.items.length - 1;
    const [t3, t2] = planeTraces(it, name, log, range, last, zlabel);
    // top margins leave room for plotly's toolbar above each plot, not over it
    Plotly.react(d3, t3, {margin: {l: 0, r: 0, t: 32, b: 0}, showlegend: false,
      scene: {camera: {eye: {x: -1.35, y: -1.65, z: 1.25}},
              xaxis: {title: {text: it.labels[0]}}, yaxis: {title: {text: it.labels[1]}},
              zaxis: Object.assign({title: {text: zlabel}, range: range},
                                   log ? logTicks(range) : {}),
              aspectmode: "manual", aspectratio: boxAspect(it)}}, CONFIG);
    Plotly.react(d2, t2, {margin: {l: 60, r: 10, t: 36, b: 50}, showlegend: false,
      xaxis: {title: {text: it.labels[0]}, range: [it.alphas[0], it.alphas[it.alphas.length - 1]]},
      yaxis: {title: {text: it.labels[1]}, range: [it.betas[0], it.betas[it.betas.length - 1]]}},
      CONFIG);
  });
}

function drawLine(it, div, log) {
  const all = Object.keys(it.metrics).filter(n => !isSem(it, n));
  const names = all.filter(n => !/acc/i.test(n)).concat(all.filter(n => /acc/i.test(n)));
  const traces = [];
  let right = false;
  names.forEach((n, k) => {
    const vals = Array.from(it.metrics[n].values);
    const finite = vals.filter(v => isFinite(v));
    const pct = /acc/i.test(n) && finite.length && Math.min(...finite) >= 0 && Math.max(...finite) <= 1;
    const onRight = /acc/i.test(n) && names.some(m => !/acc/i.test(m));
    right = right || onRight;
    const s = pct ? 100 : 1;
    const t = {type: "scatter", mode: "lines+markers", x: it.alphas, y: vals.map(v => fin(v) === null ? null : s * v),
               name: pct ? `${n} (%)` : n, yaxis: onRight ? "y2" : "y", marker: {size: 4},
               hovertemplate: `alpha %{x:.4g}<br>${n} %{y:.5g}${pct ? " %" : ""}<extra></extra>`};
    const sem = it.metrics[n + "_sem"];
    if (sem) {
      t.error_y = {type: "data", array: Array.from(sem.values).map(v => 2 * s * v),
                   visible: true, thickness: 1};
      t.customdata = Array.from(sem.values).map(v => s * v);   // the SEM, shown on hover
      t.hovertemplate = `alpha %{x:.4g}<br>${n} %{y:.5g} ± %{customdata:.3g}${pct ? " %" : ""}` +
                        " (SEM; bars ±2 SEM)<extra></extra>";
    }
    traces.push(t);
  });
  const layout = {margin: {l: 60, r: 60, t: 36, b: 50},
    legend: {orientation: "h", y: -0.25}, hovermode: "x unified",
    xaxis: {title: {text: it.labels[0]}},
    yaxis: {title: {text: names.filter(n => !/acc/i.test(n)).join(", ") || names.join(", ")},
            type: log ? "log" : "linear"}};
  if (right) layout.yaxis2 = {overlaying: "y", side: "right", tickmode: "auto", showgrid: false,
    title: {text: traces.filter(t => t.yaxis === "y2").map(t => t.name).join(", ")}};
  Plotly.react(div, traces, layout, CONFIG);
}

function render() {
  const name = document.getElementById("metric").value;
  const log = document.getElementById("log").checked;
  DATA.groups.forEach((g, gi) => {
    if (g.kind === "plane") drawPlaneGroup(g, gi, name, log);
    else g.items.forEach((it, k) => drawLine(it, document.getElementById(`g${gi}-i${k}-line`), log));
  });
}

function build() {
  document.getElementById("title").textContent = DATA.title;
  document.title = DATA.title;
  if (DATA.table) {
    const t = document.createElement("table");
    const head = t.insertRow();
    for (const c of DATA.table.columns) { const th = document.createElement("th"); th.textContent = c; head.appendChild(th); }
    for (const r of DATA.table.rows) { const tr = t.insertRow(); for (const c of r) tr.insertCell().textContent = c; }
    document.getElementById("table").appendChild(t);
    for (const n of DATA.table.notes || []) {
      const p = document.createElement("div"); p.className = "note"; p.textContent = "data: " + n;
      document.getElementById("table").appendChild(p);
    }
  }
  const names = [];
  for (const g of DATA.groups) if (g.kind === "plane")
    for (const it of g.items) for (const n in it.metrics) if (!names.includes(n)) names.push(n);
  const sel = document.getElementById("metric");
  for (const n of names) { const o = document.createElement("option"); o.value = o.textContent = n; sel.appendChild(o); }
  if (names.includes("loss")) sel.value = "loss";
  if (!names.length) sel.parentElement.style.display = "none";
  const root = document.getElementById("groups");
  DATA.groups.forEach((g, gi) => {
    const h = document.createElement("h2");
    h.textContent = g.title + (g.kind === "plane" && g.items.length > 1 ? " (one colour scale)" : "");
    root.appendChild(h);
    const row = document.createElement("div"); row.className = "row"; root.appendChild(row);
    g.items.forEach((it, k) => {
      const p = document.createElement("div"); p.className = "panel"; row.appendChild(p);
      if (!(g.items.length === 1 && it.name === g.title)) {   // never the same title twice
        const t = document.createElement("h3"); t.textContent = it.name; p.appendChild(t);
      }
      const views = g.kind === "plane" ? ["surface", "contour"] : ["line"];
      const box = document.createElement("div"); box.className = "row"; p.appendChild(box);
      if (g.items.length > 1) box.style.flexDirection = "column";   // panels side by side
      for (const v of views) {
        const d = document.createElement("div"); d.id = `g${gi}-i${k}-${v}`;
        d.className = v === "line" ? "line" : "plot";
        d.dataset.surface = it.name; d.dataset.view = v; d.dataset.group = String(gi);
        box.appendChild(d);
      }
      if (it.gammas) {                      // a volume: one slice at a time
        it.k = it.gammas.reduce((m, g, q) => Math.abs(g) < Math.abs(it.gammas[m]) ? q : m, 0);
        const lab = document.createElement("label"); lab.className = "note";
        const range = document.createElement("input");
        Object.assign(range, {type: "range", min: 0, max: it.gammas.length - 1, step: 1, value: it.k});
        range.id = `g${gi}-i${k}-slider`;
        const txt = document.createElement("span");
        const show = () => { txt.textContent = ` ${it.gamma_label} = ${fmt(it.gammas[it.k])} (slice ${it.k + 1} of ${it.gammas.length})`; };
        range.addEventListener("input", () => { it.k = Number(range.value); show(); render(); });
        show(); lab.appendChild(range); lab.appendChild(txt); p.insertBefore(lab, box);
      }
      const note = document.createElement("div"); note.className = "note"; note.id = `g${gi}-i${k}-note`;
      note.title = it.summary; p.appendChild(note);
    });
  });
  // like the static figures: start on a log scale when the values span over two decades
  const wide = DATA.groups.some(g => g.kind === "plane" && g.items.some(it => {
    const m = it.metrics[sel.value]; if (!m) return false;
    const v = Array.from(m.values).filter(x => isFinite(x));
    return v.length && Math.min(...v) > 0 && Math.max(...v) > 100 * Math.min(...v);
  }));
  document.getElementById("log").checked = wide;
  sel.addEventListener("change", render);
  document.getElementById("log").addEventListener("change", render);
  render();
  document.body.dataset.ready = "1";
}
build();
