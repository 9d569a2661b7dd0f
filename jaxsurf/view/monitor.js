// The jaxsurf monitor page's script (package data of jaxsurf, inlined into the page by
// jaxsurf/view/_monitor_page.py). It reads the page's data from the JSON element
// #jaxsurf-data with JSON.parse; nothing is substituted into this text.
"use strict";
const DATA = JSON.parse(document.getElementById("jaxsurf-data").textContent);
const CONFIG = {displaylogo: false, responsive: true, displayModeBar: "hover"};

function decode(m) {
  const bin = atob(m.b64), bytes = new Uint8Array(bin.length);
  for (let k = 0; k < bin.length; k++) bytes[k] = bin.charCodeAt(k);
  return m.dtype === "f4" ? new Float32Array(bytes.buffer) : new Float64Array(bytes.buffer);
}
for (const name in DATA.metrics) DATA.metrics[name].values = DATA.metrics[name].frames.map(decode);

const isSem = n => n.endsWith("_sem") && (n.slice(0, -4) in DATA.metrics);
const NAMES = Object.keys(DATA.metrics).filter(n => !isSem(n));
const PLANE = DATA.kind === "plane";
const STEPS = DATA.steps;
const state = {k: 0, metric: NAMES.includes("loss") ? "loss" : NAMES[0], log: false, timer: null};

const frameDiv = document.getElementById("frame"), seriesDiv = document.getElementById("series");
frameDiv.dataset.surface = "monitor"; frameDiv.dataset.view = "frame";
seriesDiv.dataset.surface = "monitor"; seriesDiv.dataset.view = "series";

function tf(v) {
  if (v === null || !isFinite(v)) return null;
  return state.log ? (v > 0 ? Math.log10(v) : null) : v;
}
function shared() {      // one range for every frame of the metric: [low, high] as drawn
  const m = DATA.metrics[state.metric];
  if (!state.log) return m.range;
  if (m.positive_min === null) return [null, null];
  return [Math.log10(m.positive_min), Math.log10(m.range[1])];
}
function label() { return (state.log ? "log10 " : "") + state.metric; }

function frameTraces() {
  const v = DATA.metrics[state.metric].values[state.k], [lo, hi] = shared();
  if (PLANE) {       // plotly's z[row = beta][column = alpha] = metrics[name][i, j]
    const na = DATA.alphas.length, nb = DATA.betas.length, z = [];
    for (let j = 0; j < nb; j++) {
      const row = [];
      for (let i = 0; i < na; i++) row.push(tf(v[i * nb + j]));
      z.push(row);
    }
    const size = (hi > lo) ? (hi - lo) / 20 : 1;
    return [{type: "contour", x: DATA.alphas, y: DATA.betas, z: z, zmin: lo, zmax: hi,
             zauto: false, autocontour: false, contours: {start: lo, end: hi, size: size,
             coloring: "heatmap", showlines: true}, colorscale: "Viridis",
             colorbar: {title: {text: label()}}, name: label(),
             hovertemplate: "alpha %{x}<br>beta %{y}<br>" + label() + " %{z}<extra></extra>"},
            {type: "scatter", x: [0], y: [0], mode: "markers", name: "current params",
             marker: {symbol: "cross", size: 10, color: "white", line: {color: "black", width: 1}},
             showlegend: false}];
  }
  const y = Array.from(v, tf), trace = {type: "scatter", x: DATA.alphas, y: y,
                                        mode: "lines+markers", name: label()};
  const sem = DATA.metrics[state.metric + "_sem"];
  if (sem && !state.log) trace.error_y = {type: "data", array: Array.from(sem.values[state.k]),
                                          visible: true};
  return [trace];
}

function frameLayout() {
  const step = STEPS[state.k], [lo, hi] = shared();
  const layout = {margin: {l: 60, r: 20, t: 40, b: 50}, uirevision: "frame",
                  title: {text: `${state.metric} at step ${step}`},
                  xaxis: {title: {text: "alpha (direction 1)"}}};
  if (PLANE) layout.yaxis = {title: {text: "beta (direction 2)"}};
  else {
    const pad = (hi > lo) ? 0.05 * (hi - lo) : 1;
    layout.yaxis = {title: {text: label()}, range: [lo - pad, hi + pad], autorange: false};
  }
  return layout;
}

function seriesTraces() {
  const traces = [], c = DATA.curvature;
  if ("top_eigenvalue" in c)
    traces.push({type: "scatter", mode: "lines+markers", x: STEPS, y: c.top_eigenvalue,
                 name: "top Hessian eigenvalue", yaxis: "y"});
  if ("trace" in c) {
    const t = {type: "scatter", mode: "lines+markers", x: STEPS, y: c.trace,
               name: "Hessian trace (Hutchinson)", yaxis: traces.length ? "y2" : "y"};
    if ("trace_sem" in c) t.error_y = {type: "data", array: c.trace_sem, visible: true};
    traces.push(t);
  }
  if (!traces.length && DATA.centre[state.metric])
    traces.push({type: "scatter", mode: "lines+markers", x: STEPS,
                 y: DATA.centre[state.metric].map(tf), name: label() + " at the current params"});
  return traces;
}

function marker() {
  return [{type: "line", xref: "x", yref: "paper", x0: STEPS[state.k], x1: STEPS[state.k],
           y0: 0, y1: 1, line: {color: "crimson", width: 2, dash: "dot"}}];
}

function seriesLayout() {
  const curv = Object.keys(DATA.curvature).length > 0;
  const layout = {margin: {l: 60, r: 60, t: 40, b: 50}, shapes: marker(),
                  title: {text: curv ? "curvature over training" : label() + " over training"},
                  xaxis: {title: {text: "step"}}, legend: {orientation: "h", y: -0.2},
                  yaxis: {title: {text: curv ? ("top_eigenvalue" in DATA.curvature ?
                          "top eigenvalue" : "trace") : label()}}};
  if ("top_eigenvalue" in DATA.curvature && "trace" in DATA.curvature)
    layout.yaxis2 = {title: {text: "trace"}, overlaying: "y", side: "right"};
  return layout;
}

function showStep(k) {
  state.k = Math.max(0, Math.min(STEPS.length - 1, k));
  document.getElementById("step").value = String(state.k);
  document.getElementById("steplabel").textContent =
    `step ${STEPS[state.k]} (${state.k + 1} of ${STEPS.length})`;
  document.body.dataset.step = String(STEPS[state.k]);
  return Promise.all([Plotly.react(frameDiv, frameTraces(), frameLayout(), CONFIG),
                      Plotly.relayout(seriesDiv, {shapes: marker()})]);
}

function redrawAll() {
  return Promise.all([Plotly.react(frameDiv, frameTraces(), frameLayout(), CONFIG),
                      Plotly.react(seriesDiv, seriesTraces(), seriesLayout(), CONFIG)]);
}

function play() {
  const button = document.getElementById("play");
  if (state.timer !== null) {
    clearInterval(state.timer); state.timer = null; button.textContent = "play"; return;
  }
  button.textContent = "pause";
  if (state.k === STEPS.length - 1) showStep(0);
  state.timer = setInterval(() => {
    if (state.k >= STEPS.length - 1) { play(); return; }
    showStep(state.k + 1);
  }, 700);
}

document.getElementById("title").textContent = DATA.title;
document.getElementById("about").textContent =
  `${STEPS.length} recorded steps of ${DATA.kind === "plane" ? "a plane" : "a line"} through ` +
  `the current params, directions ${DATA.directions}` +
  (DATA.directions === "fixed" ? " (drawn and filter-normalized once, at the first " +
   "recorded step: the frames share their axes)" : " (normalized against each step's params)") +
  `. One colour scale${PLANE ? "" : " (y range)"} for all frames of a metric.`;
const select = document.getElementById("metric");
for (const n of NAMES) {
  const o = document.createElement("option"); o.value = n; o.textContent = n;
  if (n === state.metric) o.selected = true;
  select.appendChild(o);
}
select.addEventListener("change", () => { state.metric = select.value; redrawAll(); });
document.getElementById("log").addEventListener("change", e => {
  state.log = e.target.checked; redrawAll();
});
const slider = document.getElementById("step");
slider.max = String(STEPS.length - 1);
slider.addEventListener("input", () => showStep(Number(slider.value)));
document.getElementById("play").addEventListener("click", play);
window.jaxsurfMonitor = {showStep: showStep, steps: STEPS, state: state, play: play};

redrawAll().then(() => showStep(0)).then(() => { document.body.dataset.ready = "1"; });
