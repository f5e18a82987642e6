// The live lab's page: controls made from each explorable's knobs (GET /api), a
// request per change (GET /api/<explorable>?knob=value), and the figure specs of
// the answer drawn with plotly.js. Nothing here computes a loss or a step: the
// numbers drawn are the server's, as lossopt computed them.
"use strict";

const lab = {
  explorables: {},
  current: null,
  values: {},
  answer: null,
  controller: null,
  seq: 0,
  drawn: 0,          // answers drawn so far (the browser tests wait on it)
  errors: 0,         // error messages shown so far
  tab: Math.random().toString(36).slice(2),
  playAt: null,
  timer: null,
};
window.lab = lab;

const $ = (id) => document.getElementById(id);

// -- the page's language: its messages come with the page (the server's catalog, looked up
// by their English, wrapped in _() here so that `make catalogs` finds them); every request
// asks for the page's language
const MESSAGES = JSON.parse($("messages").textContent || "{}");
const LANG = document.documentElement.lang || "en";
const _ = (text) => MESSAGES[text] || text;
const withLang = (url) => `${url}${url.includes("?") ? "&" : "?"}lang=${encodeURIComponent(LANG)}`;

// -- the figure spec, drawn with plotly ------------------------------------------------
const SYMBOLS = { circle: "circle", ring: "circle-open", x: "x", star: "star", square: "square",
                  diamond: "diamond" };

function trace(s, upTo) {
  const cut = (a) => (upTo == null ? a : a.slice(0, upTo + 1));
  const legend = s.legend && !!s.name;
  if (s.kind === "line") {
    return { type: "scatter", mode: "lines", name: s.name, x: cut(s.x), y: cut(s.y), showlegend: legend,
             line: { color: s.color || undefined, width: s.width, dash: s.dash ? "dash" : "solid" } };
  }
  if (s.kind === "scatter") {
    return { type: "scatter", mode: s.text ? "markers+text" : "markers", name: s.name, x: s.x, y: s.y,
             text: s.text || undefined, textposition: "top right", showlegend: legend,
             marker: { color: s.color || undefined, size: s.size, symbol: SYMBOLS[s.symbol] || "circle" } };
  }
  if (s.kind === "bar") {
    return { type: "bar", name: s.name, x: s.x.map(String), y: s.y, showlegend: legend,
             text: s.text ? s.text.map((t) => t.replace(/\n/g, "<br>")) : undefined,
             textposition: s.text ? "outside" : undefined, marker: { color: s.color || undefined },
             error_y: s.error ? { type: "data", array: s.error, visible: true } : undefined };
  }
  if (s.kind === "contour") {
    const lv = s.levels || [];
    const contours = lv.length > 1
      ? { coloring: "lines", start: lv[0], end: lv[lv.length - 1], size: lv[1] - lv[0] }
      : { coloring: "lines" };
    return { type: "contour", name: s.name, x: s.x, y: s.y, z: s.z, contours, showscale: false,
             autocontour: lv.length <= 1, colorscale: [[0, "#bbbbbb"], [1, "#bbbbbb"]],
             line: { width: 1 }, hoverinfo: "x+y", showlegend: false };
  }
  return null; // vline / hline are shapes
}

function axis(a) {
  const out = { title: { text: a.label }, type: a.scale === "log" ? "log" : "linear" };
  if (a.range) out.range = a.scale === "log" ? a.range.map(Math.log10) : a.range;
  return out;
}

function draw(div, spec, upTo) {
  const traces = spec.series.map((s) => trace(s, spec.name === "paths" ? upTo : null)).filter(Boolean);
  const shapes = [], annotations = [];
  for (const s of spec.series) {
    if (s.kind !== "vline" && s.kind !== "hline") continue;
    const v = s.kind === "vline";
    const at = v ? s.x[0] : s.y[0];
    if (at == null) continue;
    shapes.push({ type: "line", xref: v ? "x" : "paper", yref: v ? "paper" : "y",
                  x0: v ? at : 0, x1: v ? at : 1, y0: v ? 0 : at, y1: v ? 1 : at, name: s.name,
                  line: { color: s.color || "#888", dash: s.dash ? "dash" : "solid", width: 1.5 } });
    annotations.push({ xref: v ? "x" : "paper", yref: v ? "paper" : "y", x: v ? at : 1, y: v ? 1 : at,
                       text: s.name, showarrow: false, xanchor: v ? "left" : "right",
                       yanchor: "bottom", font: { size: 11, color: s.color || "#555" } });
  }
  const layout = { title: { text: spec.title, font: { size: 14 } }, xaxis: axis(spec.x), yaxis: axis(spec.y),
                   font: { family: getComputedStyle(document.body).fontFamily },  // the page's, Korean too
                   shapes, annotations, margin: { l: 60, r: 20, t: 40, b: 45 },
                   legend: { font: { size: 11 } }, uirevision: spec.name, barmode: "group" };
  if (spec.equal_aspect) layout.yaxis.scaleanchor = "x";
  const click = lab.answer && lab.answer.numbers.click;
  if (click && click.figure === spec.name) layout.dragmode = false;  // a click places, no zoom
  return Plotly.react(div, traces, layout, { displayModeBar: false, responsive: true });
}

function drawAll() {
  const figures = lab.answer.figures;
  const holder = $("figures");
  while (holder.children.length > figures.length) holder.lastChild.remove();
  figures.forEach((spec, i) => {
    let div = holder.children[i];
    if (!div) {
      div = document.createElement("div");
      div.className = "figure";
      holder.appendChild(div);
    }
    div.id = `fig-${spec.name || i}`;
    div.dataset.figure = spec.name;
    draw(div, spec, lab.playAt);
    const click = lab.answer.numbers.click;  // {figure, x: knob, y: knob}: a click sets them
    if (click && click.figure === spec.name && div.dataset.clicks !== lab.current) {
      div.dataset.clicks = lab.current;
      div.onclick = (event) => placeAt(div, event);
    }
  });
  const notes = $("notes");
  notes.replaceChildren(...lab.answer.notes.map((text) => {
    const li = document.createElement("li");
    li.textContent = text;
    return li;
  }));
}

// A click anywhere in the plotting area: its data coordinates (plotly's pixel to data
// conversion) become the values of the two knobs the answer names ({x, y}), or of the
// pair among several ({points: [[x, y], ...]}) whose point lies nearest the click.
function placeAt(div, event) {
  const click = lab.answer && lab.answer.numbers.click;
  if (!click || click.figure !== div.dataset.figure) return;
  const layout = div._fullLayout, xa = layout.xaxis, ya = layout.yaxis;
  const box = div.getBoundingClientRect();
  const px = event.clientX - box.left - xa._offset, py = event.clientY - box.top - ya._offset;
  if (px < 0 || py < 0 || px > xa._length || py > ya._length) return;
  const pairs = click.points || [[click.x, click.y]];
  const away = ([x, y]) => Math.hypot(xa.d2p(lab.values[x]) - px, ya.d2p(lab.values[y]) - py);
  const nearest = pairs.reduce((best, pair) => (away(pair) < away(best) ? pair : best));
  const knobs = lab.explorables[lab.current].knobs;
  for (const [name, value] of [[nearest[0], xa.p2d(px)], [nearest[1], ya.p2d(py)]]) {
    const knob = knobs.find((k) => k.name === name);
    const step = knob.step || 0.1;
    setValue(name, Math.min(knob.hi, Math.max(knob.lo, Math.round(value / step) * step)));
    lab.values[name] = Number(lab.values[name].toPrecision(6));
  }
  update();
}

// -- controls made from the knobs ------------------------------------------------------
function format(knob, value) {
  if (knob.kind === "subset") return value.join(",");
  if (knob.kind === "bool") return value ? "true" : "false";
  if (typeof value !== "number") return String(value);
  if (knob.kind === "float") return String(Number(value.toPrecision(6)));
  return String(value);
}

function query() {
  const ex = lab.explorables[lab.current];
  return ex.knobs.map((k) => `${k.name}=${encodeURIComponent(format(k, lab.values[k.name])).replace(/%2C/g, ",")}`).join("&");
}

function setValue(name, value) {
  lab.values[name] = value;
  const knob = lab.explorables[lab.current].knobs.find((k) => k.name === name);
  const box = $(`knob-${name}`);
  if (!box) return;
  if (knob.kind === "float" || knob.kind === "int") {
    box.querySelector("input[type=number]").value = value;
    const slider = box.querySelector("input[type=range]");
    slider.value = knob.scale === "log" ? Math.log10(value) : value;
  } else if (knob.kind === "choice") {
    box.querySelector("select").value = value;
  } else if (knob.kind === "bool") {
    box.querySelector("input").checked = value;
  } else if (knob.kind === "subset") {
    box.querySelectorAll("input").forEach((c) => { c.checked = value.includes(c.value); });
  }
}

function control(knob) {
  const box = document.createElement("div");
  box.className = "knob";
  box.id = `knob-${knob.name}`;
  box.title = knob.help;
  const label = document.createElement("label");
  const strong = document.createElement("b");
  strong.textContent = knob.label;
  label.append(strong, ` ${knob.help}`);
  box.appendChild(label);
  const row = document.createElement("div");
  row.className = "row";
  box.appendChild(row);
  const changed = (value) => { lab.values[knob.name] = value; update(); };
  if (knob.kind === "float" || knob.kind === "int") {
    const log = knob.scale === "log";
    const slider = document.createElement("input");
    slider.type = "range";
    slider.min = log ? Math.log10(knob.lo) : knob.lo;
    slider.max = log ? Math.log10(knob.hi) : knob.hi;
    slider.step = knob.kind === "int" && !log ? 1 : (log ? (slider.max - slider.min) / 400 : (knob.step || (knob.hi - knob.lo) / 400));
    const number = document.createElement("input");
    number.type = "number";
    number.step = "any";
    number.name = knob.name;
    slider.addEventListener("input", () => {
      let v = log ? 10 ** Number(slider.value) : Number(slider.value);
      v = knob.kind === "int" ? Math.round(v) : Number(v.toPrecision(4));
      number.value = v;
      changed(v);
    });
    number.addEventListener("change", () => {
      // sent as typed: the server says what is wrong with it
      lab.values[knob.name] = number.value === "" ? number.value : Number(number.value);
      if (number.value !== "" && Number.isFinite(Number(number.value))) {
        slider.value = log ? Math.log10(Math.max(Number(number.value), 1e-300)) : number.value;
      }
      update();
    });
    row.append(slider, number);
  } else if (knob.kind === "choice") {
    const select = document.createElement("select");
    select.name = knob.name;
    for (const c of knob.choices) select.add(new Option(knob.labels[c] || c, c));
    select.addEventListener("change", () => changed(select.value));
    row.appendChild(select);
  } else if (knob.kind === "bool") {
    const box2 = document.createElement("input");
    box2.type = "checkbox";
    box2.name = knob.name;
    box2.addEventListener("change", () => changed(box2.checked));
    row.appendChild(box2);
  } else if (knob.kind === "subset") {
    const group = document.createElement("span");
    group.className = "subset";
    for (const c of knob.choices) {
      const l = document.createElement("label");
      const check = document.createElement("input");
      check.type = "checkbox";
      check.value = c;
      check.addEventListener("change", () => {
        changed(Array.from(group.querySelectorAll("input:checked")).map((i) => i.value));
      });
      l.append(check, ` ${knob.labels[c] || c}`);
      group.appendChild(l);
    }
    row.appendChild(group);
  }
  return box;
}

function parseValue(knob, text) {
  if (knob.kind === "subset") return text.split(",").filter(Boolean);
  if (knob.kind === "bool") return text === "true";
  if (knob.kind === "choice") return text;
  const n = Number(text);
  return Number.isFinite(n) ? n : text;
}

// -- one request per change; a newer one aborts the older ------------------------------
async function update() {
  if (lab.explorables[lab.current].stream) return liveTraining.changed();
  if (lab.controller) lab.controller.abort();
  const controller = new AbortController();
  lab.controller = controller;
  const seq = ++lab.seq;
  const name = lab.current;
  const q = query();
  history.replaceState(null, "", `#${name}?${q}`);
  let response, body;
  const began = performance.now();
  try {
    response = await fetch(withLang(`/api/${name}?${q}`), {
      signal: controller.signal, headers: { "X-Lab-Tab": lab.tab, "X-Lab-Seq": String(seq) },
    });
    if (response.status === 409 || seq !== lab.seq) return; // overtaken
    body = await response.json();
  } catch (error) {
    if (error.name === "AbortError" || seq !== lab.seq) return; // a newer change took over
    return showError(_("no answer from the lab's server: {error}").replace("{error}", String(error)));
  }
  if (seq !== lab.seq) return;
  if (!response.ok) return showError(body.error);
  const answered = performance.now();
  show(body);
  // the benchmark's split of a redraw: server and transfer, then drawing
  lab.timing = { answer: answered - began, draw: performance.now() - answered };
}

// -- a run streamed as Server-Sent Events: start, pause, resume, reset ----------------
// A changed knob during a run closes its stream, which stops it on the server, and
// starts a new one: no stale run goes on.
const liveTraining = {
  source: null,
  state: "idle",
  token: 0,      // bumped by every start and reset: an older start that resumes stops there
  running: "",   // the query of the run in progress
  asked: null,   // "paused" or "training": what a click asked, until the server says so
  enter() {
    $("train").hidden = false;
    this.reset();
  },
  leave() {
    this.close();
    $("train").hidden = true;
  },
  close() {
    if (this.source) this.source.close();
    this.source = null;
    latest.drop();  // an answer of this run still waiting is never drawn
  },
  setState(state) {
    this.state = state;
    document.body.dataset.training = state;
    $("train-pause").textContent = state === "paused" ? _("resume") : _("pause");
    $("train-pause").disabled = !(state === "training" || state === "paused");
  },
  async start() {
    this.close();
    const token = ++this.token;
    const q = query();
    this.running = q;
    const check = await fetch(withLang(`/api/${lab.current}/check?${q}`));
    if (token !== this.token) return;
    if (!check.ok) { this.setState("idle"); return showError((await check.json()).error); }
    history.replaceState(null, "", `#${lab.current}?${q}`);
    const source = new EventSource(withLang(`/api/${lab.current}/stream?tab=${lab.tab}&${q}`));
    this.source = source;
    this.asked = null;
    this.setState("training");
    // Only the newest answer is drawn (see `latest`); the last one at once, so that a
    // finished run's state and its drawing change together.
    const onAnswer = (event) => {
      if (source !== this.source) return;
      const draw = () => {
        const answer = JSON.parse(event.data);
        show(answer);
        this.setState(this.said(answer.numbers.state));
      };
      if (event.type === "done") {
        this.close();
        latest.now(draw);
      } else latest.later(draw);
    };
    source.addEventListener("progress", onAnswer);
    source.addEventListener("done", onAnswer);
    source.addEventListener("error", (event) => {
      if (source !== this.source) return;
      if (event.data) showError(JSON.parse(event.data));
      this.close();
      if (this.state !== "done") this.setState("idle");
    });
  },
  async control(action) {
    await fetch(withLang(`/api/${lab.current}/control?tab=${lab.tab}&action=${action}`), { method: "POST" });
  },
  pause() {
    if (this.state === "training") this.ask("pause", "paused");
    else if (this.state === "paused") this.ask("resume", "training");
  },
  ask(action, state) {
    this.asked = state;
    this.setState(state);
    this.control(action);
  },
  // The state to show for the one an answer reports: answers sent before a click reached
  // the server still say the old state, and must not undo what the click shows.
  said(state) {
    if (state === this.asked || (state !== "training" && state !== "paused")) this.asked = null;
    return this.asked || state;
  },
  reset() {
    this.close();
    this.token += 1;
    this.running = "";
    this.asked = null;
    this.setState("idle");
    lab.answer = null;
    $("figures").replaceChildren();
    $("notes").replaceChildren();
    $("play").hidden = true;
    $("error").hidden = true;
  },
  changed() {
    history.replaceState(null, "", `#${lab.current}?${query()}`);
    if (this.state === "training" || this.state === "paused") {
      if (query() !== this.running) this.start();
    } else if (this.state !== "idle" || lab.answer) this.reset();
  },
};
window.liveTraining = liveTraining;

// -- a stream's answers drawn as fast as the page can, never faster ---------------------
// A run sends answers several times a second; on a loaded machine drawing each one (two
// plotly figures) can take longer than the next takes to come, and clicks and typing
// would wait behind a queue of stale drawings. Instead each answer replaces the one
// waiting, and one drawing, in an animation frame, shows the newest: at most one per
// GAP, longer after a slow drawing (twice its time, so that drawing takes at most a third
// of the page's time) but no longer than MAX_GAP, so the progress shown is never older
// than about half a second. A hidden tab draws nothing until it is shown again.
const latest = {
  GAP: 100,
  MAX_GAP: 500,
  waiting: null,   // the newest answer's drawing, not yet run
  timer: null,
  frame: null,
  last: -Infinity, // when the last drawing ended (performance.now())
  took: 0,         // how long it took, ms
  later(draw) {
    this.waiting = draw;
    if (this.timer !== null || this.frame !== null) return;  // one is already due: it draws this
    const gap = Math.min(this.MAX_GAP, Math.max(this.GAP, 2 * this.took));
    const wait = Math.max(0, this.last + gap - performance.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.frame = requestAnimationFrame(() => { this.frame = null; this.now(this.waiting); });
    }, wait);
  },
  now(draw) {
    this.drop();
    if (!draw) return;
    const began = performance.now();
    draw();
    this.last = performance.now();
    this.took = this.last - began;
  },
  drop() {
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.frame !== null) cancelAnimationFrame(this.frame);
    this.timer = this.frame = this.waiting = null;
  },
};

function show(answer) {
  $("error").hidden = true;
  lab.answer = answer;
  setupPlay();
  drawAll();
  lab.drawn += 1;
  document.body.dataset.drawn = String(lab.drawn);
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
  lab.errors += 1;
  document.body.dataset.errors = String(lab.errors);
}

// -- play a path step by step: only which of the computed points are drawn ---------------
function setupPlay() {
  const play = lab.answer.numbers.play;
  $("play").hidden = !play;
  if (!play) { lab.playAt = null; return; }
  const slider = $("play-step");
  slider.max = play.steps;
  // a new answer is a new path: show it whole (unless it is playing)
  if (!lab.timer || lab.playAt > play.steps) lab.playAt = null;
  slider.value = lab.playAt == null ? play.steps : lab.playAt;
  $("play-at").textContent = `${slider.value} / ${play.steps}`;
}

function playTo(t) {
  const steps = lab.answer.numbers.play.steps;
  lab.playAt = t >= steps ? null : t;
  $("play-step").value = t;
  $("play-at").textContent = `${t} / ${steps}`;
  drawAll();
}

function togglePlay() {
  if (lab.timer) { clearInterval(lab.timer); lab.timer = null; return; }
  let t = 0;
  lab.timer = setInterval(() => {
    playTo(t);
    t += 1;
    if (t > lab.answer.numbers.play.steps) { clearInterval(lab.timer); lab.timer = null; }
  }, 120);
}

// -- routing: #<explorable>?<knob>=<value>&... ----------------------------------------
function route() {
  const hash = decodeURIComponent(location.hash.slice(1));
  const [name, q] = hash.split("?");
  const chosen = lab.explorables[name] ? name : Object.keys(lab.explorables)[0];
  const given = new URLSearchParams(q || "");
  const ex = lab.explorables[chosen];
  if (chosen !== lab.current) {
    lab.current = chosen;
    lab.playAt = null;
    $("figures").replaceChildren();
    $("title").textContent = ex.title;
    $("intro").textContent = ex.intro;
    $("controls").replaceChildren(...ex.knobs.map(control));
    document.querySelectorAll("#explorables a").forEach((a) => a.classList.toggle("current", a.dataset.name === chosen));
    liveTraining.leave();
  }
  lab.values = {};
  for (const knob of ex.knobs) {
    lab.values[knob.name] = given.has(knob.name) ? parseValue(knob, given.get(knob.name)) : knob.default;
    setValue(knob.name, lab.values[knob.name]);
  }
  if (ex.stream) return liveTraining.enter();
  update();
}

async function init() {
  const response = await fetch(withLang("/api"));
  const { explorables } = await response.json();
  const list = $("explorables");
  for (const ex of explorables) {
    lab.explorables[ex.name] = ex;
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = `#${ex.name}`;
    a.textContent = ex.title;
    a.dataset.name = ex.name;
    li.appendChild(a);
    list.appendChild(li);
  }
  $("play-button").addEventListener("click", togglePlay);
  $("train-start").addEventListener("click", () => liveTraining.start());
  $("train-pause").addEventListener("click", () => liveTraining.pause());
  $("train-reset").addEventListener("click", () => liveTraining.reset());
  $("play-step").addEventListener("input", () => playTo(Number($("play-step").value)));
  // another language: the page again in it, on the same explorable and settings
  $("language").addEventListener("change", () => {
    location.href = `/?lang=${encodeURIComponent($("language").value)}${location.hash}`;
  });
  window.addEventListener("hashchange", () => {
    const name = decodeURIComponent(location.hash.slice(1)).split("?")[0];
    if (name !== lab.current) route();
  });
  route();
}

init();
