// The tidu optimizer lab page: a form that POSTs to /api/run, and drawings of what comes back.
// All the math (paths, losses, contour grid) is the server's; this file only lays it out.
// Each drawn path is a <polyline class="path"> whose data-points attribute holds the path's
// points [[x, y], ...] exactly as the server sent them (the tests read them back).
"use strict";

const SVG = document.getElementById("paths").namespaceURI;   // the SVG namespace, from the page's <svg>
const COLORS = ["#e41a1c", "#ff7f00", "#f781bf", "#000000", "#a65628", "#00bcd4", "#ff00ff", "#999999"];
const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
const MAP = { left: 44, top: 8, width: 468, height: 468 };     // plot area inside the 520x520 map
const LOSS = { left: 56, top: 8, width: 452, height: 218 };    // inside the 520x260 loss chart
const HYPER_LABELS = { momentum: "momentum", beta_1: "β1", beta_2: "β2", rho: "ρ" };

let info = null;    // GET /api/functions

const $ = (id) => document.getElementById(id);
const color = (k) => COLORS[k % COLORS.length];

function el(tag, attrs = {}, text = null, ns = null) {
  const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== null) e.textContent = text;
  return e;
}

// A field's text as the request sends it: a finite number when it reads as one, else the text
// itself, so the server's message can say what was typed ('abc', 'NaN', '').
function value(text) {
  const t = text.trim();
  const n = Number(t);
  return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t) && Number.isFinite(n) ? n : t;
}

// ---- the form ------------------------------------------------------------------------------

function addOptimizer(name) {
  const row = el("div", { class: "optimizer" });
  const select = el("select", { name: "name", "aria-label": "optimizer" });
  for (const n of Object.keys(info.optimizers)) select.append(el("option", { value: n }, n));
  select.value = name;
  const remove = el("button", { type: "button", class: "remove", title: "remove" }, "×");
  row.append(el("span", { class: "swatch" }), select, el("span", { class: "settings" }), remove);
  select.addEventListener("change", () => { fillSettings(row); run(); });
  remove.addEventListener("click", () => {
    if ($("optimizers").children.length > 1) { row.remove(); recolor(); run(); }
  });
  $("optimizers").append(row);
  fillSettings(row);
  recolor();
}

// The learning rate (the lab's default for the function) and the optimizer's hyperparameters.
function fillSettings(row) {
  const name = row.querySelector("select[name=name]").value;
  const spec = info.optimizers[name];
  const box = row.querySelector(".settings");
  box.replaceChildren();
  const field = (key, label, v) => {
    const input = el("input", { type: "text", name: key, inputmode: "decimal", size: "6" });
    input.value = String(v);
    box.append(el("label", {}, label + " "));
    box.lastChild.append(input);
  };
  if (spec.closure) box.append(el("em", {}, "own step size"));
  else field("learning_rate", "lr", info.functions[$("function").value].learning_rates[name]);
  for (const [h, v] of Object.entries(spec.hyperparameters)) field(h, HYPER_LABELS[h] || h, v);
}

function recolor() {
  [...$("optimizers").children].forEach((row, k) => {
    row.dataset.index = k;
    row.querySelector(".swatch").style.background = color(k);
  });
}

function setFunction(name) {
  const fn = info.functions[name];
  $("start-x").value = String(fn.start[0]);
  $("start-y").value = String(fn.start[1]);
  for (const row of $("optimizers").children) fillSettings(row);
}

function request() {
  const optimizers = [...$("optimizers").children].map((row) => {
    const spec = { name: row.querySelector("select[name=name]").value };
    for (const input of row.querySelectorAll(".settings input")) spec[input.name] = value(input.value);
    return spec;
  });
  return { function: $("function").value, optimizers, steps: value($("steps").value),
           start: [value($("start-x").value), value($("start-y").value)] };
}

function status(state, text) {
  const s = $("status");
  s.dataset.state = state;
  s.textContent = text;
  if (state !== "running") s.dataset.runs = String(Number(s.dataset.runs) + 1);
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

async function run() {
  status("running", "running…");
  let answer;
  try {
    const response = await fetch("api/run", { method: "POST", headers: { "Content-Type": "application/json" },
                                              body: JSON.stringify(request()) });
    answer = await response.json();
    if (!response.ok) throw new Error(answer.error || `the server answered ${response.status}`);
  } catch (e) {
    showError(e.message);
    status("error", "error: nothing drawn for this request");
    return;
  }
  $("error").hidden = true;
  $("error").textContent = "";
  draw(answer);
  status("ok", `ran ${answer.runs.length} optimizer(s)`);
}

// ---- drawing -------------------------------------------------------------------------------

function viridis(t) {
  const s = Math.min(Math.max(t, 0), 1) * (VIRIDIS.length - 1);
  const k = Math.min(Math.floor(s), VIRIDIS.length - 2);
  const f = s - k;
  return VIRIDIS[k].map((c, i) => Math.round(c + f * (VIRIDIS[k + 1][i] - c)));
}

// Filled contours: each grid cell coloured by the band of levels its value falls in.
function drawContours(grid) {
  const ny = grid.z.length, nx = grid.z[0].length, L = grid.levels;
  const off = document.createElement("canvas");
  off.width = nx; off.height = ny;
  const ctx = off.getContext("2d");
  const image = ctx.createImageData(nx, ny);
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      let lo = 0, hi = L.length;                       // count of levels <= z
      while (lo < hi) { const m = (lo + hi) >> 1; if (L[m] <= grid.z[j][i]) lo = m + 1; else hi = m; }
      const [r, g, b] = viridis(lo / L.length);
      const p = 4 * ((ny - 1 - j) * nx + i);           // row 0 of the image is the top (largest y)
      image.data.set([r, g, b, 255], p);
    }
  }
  ctx.putImageData(image, 0, 0);
  const canvas = $("contour").getContext("2d");
  canvas.clearRect(0, 0, 520, 520);
  canvas.imageSmoothingEnabled = false;
  canvas.drawImage(off, MAP.left, MAP.top, MAP.width, MAP.height);
}

function ticks(lo, hi, n) {
  return Array.from({ length: n + 1 }, (_, k) => lo + (hi - lo) * k / n);
}

const fmt = (v) => Number(v.toPrecision(3)).toString();

function drawMap(answer) {
  const g = answer.grid, svg = $("paths");
  const px = (x) => MAP.left + (x - g.x[0]) / (g.x[1] - g.x[0]) * MAP.width;
  const py = (y) => MAP.top + (g.y[1] - y) / (g.y[1] - g.y[0]) * MAP.height;
  svg.replaceChildren();
  const defs = el("defs", {}, null, SVG);
  const clip = el("clipPath", { id: "map-clip" }, null, SVG);
  clip.append(el("rect", { x: MAP.left, y: MAP.top, width: MAP.width, height: MAP.height }, null, SVG));
  defs.append(clip);
  svg.append(defs, el("rect", { class: "axis", x: MAP.left, y: MAP.top, width: MAP.width, height: MAP.height }, null, SVG));
  for (const x of ticks(g.x[0], g.x[1], 4))
    svg.append(el("text", { x: px(x), y: MAP.top + MAP.height + 14, "text-anchor": "middle" }, fmt(x), SVG));
  for (const y of ticks(g.y[0], g.y[1], 4))
    svg.append(el("text", { x: MAP.left - 4, y: py(y) + 4, "text-anchor": "end" }, fmt(y), SVG));
  const plot = el("g", { "clip-path": "url(#map-clip)" }, null, SVG);
  svg.append(plot);
  for (const m of info.functions[$("function").value].minima)
    plot.append(el("text", { x: px(m[0]), y: py(m[1]) + 6, "text-anchor": "middle", class: "minimum",
                             style: "font-size:20px; fill:#ff1744; stroke:#fff; stroke-width:0.7" }, "★", SVG));
  answer.runs.forEach((r, k) => {
    if (!r.path.length) return;
    const points = r.path.map(([x, y]) => `${px(x).toFixed(2)},${py(y).toFixed(2)}`).join(" ");
    plot.append(el("polyline", { points, fill: "none", stroke: "#fff", "stroke-width": 4, "stroke-opacity": 0.7,
                                 "stroke-linejoin": "round" }, null, SVG));   // a halo, so any colour shows
    plot.append(el("polyline", { class: "path", points, fill: "none", stroke: color(k), "stroke-width": 2,
                                 "stroke-linejoin": "round", "data-index": k, "data-optimizer": r.name,
                                 "data-diverged": r.diverged, "data-points": JSON.stringify(r.path) }, null, SVG));
    const [x0, y0] = r.path[0], [x1, y1] = r.path[r.path.length - 1];
    plot.append(el("circle", { cx: px(x0), cy: py(y0), r: 4, fill: "#fff", stroke: "#000" }, null, SVG));
    plot.append(r.diverged
      ? el("text", { x: px(x1), y: py(y1) + 6, "text-anchor": "middle", class: "diverged",
                     style: `font-size:18px; font-weight:bold; fill:${color(k)}; stroke:#000; stroke-width:0.6` }, "×", SVG)
      : el("circle", { cx: px(x1), cy: py(y1), r: 4, fill: color(k), stroke: "#000" }, null, SVG));
  });
}

function drawLosses(answer) {
  const svg = $("losses");
  svg.replaceChildren();
  const all = answer.runs.flatMap((r) => r.losses);
  const log = answer.grid.log && all.every((v) => v > 0);
  const t = (v) => (log ? Math.log10(Math.max(v, 1e-300)) : v);
  let lo = Math.min(...all.map(t)), hi = Math.max(...all.map(t));
  if (!all.length) { lo = 0; hi = 1; }
  if (hi - lo < 1e-12) { lo -= 0.5; hi += 0.5; }
  const steps = Math.max(1, ...answer.runs.map((r) => r.losses.length - 1));
  const px = (k) => LOSS.left + k / steps * LOSS.width;
  const py = (v) => LOSS.top + (hi - t(v)) / (hi - lo) * LOSS.height;
  svg.append(el("rect", { class: "axis", x: LOSS.left, y: LOSS.top, width: LOSS.width, height: LOSS.height }, null, SVG));
  for (const v of ticks(lo, hi, 4)) {
    const y = LOSS.top + (hi - v) / (hi - lo) * LOSS.height;
    svg.append(el("line", { class: "grid", x1: LOSS.left, x2: LOSS.left + LOSS.width, y1: y, y2: y }, null, SVG));
    svg.append(el("text", { x: LOSS.left - 4, y: y + 4, "text-anchor": "end" }, fmt(log ? 10 ** v : v), SVG));
  }
  for (const k of ticks(0, steps, 4))
    svg.append(el("text", { x: px(k), y: LOSS.top + LOSS.height + 14, "text-anchor": "middle" }, String(Math.round(k)), SVG));
  svg.append(el("text", { x: LOSS.left + LOSS.width, y: LOSS.top + LOSS.height + 28, "text-anchor": "end" }, "step", SVG));
  answer.runs.forEach((r, k) => {
    const points = r.losses.map((v, s) => `${px(s).toFixed(2)},${py(v).toFixed(2)}`).join(" ");
    svg.append(el("polyline", { class: "loss", points, fill: "none", stroke: color(k),
                                "stroke-width": 1.5, "data-index": k, "data-optimizer": r.name,
                                "data-losses": JSON.stringify(r.losses) }, null, SVG));
  });
}

function drawLegend(answer) {
  const legend = $("legend");
  legend.replaceChildren();
  answer.runs.forEach((r, k) => {
    const settings = Object.entries(r.settings).map(([h, v]) => `${HYPER_LABELS[h] || "lr"}=${v}`).join(" ");
    const n = r.path.length - 1;
    const end = r.error ? r.error : r.diverged ? `diverged after ${Math.max(n, 0)} steps (cut at the first inf/NaN)`
                           : `f = ${r.losses.length ? r.losses[n].toPrecision(4) : "?"} after ${n} steps`;
    const row = el("div", { "data-index": k, class: r.diverged ? "diverged" : "" });
    const swatch = el("span", { class: "swatch" });
    swatch.style.background = color(k);
    row.append(swatch, el("span", {}, `${r.name} ${settings}: ${end}`));
    legend.append(row);
  });
}

function draw(answer) {
  drawContours(answer.grid);
  drawMap(answer);
  drawLosses(answer);
  drawLegend(answer);
}

// ---- start ---------------------------------------------------------------------------------

async function init() {
  try {
    info = await (await fetch("api/functions")).json();
  } catch (e) {
    showError(`could not load /api/functions from the lab server: ${e.message}`);
    status("error", "error");
    return;
  }
  for (const name of Object.keys(info.functions)) $("function").append(el("option", { value: name }, name));
  $("function").value = info.defaults.function;
  $("steps").value = String(info.defaults.steps);
  for (const name of info.defaults.optimizers) addOptimizer(name);
  setFunction(info.defaults.function);
  $("function").addEventListener("change", () => { setFunction($("function").value); run(); });
  $("add-optimizer").addEventListener("click", () => {
    const used = new Set([...$("optimizers").querySelectorAll("select[name=name]")].map((s) => s.value));
    addOptimizer(Object.keys(info.optimizers).find((n) => !used.has(n)) || "sgd");
  });
  $("controls").addEventListener("submit", (e) => { e.preventDefault(); run(); });
  run();
}

init();
