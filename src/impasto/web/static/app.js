/* impasto studio: uploads, settings, one job at a time with live progress, and a gallery.
   Plain JavaScript, no build step. Talks to the JSON API in impasto/web/app.py. */
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  info: null,
  preset: "balanced",
  content: null,          // the photo's upload description
  contentMask: null,      // its optional detail mask
  styles: [],             // [{upload, weight, mask}]
  busy: 0,                // uploads in flight
  job: null,              // the watched job's id
  jobState: null,
  events: null,           // its EventSource
  previewShown: 0,
  progressMax: 0,
  result: null,           // the result shown on the canvas
  results: [],
  maskTarget: null,
  source: "upload",       // what paints: "upload" (style images, optimization) or "model" (a trained model)
  models: [],             // the server's models (GET /api/models)
  model: null,            // the chosen model's file name, as the server listed it
};

const modelMode = () => state.source === "model";


// ---------------------------------------------------------------------------------------------
// Talking to the server
// ---------------------------------------------------------------------------------------------
/* The XSRF cookie the page was given, echoed in a header on every request that changes something:
   another site can make the browser send the cookie, but cannot read it to write the header. */
function xsrfToken() {
  const name = state.info ? state.info.xsrf_cookie : null;
  for (const part of document.cookie.split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (name ? key === name : key.startsWith("impasto_xsrf_")) return decodeURIComponent(value.join("="));
  }
  return "";
}

async function api(path, options = {}) {
  const method = (options.method || "GET").toUpperCase();
  const headers = { ...(options.headers || {}) };
  if (!["GET", "HEAD"].includes(method)) headers["X-XSRF-Token"] = xsrfToken();
  let response;
  try {
    response = await fetch(path, { credentials: "same-origin", ...options, headers });
  } catch (err) {
    throw new Error("cannot reach the studio server; is `impasto serve` still running?");
  }
  let body = null;
  try { body = await response.json(); } catch (err) { /* not JSON */ }
  if (!response.ok) {
    const error = new Error((body && body.error) || `the server answered ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

async function uploadFile(file, kind) {
  const limit = state.info ? state.info.limits.upload_bytes : Infinity;
  if (file.size > limit) {
    throw new Error(`'${file.name}': ${(file.size / 1048576).toFixed(1)} MB is too large; the limit is ${(limit / 1048576).toFixed(0)} MB`);
  }
  const form = new FormData();
  form.append("file", file, file.name);
  return api(`/api/uploads?kind=${kind}`, { method: "POST", body: form });
}

// ---------------------------------------------------------------------------------------------
// Inputs: the photo, the paintings and their masks
// ---------------------------------------------------------------------------------------------
function setBusy(zone, on) {
  state.busy += on ? 1 : -1;
  zone.classList.toggle("busy", on);
  updateStart();
}

async function addContent(files) {
  const file = files && files[0];
  if (!file) return;
  const zone = $("content-drop");
  $("content-error").textContent = "";
  setBusy(zone, true);
  try {
    state.content = await uploadFile(file, "content");
  } catch (err) {
    $("content-error").textContent = err.message;
  } finally {
    setBusy(zone, false);
    renderInputs();
  }
}

async function addStyles(files) {
  const max = state.info ? state.info.limits.styles : 4;
  const zone = $("style-drop");
  $("style-error").textContent = "";
  const list = Array.from(files || []);
  const room = max - state.styles.length;
  if (list.length > room) {
    $("style-error").textContent = room > 0
      ? `at most ${max} paintings: only the first ${room} of these were added`
      : `at most ${max} paintings; remove one first`;
  }
  setBusy(zone, true);
  const errors = [];
  for (const file of list.slice(0, Math.max(room, 0))) {
    try {
      const upload = await uploadFile(file, "style");
      state.styles.push({ upload, weight: 50, mask: null });
      renderInputs();
    } catch (err) {
      errors.push(err.message);
    }
  }
  setBusy(zone, false);
  if (errors.length) $("style-error").textContent = errors.join(" · ");
  renderInputs();
}

async function addMask(file, target) {
  const item = target === "content" ? null : state.styles[target];
  const errorBox = $(target === "content" ? "content-error" : "style-error");
  if (!file || (target !== "content" && !item)) return;
  errorBox.textContent = "";
  try {
    const mask = await uploadFile(file, "mask");
    if (item) item.mask = mask; else state.contentMask = mask;
  } catch (err) {
    errorBox.textContent = err.message;
  }
  renderInputs();
}

function renderInputs() {
  const zone = $("content-drop");
  zone.classList.toggle("filled", !!state.content);
  if (state.content) {
    $("content-thumb").src = state.content.thumbnail;
    $("content-name").textContent = state.content.filename;
    $("content-dims").textContent = `${state.content.width}×${state.content.height}`;
  }
  $("content-mask-thumb").hidden = !state.contentMask;
  if (state.contentMask) $("content-mask-thumb").src = state.contentMask.thumbnail;
  $("content-mask-btn").textContent = state.contentMask ? "Remove detail mask" : "Add detail mask";

  const list = $("styles-list");
  list.textContent = "";
  list.classList.toggle("many", state.styles.length > 1);
  const total = state.styles.reduce((sum, s) => sum + s.weight, 0) || 1;
  state.styles.forEach((item, index) => {
    const node = $("style-item").content.firstElementChild.cloneNode(true);
    node.querySelector(".thumb").src = item.upload.thumbnail;
    node.querySelector(".thumb").alt = `Painting ${index + 1}`;
    node.querySelector(".name").textContent = item.upload.filename;
    node.querySelector(".dims").textContent = `${item.upload.width}×${item.upload.height}`;
    const range = node.querySelector(".blend input");
    const out = node.querySelector(".blend output");
    range.value = item.weight;
    range.setAttribute("aria-label", `Blend weight of painting ${index + 1}`);
    paintRange(range);
    out.textContent = `${Math.round((100 * item.weight) / total)}%`;
    range.addEventListener("input", () => {
      item.weight = Number(range.value);
      paintRange(range);
      const sum = state.styles.reduce((s, x) => s + x.weight, 0) || 1;
      list.querySelectorAll(".blend output").forEach((o, i) => {
        o.textContent = `${Math.round((100 * state.styles[i].weight) / sum)}%`;
      });
      updateStart();
    });
    const maskBtn = node.querySelector(".mask-btn");
    const maskThumb = node.querySelector(".mask-thumb");
    if (item.mask) {
      maskThumb.src = item.mask.thumbnail;
      maskThumb.hidden = false;
      maskBtn.textContent = "Remove mask";
      maskBtn.addEventListener("click", () => { item.mask = null; renderInputs(); });
    } else {
      maskBtn.addEventListener("click", () => { state.maskTarget = index; $("mask-file").click(); });
    }
    node.querySelector(".remove").addEventListener("click", () => {
      state.styles.splice(index, 1);
      $("style-error").textContent = "";
      renderInputs();
    });
    list.appendChild(node);
  });
  const max = state.info ? state.info.limits.styles : 4;
  $("style-count").textContent = state.styles.length
    ? `${state.styles.length} of ${max}${state.styles.length > 1 ? " · blended" : ""}`
    : `up to ${max} · blended`;
  $("style-drop").hidden = state.styles.length >= max;
  updateStart();
}

function wireDropzone(zone, input, onFiles) {
  const open = () => { if (!zone.classList.contains("filled")) input.click(); };
  zone.addEventListener("click", (event) => {
    if (event.target.closest("button")) return;
    open();
  });
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); open(); }
  });
  input.addEventListener("change", () => { onFiles(input.files); input.value = ""; });
  ["dragenter", "dragover"].forEach((type) => zone.addEventListener(type, (event) => {
    event.preventDefault();
    zone.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((type) => zone.addEventListener(type, () => zone.classList.remove("over")));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    onFiles(event.dataTransfer.files);
  });
}

// ---------------------------------------------------------------------------------------------
// Trained models (impasto serve --models DIR)
// ---------------------------------------------------------------------------------------------
function setSource(source) {
  state.source = source === "model" && state.info && state.info.models ? "model" : "upload";
  document.body.classList.toggle("model-mode", modelMode());
  document.querySelectorAll("#painting-source button").forEach((b) => b.setAttribute("aria-checked", String(b.dataset.source === state.source)));
  $("painting-title").textContent = modelMode() ? "Model" : "Paintings";
  if (modelMode()) loadModels();
  updateStart();
}

/* The list is read from the folder on every call: a model copied there shows up. */
async function loadModels() {
  if (!state.info || !state.info.models) return;
  try {
    state.models = (await api("/api/models")).models;
  } catch (err) {
    $("style-error").textContent = err.message;
    return;
  }
  renderModels();
}

function renderModels() {
  const select = $("model-select");
  select.textContent = "";
  const usable = state.models.filter((m) => m.usable);
  if (!usable.some((m) => m.name === state.model)) state.model = usable.length ? usable[0].name : null;
  for (const m of state.models) {
    const option = document.createElement("option");
    option.value = m.name;
    option.textContent = m.usable ? `${m.style} · ${m.name}` : `${m.name} · cannot be used`;
    option.disabled = !m.usable;
    option.title = m.usable ? `trained on ${m.size} px crops for ${m.steps} steps` : m.error;
    select.appendChild(option);
  }
  if (!state.models.length) {
    const option = document.createElement("option");
    option.textContent = "No models in the folder";
    option.disabled = true;
    select.appendChild(option);
  }
  select.value = state.model || "";
  describeModel();
  updateStart();
}

function describeModel() {
  const m = state.models.find((x) => x.name === state.model);
  const lines = [];
  if (m) lines.push(`Paints like ${m.style}; trained on ${m.size} px crops for ${m.steps.toLocaleString()} steps.`);
  else lines.push(state.models.length ? "No usable model in the folder." : "No models in the folder yet: add .impasto files there and reload.");
  for (const bad of state.models.filter((x) => !x.usable)) lines.push(`${bad.name}: ${bad.error}`);
  $("model-desc").textContent = lines.join("\n");
}

function showColorTransfer() {
  $("color-transfer").disabled = $("preserve-color").value !== "histogram";
}

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------
const presetInfo = () => state.info.presets[state.preset];
const fmtTimes = (x) => (x >= 10 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toFixed(2)) + "×";

function paintRange(range) {
  const min = Number(range.min), max = Number(range.max);
  range.style.setProperty("--fill", `${(100 * (Number(range.value) - min)) / (max - min)}%`);
}

function showSliders() {
  for (const id of ["style-strength", "content-strength", "max-size", "style-scale"]) paintRange($(id));
  $("style-strength-out").textContent = fmtTimes(10 ** Number($("style-strength").value));
  $("content-strength-out").textContent = fmtTimes(10 ** Number($("content-strength").value));
  $("max-size-out").textContent = `${$("max-size").value} px`;
  $("style-scale-out").textContent = fmtTimes(2 ** Number($("style-scale").value));
}

function renderPresets() {
  const box = $("presets");
  box.textContent = "";
  for (const name of Object.keys(state.info.presets)) {
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("role", "radio");
    button.dataset.preset = name;
    button.textContent = name[0].toUpperCase() + name.slice(1);
    button.title = state.info.presets[name].description;
    button.addEventListener("click", () => applyPreset(name));
    box.appendChild(button);
  }
}

function selectPreset(name) {
  state.preset = name;
  document.querySelectorAll("#presets button").forEach((b) => b.setAttribute("aria-checked", String(b.dataset.preset === name)));
  $("preset-desc").textContent = presetInfo().description;
}

function applyPreset(name) {
  selectPreset(name);
  const p = presetInfo();
  $("style-strength").value = 0;
  $("content-strength").value = 0;
  $("max-size").value = Math.min(p.max_size, state.info.limits.max_size);
  $("style-scale").value = Math.log2(p.style_scale);
  $("preserve-color").value = p.preserve_color;
  $("color-transfer").value = "symmetric";
  $("steps").value = p.steps;
  $("seed").value = "";
  showSliders();
  showColorTransfer();
}

function readSettings() {
  if (modelMode()) {  // only what a model uses: the server refuses an optimization's settings with a model
    return {
      max_size: Number($("max-size").value),
      preserve_color: $("preserve-color").value,
      color_transfer: $("color-transfer").value,
    };
  }
  const p = presetInfo();
  const seed = $("seed").value.trim();
  const steps = parseInt($("steps").value, 10);
  return {
    preset: state.preset,
    style_weight: round(p.style_weight * 10 ** Number($("style-strength").value)),
    content_weight: round(p.content_weight * 10 ** Number($("content-strength").value)),
    max_size: Number($("max-size").value),
    style_scale: round(2 ** Number($("style-scale").value)),
    preserve_color: $("preserve-color").value,
    steps: Number.isFinite(steps) && steps > 0 ? steps : p.steps,
    seed: seed === "" ? null : Number(seed),
    style_blend: state.styles.length > 1 ? state.styles.map((s) => s.weight) : null,
  };
}

function writeSettings(s) {
  if (s.model) {
    setSource("model");
    state.model = s.model;
    $("model-select").value = s.model;
    $("max-size").value = s.max_size;
    $("preserve-color").value = s.preserve_color || "none";
    $("color-transfer").value = s.color_transfer || "symmetric";
    showSliders();
    showColorTransfer();
    return;
  }
  if (!state.info.presets[s.preset]) return;
  setSource("upload");
  selectPreset(s.preset);
  const p = presetInfo();
  const log10 = (x) => Math.log(x) / Math.LN10;
  $("style-strength").value = p.style_weight > 0 && s.style_weight > 0 ? log10(s.style_weight / p.style_weight) : 0;
  $("content-strength").value = p.content_weight > 0 && s.content_weight > 0 ? log10(s.content_weight / p.content_weight) : 0;
  $("max-size").value = s.max_size;
  $("style-scale").value = Math.log2(s.style_scale || 1);
  $("preserve-color").value = s.preserve_color || "none";
  $("steps").value = s.steps;
  $("seed").value = s.seed == null ? "" : s.seed;
  showSliders();
  showColorTransfer();
}

const round = (x) => Math.round(x * 1000) / 1000;

// ---------------------------------------------------------------------------------------------
// Jobs
// ---------------------------------------------------------------------------------------------
const ACTIVE = ["queued", "running"];

function updateStart() {
  const active = ACTIVE.includes(state.jobState);
  const painter = modelMode() ? !!state.model : state.styles.length > 0;
  const ready = !!state.content && painter && state.busy === 0;
  $("start-btn").disabled = !ready || active;
  $("cancel-btn").disabled = !active;
  $("start-label").textContent = active ? "Painting…" : "Paint";
  $("start-hint").textContent = active ? "You can cancel at any time."
    : modelMode() && !painter ? "Choose a model to begin."
    : modelMode() && !state.content ? "Add a photo to begin."
    : modelMode() ? (state.busy ? "Checking the image…" : "Ready when you are.")
    : !state.content && !state.styles.length ? "Add a photo and a painting to begin."
    : !state.content ? "Add a photo to begin." : !state.styles.length ? "Add a painting to begin."
    : state.busy ? "Checking the images…" : "Ready when you are.";
}

async function start() {
  hideBanner();
  const body = modelMode()
    ? { content: state.content.id, model: state.model, settings: readSettings() }
    : { content: state.content.id, styles: state.styles.map((s) => s.upload.id), settings: readSettings() };
  if (!modelMode()) {
    if (state.styles.some((s) => s.mask)) body.masks = state.styles.map((s) => (s.mask ? s.mask.id : null));
    if (state.contentMask) body.content_mask = state.contentMask.id;
  }
  $("start-btn").disabled = true;
  $("phase").textContent = "Starting…";
  $("stats").textContent = "";
  $("bar-fill").style.width = "0%";
  let job;
  try {
    job = await api("/api/jobs", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
  } catch (err) {
    showBanner(err.message);
    updateStart();
    return;
  }
  watch(job);
}

function watch(job) {
  if (state.events) state.events.close();
  state.job = job.id;
  try { sessionStorage.setItem("impasto-job", job.id); } catch (err) { /* private mode */ }
  state.jobState = null;
  state.previewShown = 0;
  state.progressMax = 0;
  state.result = null;
  $("result-bar").hidden = true;
  $("recipe").hidden = true;
  document.querySelectorAll(".gallery button.selected").forEach((b) => b.classList.remove("selected"));
  renderJob(job);
  const events = new EventSource(`/api/jobs/${job.id}/events`);
  state.events = events;
  events.onmessage = (event) => {
    const snapshot = JSON.parse(event.data);
    if (snapshot.id !== state.job) return;
    renderJob(snapshot);
    if (!ACTIVE.includes(snapshot.state)) events.close();
  };
  events.onerror = async () => {
    if (events.readyState === EventSource.CLOSED || !ACTIVE.includes(state.jobState)) return;
    try {
      renderJob(await api(`/api/jobs/${job.id}`));
    } catch (err) {
      events.close();
      showBanner(err.message);
      state.jobState = null;
      updateStart();
    }
  };
}

async function cancel() {
  if (!state.job) return;
  $("cancel-btn").disabled = true;
  try {
    renderJob(await api(`/api/jobs/${state.job}/cancel`, { method: "POST" }));
  } catch (err) {
    showBanner(err.message);
  }
}

function renderJob(job) {
  // A reply sent before the job ended (the cancel request's, a poll's) can arrive after the
  // event that ended it: never let it bring a finished job back to life.
  if (job.id === state.job && state.jobState && !ACTIVE.includes(state.jobState) && ACTIVE.includes(job.state)) return;
  const was = state.jobState;
  state.jobState = job.state;
  const progress = $("progress");
  progress.className = `progress ${job.state}`;
  const canvas = $("canvas");
  canvas.dataset.state = job.state;
  const badge = $("canvas-badge");

  let fraction = 0;
  if (job.total_steps) {
    fraction = job.eta != null && job.elapsed != null && job.elapsed + job.eta > 0
      ? job.elapsed / (job.elapsed + job.eta) : job.step / job.total_steps;
  }
  if (job.state === "done") fraction = 1;
  state.progressMax = Math.max(state.progressMax, fraction);
  const pct = Math.round(100 * state.progressMax);
  $("bar-fill").style.width = `${job.state === "queued" ? 0 : pct}%`;
  $("bar").setAttribute("aria-valuenow", String(pct));

  const byModel = !!(job.settings && job.settings.model);
  let phase = "", stats = "";
  if (job.state === "queued") {
    phase = "Waiting in the queue";
    stats = job.ahead ? `position ${job.position} · ${job.ahead} job${job.ahead > 1 ? "s" : ""} ahead` : "starting next";
  } else if (job.state === "running") {
    if (job.cancelling) phase = "Stopping…";
    else phase = byModel ? "Painting with the model…" : job.step ? `Painting · ${pct}%` : "Preparing the network…";
    if (job.step) {
      const parts = [`step ${job.step} of ${job.total_steps}`];
      if (job.scales > 1) parts.push(`scale ${job.scale} of ${job.scales}`);
      if (job.size) parts.push(`${job.size[0]}×${job.size[1]}`);
      parts.push(job.eta != null ? `about ${duration(job.eta)} left` : "estimating time…");
      stats = parts.join(" · ");
    }
  } else if (job.state === "done") {
    phase = "Done";
    stats = job.result ? doneText(job.result) : "";
  } else if (job.state === "cancelled") {
    phase = "Cancelled";
    stats = job.step && !byModel ? `stopped at step ${job.step} of ${job.total_steps}`
      : job.total_steps ? "stopped" : "removed from the queue";
  } else if (job.state === "failed") {
    phase = "Failed";
    showBanner(job.error || "the job failed");
  }
  $("phase").textContent = phase;
  $("stats").textContent = stats;
  document.title = job.state === "running" && job.step ? `${pct}% · impasto studio`
    : job.state === "queued" ? "Queued · impasto studio" : "impasto studio";

  badge.hidden = !ACTIVE.includes(job.state);
  badge.className = `canvas-badge${job.state === "running" ? " live" : ""}`;
  badge.textContent = job.state === "running" ? "Live preview" : "Queued";

  if (job.state === "done" && job.result) {
    showResult(job.result, true);
    if (was !== "done") loadGallery(job.result.id);
  } else if (job.preview && job.preview_version > state.previewShown) {
    showPreview(job.preview, job.preview_version);
  } else if (!job.preview && ACTIVE.includes(job.state)) {
    showPicture(state.content ? state.content.thumbnail : null);
  }
  updateStart();
}

function showPreview(url, version) {
  const image = new Image();
  image.onload = () => {
    if (version < state.previewShown) return;
    state.previewShown = version;
    showPicture(url);
  };
  image.src = url;
}

function showPicture(url) {
  const picture = $("picture");
  $("placeholder").hidden = !!url;
  picture.hidden = !url;
  if (url && picture.getAttribute("src") !== url) picture.src = url;
}

/* Scale the picture to fill the canvas (small pictures too), keeping its proportions. */
function fitPicture() {
  const picture = $("picture");
  if (picture.hidden || !picture.naturalWidth) return;
  const box = $("canvas").getBoundingClientRect();
  const scale = Math.min((box.width - 48) / picture.naturalWidth, (box.height - 48) / picture.naturalHeight);
  picture.style.width = `${Math.max(1, Math.floor(picture.naturalWidth * scale))}px`;
  picture.style.height = `${Math.max(1, Math.floor(picture.naturalHeight * scale))}px`;
}

// ---------------------------------------------------------------------------------------------
// Results and the gallery
// ---------------------------------------------------------------------------------------------
function showResult(result, fresh) {
  state.result = result;
  const canvas = $("canvas");
  if (!fresh) {
    canvas.dataset.state = "done";
    $("progress").className = "progress done";
    $("bar-fill").style.width = "100%";
    $("phase").textContent = "Opened from this session";
    $("stats").textContent = doneText(result);
    $("canvas-badge").hidden = true;
  }
  showPicture(result.image);
  $("result-bar").hidden = false;
  const s = result.settings;
  const meta = $("result-meta");
  meta.textContent = "";
  const facts = s.model ? [
    ["", `${result.width}×${result.height}`],
    ["model ", s.model],
    ["colours ", s.preserve_color],
  ] : [
    ["", `${result.width}×${result.height}`],
    ["preset ", s.preset],
    ["style ", fmtTimes(s.style_weight / (state.info.presets[s.preset] || {}).style_weight || 1)],
    ["seed ", String(s.seed)],
  ];
  for (const [label, value] of facts) {
    const span = document.createElement("span");
    span.append(label);
    const b = document.createElement("b");
    b.textContent = value;
    span.append(b);
    meta.append(span);
  }
  $("download-btn").href = result.image;
  $("recipe").hidden = true;
  $("recipe-btn").setAttribute("aria-expanded", "false");
  document.querySelectorAll(".gallery button").forEach((b) => b.classList.toggle("selected", b.dataset.id === result.id));
}

async function toggleRecipe() {
  const box = $("recipe");
  if (!box.hidden || !state.result) {
    box.hidden = true;
    $("recipe-btn").setAttribute("aria-expanded", "false");
    return;
  }
  try {
    const metadata = await api(state.result.recipe_url);
    const rows = metadata.model ? modelRows(metadata) : recipeRows(metadata);
    box.textContent = "";
    for (const [key, value, main] of rows) {
      const row = document.createElement("div");
      if (main) row.className = "key";
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = key.replace(/_/g, " ");
      dd.textContent = typeof value === "string" ? value : JSON.stringify(value);
      row.append(dt, dd);
      box.append(row);
    }
    box.hidden = false;
    $("recipe-btn").setAttribute("aria-expanded", "true");
  } catch (err) {
    showBanner(err.message);
  }
}

function recipeRows(metadata) {
  const recipe = metadata.recipe || {};
  const rows = [
    ["device", `${metadata.device} · ${metadata.precision}`], ["steps run", metadata.steps],
    ["time", `${metadata.elapsed_s} s`], ["style blend", metadata.style_blend],
  ];
  const keys = ["preset", "style_weight", "content_weight", "max_size", "preserve_color", "style_scale", "steps", "seed"];
  for (const key of keys) rows.push([key, recipe[key], true]);
  for (const [key, value] of Object.entries(recipe)) if (!keys.includes(key)) rows.push([key, value]);
  return rows;
}

/* What a model's picture records: the model (name, style, training), the painting options. */
function modelRows(metadata) {
  const model = metadata.model;
  const info = model.info || {};
  const rows = [
    ["device", `${metadata.device} · ${metadata.precision}`], ["time", `${metadata.elapsed_s} s`],
    ["model", model.path, true], ["style", info.style_name, true],
    ["trained", `${info.size} px crops, ${info.steps} steps`], ["model sha256", model.sha256],
  ];
  for (const [key, value] of Object.entries(metadata.painting || {})) {
    rows.push([key, value, ["preserve_color", "max_size"].includes(key)]);
  }
  return rows;
}

function doneText(result) {
  return result.model ? `painted by the model in ${duration(result.elapsed)}`
    : `${result.steps} steps in ${duration(result.elapsed)}`;
}

async function loadGallery(selectId) {
  try {
    state.results = (await api("/api/results")).results;
  } catch (err) {
    return;
  }
  const gallery = $("gallery");
  gallery.textContent = "";
  for (const result of state.results) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.id = result.id;
    const label = result.model ? result.model.replace(/\.impasto$/, "") : result.preset;
    button.title = `${result.width}×${result.height}, ${label}, opened with its settings when clicked`;
    const img = document.createElement("img");
    img.src = result.thumbnail;
    img.alt = `Result ${result.width}×${result.height}`;
    img.loading = "lazy";
    const caption = document.createElement("span");
    caption.className = "caption";
    const name = document.createElement("b");
    name.textContent = label;
    caption.append(name, `${Math.max(result.width, result.height)} px`);
    button.append(img, caption);
    button.addEventListener("click", () => reopen(result));
    if (result.id === (selectId || (state.result && state.result.id))) button.classList.add("selected");
    gallery.appendChild(button);
  }
  $("gallery-empty").hidden = state.results.length > 0;
  $("gallery-count").textContent = state.results.length ? `${state.results.length} picture${state.results.length > 1 ? "s" : ""}` : "";
}

async function reopen(result) {
  if (ACTIVE.includes(state.jobState)) {
    showBanner("a picture is being painted; cancel it or wait before opening another");
    return;
  }
  hideBanner();
  showResult(result, false);
  writeSettings(result.settings);
  // Put the images back when the server still has them.
  const inputs = result.inputs || {};
  try {
    const content = await api(`/api/uploads/${inputs.content.id}`);
    if (!result.settings.model) {  // a model's picture leaves the paintings as they are
      const styles = [];
      for (const [i, style] of inputs.styles.entries()) {
        const mask = inputs.masks && inputs.masks[i] ? await api(`/api/uploads/${inputs.masks[i].id}`) : null;
        const blend = result.settings.style_blend;
        styles.push({ upload: await api(`/api/uploads/${style.id}`), weight: blend ? blend[i] : 50, mask });
      }
      state.styles = styles;
      state.contentMask = inputs.content_mask ? await api(`/api/uploads/${inputs.content_mask.id}`) : null;
    }
    state.content = content;
    $("content-error").textContent = "";
    $("style-error").textContent = "";
  } catch (err) {
    $("content-error").textContent = "this picture's images are no longer on the server; its settings were restored";
  }
  renderInputs();
}

// ---------------------------------------------------------------------------------------------
// Little things
// ---------------------------------------------------------------------------------------------
function duration(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return "–";
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
  return `${m} min ${s} s`;
}

function showBanner(message) {
  $("banner-text").textContent = message.charAt(0).toUpperCase() + message.slice(1);
  $("banner").hidden = false;
}
function hideBanner() { $("banner").hidden = true; }

async function init() {
  const url = new URL(window.location.href);
  if (url.searchParams.has("token")) {  // the cookie now carries it: keep it out of the address bar
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());

  wireDropzone($("content-drop"), $("content-file"), addContent);
  wireDropzone($("style-drop"), $("style-file"), addStyles);
  $("mask-file").addEventListener("change", () => {
    const file = $("mask-file").files[0];
    $("mask-file").value = "";
    if (state.maskTarget != null) addMask(file, state.maskTarget);
  });
  $("content-remove").addEventListener("click", () => { state.content = null; renderInputs(); });
  $("content-mask-btn").addEventListener("click", () => {
    if (state.contentMask) { state.contentMask = null; renderInputs(); return; }
    state.maskTarget = "content";
    $("mask-file").click();
  });
  for (const id of ["style-strength", "content-strength", "max-size", "style-scale"]) $(id).addEventListener("input", showSliders);
  $("preserve-color").addEventListener("change", showColorTransfer);
  document.querySelectorAll("#painting-source button").forEach((b) => b.addEventListener("click", () => setSource(b.dataset.source)));
  $("model-select").addEventListener("change", () => {
    state.model = $("model-select").value || null;
    describeModel();
    updateStart();
  });
  $("reset-settings").addEventListener("click", () => applyPreset(state.preset));
  $("start-btn").addEventListener("click", start);
  $("cancel-btn").addEventListener("click", cancel);
  $("banner-close").addEventListener("click", hideBanner);
  $("recipe-btn").addEventListener("click", toggleRecipe);
  $("picture").addEventListener("load", fitPicture);
  window.addEventListener("resize", fitPicture);

  try {
    state.info = await api("/api/info");
  } catch (err) {
    showBanner(err.message);
    return;
  }
  const info = state.info;
  $("device-pill").textContent = info.device;
  $("version-pill").textContent = `v${info.version}`;
  $("max-size").min = info.limits.min_size;
  $("max-size").max = info.limits.max_size;
  renderPresets();
  applyPreset(info.default_preset);
  $("painting-source").hidden = !info.models;
  if (info.models) await loadModels();
  renderInputs();
  await loadGallery();
  resume();
}

/* After a reload, follow this tab's job again if it is still queued or running. */
async function resume() {
  let id = null;
  try { id = sessionStorage.getItem("impasto-job"); } catch (err) { return; }
  if (!id) return;
  try {
    const job = await api(`/api/jobs/${id}`);
    if (!ACTIVE.includes(job.state)) return;
    writeSettings(job.settings);
    watch(job);
  } catch (err) { /* the server was restarted: nothing to follow */ }
}

init();
