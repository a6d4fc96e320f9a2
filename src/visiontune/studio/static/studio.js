// visiontune studio: fills each page's shell from the JSON API.  No framework, nothing from a CDN.
"use strict";

const CSRF = document.querySelector('meta[name="csrf"]').content;
const PAGE = document.body.dataset.page;
const ARGS = JSON.parse(document.body.dataset.args || "{}");
const main = document.getElementById("main");

// ---------------------------------------------------------------- helpers
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k === "style") node.style.cssText = v;  // CSSOM, which the Content-Security-Policy allows
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}
const svgNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

class ApiError extends Error {
  constructor(message, field, status, fields) { super(message); this.field = field; this.status = status; this.fields = fields || []; }
}

async function api(path, opts = {}) {
  const init = { method: opts.method || "GET", headers: {}, credentials: "same-origin" };
  if (init.method !== "GET") init.headers["X-Studio-CSRF"] = CSRF;
  if (opts.json !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(opts.json); }
  if (opts.body !== undefined) { init.body = opts.body; init.headers["Content-Type"] = opts.type || "application/octet-stream"; }
  const r = await fetch(path, init);
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { error: text }; }
  if (!r.ok) throw new ApiError((data && (data.error || data.detail)) || `${r.status} ${r.statusText}`, data && data.field, r.status, data && data.fields);
  return data;
}

function toast(message, bad) {
  const t = document.getElementById("toast");
  t.textContent = message; t.className = bad ? "show bad" : "show";
  clearTimeout(toast.timer); toast.timer = setTimeout(() => { t.className = ""; }, bad ? 9000 : 4000);
}

// replaceChildren, skipping the nulls that conditional parts leave
function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter(c => c !== null && c !== undefined && c !== false));
}

function page(title, ...children) {
  fill(main, el("h1", {}, title), ...children);
  document.title = `${title} · visiontune studio`;
}

const fmt = {
  num(v, d = 3) { return v === null || v === undefined || Number.isNaN(v) ? "–" : (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(d)) : String(v)); },
  secs(s) { if (s === null || s === undefined) return "–"; s = Math.round(s); return s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${Math.floor(s / 3600)} h ${Math.floor(s % 3600 / 60)} min`; },
  when(t) { return t ? new Date(t * 1000).toLocaleString() : "–"; },
};

// a form's errors, each beside its field (err-NAME), the rest (and a single error without a field) on top
function showErrors(ex, form, top, prefix) {
  const list = ex.fields && ex.fields.length ? ex.fields : [{ field: ex.field, error: ex.message }];
  const leftover = [];
  let first = null;
  for (const f of list) {
    const slot = f.field && form.querySelector(`#err-${CSS.escape(f.field)}`);
    if (slot) { slot.textContent = slot.textContent ? `${slot.textContent}; ${f.error}` : f.error; first = first || f.field; }
    else leftover.push(f.error);
  }
  top.textContent = leftover.join("; ");
  const input = first && document.getElementById(`${prefix}${first}`);
  if (input) { const d = input.closest("details"); if (d) d.open = true; input.focus(); }
}

// deploy a job; a job that already has an endpoint asks before it starts a second one
async function deployJob(job) {
  try { return await api("/api/endpoints", { method: "POST", json: { job } }); }
  catch (e) {
    if (e.status !== 409) throw e;
    if (!confirm(`${e.message}\n\nStart another endpoint for it?`)) return null;
    return api("/api/endpoints", { method: "POST", json: { job, again: true } });
  }
}

function badge(status) { return el("span", { class: `badge ${String(status).toLowerCase()}` }, status); }

function headlineOf(metrics) {
  const keys = Object.keys(metrics || {});
  const pick = ["test_accuracy", "test_mAP", "test_mIoU", "validation_accuracy", "validation_mAP", "validation_mIoU"].find(k => keys.includes(k));
  return pick ? [pick, metrics[pick]] : [null, null];
}

// ---------------------------------------------------------------- charts (inline SVG)
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f"];

function lineChart(title, lines, opts = {}) {
  // lines: [{name, points: [[x, y], ...]}]
  const W = 520, H = 260, L = 52, R = 12, T = 28, B = 36;
  const all = lines.flatMap(l => l.points).filter(p => Number.isFinite(p[1]));
  const box = el("figure", { class: "chart" });
  if (!all.length) { box.append(el("figcaption", {}, title), el("p", { class: "muted" }, "No epochs finished yet.")); return box; }
  let [x0, x1] = [Math.min(...all.map(p => p[0])), Math.max(...all.map(p => p[0]))];
  let [y0, y1] = [Math.min(...all.map(p => p[1])), Math.max(...all.map(p => p[1]))];
  if (opts.unit) { y0 = Math.min(0, y0); y1 = Math.max(1, y1); }
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y1 += 0.5; y0 -= 0.5; }
  const sx = x => L + (x - x0) / (x1 - x0) * (W - L - R);
  const sy = y => H - B - (y - y0) / (y1 - y0) * (H - T - B);
  const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title, class: "chart-svg" });
  g.append(svg("text", { x: L, y: 16, class: "chart-title" }, title));
  for (let i = 0; i <= 4; i++) {
    const y = y0 + (y1 - y0) * i / 4;
    g.append(svg("line", { x1: L, x2: W - R, y1: sy(y), y2: sy(y), class: "grid" }),
      svg("text", { x: L - 6, y: sy(y) + 4, class: "tick", "text-anchor": "end" }, Math.abs(y1 - y0) < 0.1 ? y.toFixed(3) : y.toFixed(2)));
  }
  const xticks = Math.min(6, x1 - x0 + 1);
  for (let i = 0; i < xticks; i++) {
    const x = Math.round(x0 + (x1 - x0) * i / Math.max(1, xticks - 1));
    g.append(svg("text", { x: sx(x), y: H - B + 16, class: "tick", "text-anchor": "middle" }, x));
  }
  g.append(svg("text", { x: (L + W - R) / 2, y: H - 4, class: "tick", "text-anchor": "middle" }, opts.xlabel || "epoch"));
  lines.forEach((l, i) => {
    const pts = l.points.filter(p => Number.isFinite(p[1]));
    const color = COLORS[i % COLORS.length];
    if (pts.length > 1) g.append(svg("polyline", { points: pts.map(p => `${sx(p[0])},${sy(p[1])}`).join(" "), fill: "none", stroke: color, "stroke-width": 2 }));
    for (const p of pts) g.append(svg("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 3, fill: color }, svg("title", {}, `${l.name} epoch ${p[0]}: ${p[1].toFixed(4)}`)));
  });
  box.append(g, el("figcaption", {}, ...lines.map((l, i) => el("span", { class: "key" }, el("i", { style: `background:${COLORS[i % COLORS.length]}` }), l.name))));
  box.dataset.points = String(all.length);
  return box;
}

function seriesCharts(series, prefix = "") {
  const names = Object.keys(series).filter(k => /^(train|val)_/.test(k) && !k.includes(":") && !k.includes("seconds"));
  const loss = names.filter(k => k.includes("loss"));
  const score = names.filter(k => /acc|mAP|mIoU|f1/.test(k));
  return el("div", { class: "charts" },
    lineChart(`${prefix}Loss`, loss.map(k => ({ name: k, points: series[k] }))),
    lineChart(`${prefix}Accuracy`, score.map(k => ({ name: k, points: series[k] })), { unit: true }));
}

function table(headers, rows, opts = {}) {
  const t = el("table", { class: opts.class || null, id: opts.id || null });
  t.append(el("thead", {}, el("tr", {}, headers.map(h => el("th", { scope: "col" }, h)))));
  t.append(el("tbody", {}, rows.map(r => el("tr", {}, r.map(c => el("td", {}, c))))));
  return t;
}

// ---------------------------------------------------------------- Models
async function modelsPage() {
  const models = await api("/api/models");
  const q = el("input", { type: "search", id: "q", placeholder: "name or tag: mobile, timm, offline, segmentation…", autocomplete: "off" });
  const task = el("select", { id: "task" }, el("option", { value: "" }, "any task"), ...["classification", "multi-label", "segmentation", "detection"].map(t => el("option", { value: t }, t)));
  const size = el("select", { id: "size" }, el("option", { value: "" }, "any size"), el("option", { value: "s" }, "small (< 6M parameters)"), el("option", { value: "m" }, "medium (6–20M)"), el("option", { value: "l" }, "large (> 20M)"));
  const offline = el("input", { type: "checkbox", id: "offline" });
  const sort = el("select", { id: "sort" }, el("option", { value: "name" }, "name"), el("option", { value: "top1" }, "ImageNet accuracy"), el("option", { value: "params" }, "size"));
  const grid = el("div", { class: "cards", id: "cards" });
  function draw() {
    const words = q.value.toLowerCase().split(/\s+/).filter(Boolean);
    const tags = m => [m.name, m.arch, m.library, ...m.tasks, m.offline ? "offline" : "download", m.license || ""].join(" ").toLowerCase();
    let shown = models.filter(m => words.every(w => tags(m).includes(w)))
      .filter(m => !task.value || m.tasks.includes(task.value))
      .filter(m => !offline.checked || m.offline)
      .filter(m => !size.value || (m.params_m !== null && (size.value === "s" ? m.params_m < 6 : size.value === "m" ? m.params_m >= 6 && m.params_m <= 20 : m.params_m > 20)));
    if (sort.value === "top1") shown.sort((a, b) => (b.imagenet_top1 || 0) - (a.imagenet_top1 || 0));
    if (sort.value === "params") shown.sort((a, b) => (a.params_m || 0) - (b.params_m || 0));
    fill(grid, ...shown.map(m => el("a", { class: "card", href: `/models/${encodeURIComponent(m.name)}`, "data-model": m.name },
      el("h2", {}, m.name), el("p", {}, m.description),
      el("div", { class: "tags" },
        el("span", { class: m.offline ? "tag ok" : "tag warn" }, m.offline ? "offline weights" : "download needed"),
        el("span", { class: "tag" }, `${m.input_size || "?"} px`),
        m.params_m !== null ? el("span", { class: "tag" }, `${m.params_m}M params`) : null,
        m.imagenet_top1 !== null ? el("span", { class: "tag" }, `ImageNet top-1 ${m.imagenet_top1}%`) : null,
        el("span", { class: "tag" }, m.license || "licence unknown")))));
    if (!shown.length) grid.append(el("p", { class: "muted" }, "No model matches. Any torchvision or timm architecture also works by name on the Train page."));
  }
  for (const c of [q, task, size, offline, sort]) c.addEventListener("input", draw);
  page("Models",
    el("div", { class: "filters" },
      el("label", { for: "q" }, "Search", q), el("label", { for: "task" }, "Task", task), el("label", { for: "size" }, "Size", size),
      el("label", { for: "sort" }, "Sort by", sort), el("label", { class: "check", for: "offline" }, offline, "offline weights only")),
    grid);
  draw();
  q.focus();
}

async function modelPage() {
  const m = await api(`/api/models/${encodeURIComponent(ARGS.name)}`);
  const deploy = el("button", { type: "button", id: "deploy-pretrained", class: "secondary" }, "Deploy pretrained (ImageNet labels)");
  deploy.addEventListener("click", async () => {
    deploy.disabled = true; deploy.textContent = "Starting endpoint…";
    try { const ep = await api("/api/endpoints", { method: "POST", json: { pretrained: m.name } }); location.href = `/deploy?endpoint=${encodeURIComponent(ep.name)}`; }
    catch (e) { toast(e.message, true); deploy.disabled = false; deploy.textContent = "Deploy pretrained (ImageNet labels)"; }
  });
  page(m.name,
    el("p", { class: "lead" }, m.description),
    table(["", ""], [["Library", `${m.library}: ${m.arch}`], ["Weights", m.weights || "–"], ["Available offline", m.offline ? "yes" : `no — ${m.install || "downloaded on first use (needs internet)"}`],
      ["Input size", `${m.input_size} px`], ["Parameters", m.params_m !== null ? `${m.params_m} M` : "–"],
      ["ImageNet top-1 (publisher's figure)", m.imagenet_top1 !== null ? `${m.imagenet_top1} %` : "–"], ["Licence", m.license || "–"], ["Tasks", m.tasks.join(", ")]], { class: "kv" }),
    el("div", { class: "actions" }, el("a", { class: "button", id: "finetune", href: `/train?model=${encodeURIComponent(m.name)}` }, "Fine-tune"), deploy),
    el("p", { class: "muted" }, "CLI: ", el("code", {}, `visiontune train --model ${m.name} --data FOLDER`), " · ", el("code", {}, `visiontune endpoints start pretrained:${m.name}`)));
}

// ---------------------------------------------------------------- Data
function chosenData() { try { return JSON.parse(localStorage.getItem("vt.data") || "null"); } catch (e) { return null; } }

async function dataPage() {
  const roots = await api("/api/data/roots");
  const params = new URLSearchParams(location.search);
  const state = { root: Number(params.get("root") || (chosenData() || {}).root || 0), path: params.get("path") || "" };
  const rootSel = el("select", { id: "root" }, roots.map(r => el("option", { value: r.index }, r.uploads ? `${r.path} (uploads)` : r.path)));
  rootSel.value = String(state.root);
  const crumbs = el("nav", { class: "crumbs", "aria-label": "folder" });
  const list = el("ul", { class: "folders", id: "folders" });
  const info = el("p", { class: "muted", id: "folder-info" });
  const use = el("button", { type: "button", id: "use-folder" }, "Inspect this folder");
  const report = el("section", { id: "report", "aria-live": "polite" });
  const next = params.get("next") === "tune" ? "tune" : "train";  // the page that sent us here ("choose…")
  const here = () => `${state.root}:${state.path}`;

  async function browse(root, path) {
    try {
      const b = await api(`/api/data/browse?root=${root}&path=${encodeURIComponent(path)}`);
      state.root = b.root; state.path = b.path;
      const q = new URLSearchParams({ root: b.root, path: b.path });
      if (next === "tune") q.set("next", "tune");
      history.replaceState(null, "", `/data?${q}`);
      if (report.dataset.folder !== here()) {  // the inspection panel follows the folder you are in
        report.dataset.folder = here();
        fill(report, el("p", { class: "muted", id: "report-hint" }, `${b.root_path}${b.path ? "/" + b.path : ""}: not inspected yet. `,
          "Inspect this folder to see its classes, sizes and problems before training on it."));
      }
      const parts = b.path ? b.path.split("/") : [];
      fill(crumbs, el("button", { type: "button", class: "link", onclick: () => browse(root, "") }, b.root_path),
        ...parts.map((p, i) => [" / ", el("button", { type: "button", class: "link", onclick: () => browse(root, parts.slice(0, i + 1).join("/")) }, p)]).flat());
      fill(list, 
        ...(b.parent !== null ? [el("li", {}, el("button", { type: "button", class: "link", onclick: () => browse(root, b.parent) }, "↑ up"))] : []),
        ...b.dirs.map(d => el("li", {}, el("button", { type: "button", class: "link folder", "data-folder": d, onclick: () => browse(root, b.path ? `${b.path}/${d}` : d) }, `${d}/`))));
      info.textContent = `${b.dirs.length} folders, ${b.images} images here${b.other_files ? `, ${b.other_files} other files` : ""}`;
    } catch (e) { toast(e.message, true); }
  }

  async function inspect() {
    const folder = here();
    use.disabled = true; report.dataset.folder = folder; fill(report, el("p", { class: "muted" }, "Reading every image…"));
    try {
      const r = await api("/api/data/inspect", { method: "POST", json: { root: state.root, path: state.path } });
      if (here() !== folder) return;  // the user moved on meanwhile: this report is not about where they are
      localStorage.setItem("vt.data", JSON.stringify({ root: state.root, path: state.path, label: r.root }));
      const splits = Object.keys(r.counts || {});
      const rows = (r.classes || []).map(c => [c, ...splits.map(s => (r.counts[s] || {})[c] || 0)]);
      fill(report, 
        el("h2", {}, "Inspection"),
        el("p", {}, `${r.root} — ${r.kind}, ${r.num_classes} classes, `, Object.entries(r.totals).map(([s, n]) => `${n} ${s}`).join(", "),
          `; sizes ${r.image_sizes.width.min}–${r.image_sizes.width.max} × ${r.image_sizes.height.min}–${r.image_sizes.height.max} px`),
        r.imbalance && r.imbalance.flag ? el("p", { class: "warn", id: "imbalance" }, `Class imbalance: '${r.imbalance.largest}' has ${r.imbalance.ratio ? r.imbalance.ratio.toFixed(1) + "×" : "far more than"} the images of '${r.imbalance.smallest}'. Consider class_weights (Train page) or more images of the small classes.`) : null,
        r.problems.length ? el("div", { class: "problems", id: "problems", role: "alert" }, el("h3", {}, `${r.problems.length} problem(s): training would stop here`), el("ul", {}, r.problems.map(p => el("li", {}, `[${p.check}] ${p.message}`)))) : el("p", { class: "ok", id: "data-ok" }, "No problems found: training can start."),
        table(["class", ...splits], rows),
        r.grid ? el("img", { src: r.grid, alt: "a sample of images per class", class: "grid-img", id: "sample-grid" }) : null,
        el("div", { class: "actions" }, [
          el("a", { class: next === "train" ? "button" : "button secondary", id: "train-on", href: `/train?root=${state.root}&path=${encodeURIComponent(state.path)}` }, "Train on this data"),
          el("a", { class: next === "tune" ? "button" : "button secondary", id: "tune-on", href: `/tune?root=${state.root}&path=${encodeURIComponent(state.path)}` }, "Tune on this data")][next === "tune" ? "reverse" : "slice"]()));
    } catch (e) { if (here() === folder) fill(report, el("p", { class: "problems", role: "alert", id: "problems" }, e.message)); }
    finally { use.disabled = false; }
  }

  // uploads: a zip, or images dropped onto the zone (into NAME/CLASS/)
  const upName = el("input", { id: "upload-name", required: true, placeholder: "my-dataset" });
  const upClass = el("input", { id: "upload-class", placeholder: "for images: their class" });
  const upFile = el("input", { id: "upload-file", type: "file", accept: ".zip,image/*", multiple: true });
  const zone = el("div", { class: "drop", id: "drop", tabindex: "0" }, "Drop a .zip or images here");
  async function upload(files) {
    if (!upName.value.trim()) { toast("Give the dataset a name first", true); upName.focus(); return; }
    let last = null;
    try {
      for (const f of files) {
        const isZip = f.name.toLowerCase().endsWith(".zip");
        const q = new URLSearchParams({ name: upName.value.trim() });
        q.set("filename", f.name);  // errors name your file, not the server's temporary one
        if (!isZip) q.set("label", upClass.value.trim());
        last = await api(`/api/data/upload?${q}`, { method: "POST", body: f, type: isZip ? "application/zip" : (f.type || "image/jpeg") });
      }
      toast(`Uploaded ${files.length} file(s)`);
      if (last) { rootSel.value = String(last.root); await browse(last.root, last.path); }
    } catch (e) { toast(e.message, true); }
  }
  upFile.addEventListener("change", () => upload([...upFile.files]));
  zone.addEventListener("dragover", e => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", e => { e.preventDefault(); zone.classList.remove("over"); upload([...e.dataTransfer.files]); });
  zone.addEventListener("keydown", e => { if (e.key === "Enter" || e.key === " ") upFile.click(); });
  rootSel.addEventListener("change", () => browse(Number(rootSel.value), ""));
  use.addEventListener("click", inspect);

  page("Data",
    el("section", {}, el("label", { for: "root" }, "Data root ", rootSel), crumbs, info, list, use),
    report,
    el("details", { class: "upload" }, el("summary", {}, "Upload data"),
      el("p", { class: "muted" }, "A zip of class folders (or of train/validation/test folders), or images of one class at a time."),
      el("label", { for: "upload-name" }, "Dataset name", upName), el("label", { for: "upload-class" }, "Class", upClass),
      el("label", { for: "upload-file" }, "Files", upFile), zone));
  await browse(state.root, state.path);
}

// ---------------------------------------------------------------- Train
async function trainPage() {
  const [fields, models, roots] = await Promise.all([api("/api/train/options"), api("/api/models"), api("/api/data/roots")]);
  const params = new URLSearchParams(location.search);
  const saved = chosenData() || {};
  const chosen = params.has("path") || saved.path !== undefined;
  const data = chosen ? { root: Number(params.get("root") ?? saved.root ?? 0), path: params.get("path") ?? saved.path } : null;
  const rootPath = data ? (roots[data.root] || {}).path || "?" : "";
  const submission = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2));
  const form = el("form", { id: "train-form", novalidate: true });
  const err = name => el("span", { class: "field-error", id: `err-${name}`, role: "alert" });
  form.append(el("div", { class: "field wide" }, el("span", { class: "label" }, "Data"),
    el("output", { id: "data-path" }, data ? `${rootPath}/${data.path}` : "none chosen"),
    el("a", { href: "/data" }, " choose…"), err("data")));
  const core = el("div", { class: "form-grid" });
  const more = el("div", { class: "form-grid" });
  for (const f of fields) {
    const id = `f-${f.name}`;
    let input;
    if (f.name === "model") {
      if (params.get("model")) localStorage.setItem("vt.model", params.get("model"));
      input = el("input", { id, name: f.name, list: "model-list", value: params.get("model") || localStorage.getItem("vt.model") || f.default });
      input.addEventListener("change", () => localStorage.setItem("vt.model", input.value));
      form.append(el("datalist", { id: "model-list" }, models.map(m => el("option", { value: m.name }))));
    } else if (f.choices) {
      input = el("select", { id, name: f.name }, f.choices.map(c => el("option", { value: c, selected: c === f.default }, c)));
    } else if (f.type === "bool") {
      input = el("input", { id, name: f.name, type: "checkbox", checked: !!f.default });
    } else {
      input = el("input", { id, name: f.name, type: f.type === "str" ? "text" : "number", step: f.type === "float" ? "any" : "1",
        min: f.minimum ?? null, value: f.default ?? "", placeholder: f.default === null ? "default" : null, "aria-describedby": `help-${f.name}` });
    }
    const box = el("div", { class: f.type === "bool" ? "field check" : "field" },
      el("label", { for: id }, f.name.replaceAll("_", " ")), input, el("small", { id: `help-${f.name}` }, f.help), err(f.name));
    (f.core ? core : more).append(box);
  }
  const go = el("button", { type: "submit", id: "train-button" }, "Train");
  const top = el("p", { class: "field-error", id: "err-form", role: "alert" });
  form.append(core, el("details", {}, el("summary", {}, "More options"), more), top, go);
  form.addEventListener("submit", async e => {
    e.preventDefault();
    if (go.disabled) return;
    form.querySelectorAll(".field-error").forEach(s => { s.textContent = ""; });
    const config = {};
    for (const f of fields) {
      const input = form.elements[f.name];
      config[f.name] = f.type === "bool" ? input.checked : input.value;
    }
    go.disabled = true; go.textContent = "Starting…";
    try {
      const r = await api("/api/jobs", { method: "POST", json: { config, data, submission } });
      location.href = `/jobs/${encodeURIComponent(r.job)}`;
    } catch (ex) {
      showErrors(ex, form, top, "f-");  // every field at fault at once, each beside its field
      go.disabled = false; go.textContent = "Train";
    }
  });
  page("Train", form, el("p", { class: "muted" }, "CLI: ", el("code", {}, "visiontune train --data FOLDER --model NAME --epochs N …"), " — the same options, the same checks."));
}

// ---------------------------------------------------------------- Job
async function jobPage() {
  const name = ARGS.name;
  const head = el("div", { class: "job-head" });
  const bar = el("progress", { id: "progress", max: 1, value: 0, "aria-label": "training progress" });
  const eta = el("span", { id: "eta", class: "muted" });
  const stop = el("button", { type: "button", id: "stop", class: "danger", hidden: true }, "Stop");
  const charts = el("div", { id: "charts" });
  const results = el("section", { id: "results" });
  const logs = el("pre", { id: "logs", tabindex: "0", "aria-label": "log" });
  let status = null, series = {}, etaAt = null;
  stop.addEventListener("click", async () => {
    if (!confirm(`Stop ${name}? It stops at the next batch; its last epoch's checkpoint stays, so it can be resumed.`)) return;
    stop.disabled = true;
    try { await api(`/api/jobs/${encodeURIComponent(name)}/stop`, { method: "POST" }); toast("Stop requested"); } catch (e) { toast(e.message, true); stop.disabled = false; }
  });
  function drawStatus() {
    const s = status;
    const done = Math.max(0, ...Object.values(series).map(p => p.length ? p[p.length - 1][0] : 0));
    fill(head, ...[badge(s.status), s.secondary && s.secondary !== s.status ? el("span", { id: "secondary", class: "muted" }, ` ${s.secondary}`) : null,
      s.failure ? el("p", { class: "problems", role: "alert" }, s.failure) : null].filter(Boolean));
    if (s.epochs) { bar.max = s.epochs; bar.value = done; }
    if (s.status === "Completed") { bar.max = 1; bar.value = 1; }
    // the server's estimate (epoch times, smoothed), counted down between its updates: it never grows within an epoch
    etaAt = s.status === "InProgress" && s.eta !== null && s.eta !== undefined ? { left: s.eta, at: Date.now(), elapsed: s.elapsed } : null;
    drawEta();
    stop.hidden = s.status !== "InProgress";
  }
  function drawEta() {
    const s = status;
    if (s.status !== "InProgress") { eta.textContent = fmt.secs(s.elapsed); return; }
    const since = etaAt ? (Date.now() - etaAt.at) / 1000 : 0;
    const left = etaAt ? Math.max(0, etaAt.left - since) : null;
    eta.textContent = `epoch ${s.done ?? 0}/${s.epochs || "?"} · ${fmt.secs((s.elapsed || 0) + since)} elapsed` +
      (left !== null ? ` · about ${fmt.secs(left)} left` : s.epochs ? " · time left: after the first epoch" : "");
    eta.dataset.left = left === null ? "" : String(Math.round(left));
  }
  const ticker = setInterval(() => { if (status && status.status === "InProgress") drawEta(); }, 1000);
  async function drawResults() {
    const d = await api(`/api/jobs/${encodeURIComponent(name)}`);
    const out = [];
    if (d.result) {
      const h = d.result.headline;
      out.push(el("h2", {}, "Results"), table(["metric", "value"], Object.entries(h).map(([k, v]) => [k, fmt.num(v, 4)]), { class: "kv", id: "metrics" }));
      const pc = d.result.per_class;
      if (pc && typeof pc === "object") {
        const first = Object.values(pc)[0];
        if (first && typeof first === "object") {
          const cols = Object.keys(first);
          out.push(el("h3", {}, "Per class"), table(["class", ...cols], Object.entries(pc).map(([c, v]) => [c, ...cols.map(k => fmt.num(v[k]))]), { id: "per-class" }));
        }
      }
    }
    const files = new Set(d.files);
    const file = f => `/api/jobs/${encodeURIComponent(name)}/files/${f}`;
    if (files.has("confusion_matrix.png")) out.push(el("h3", {}, "Confusion matrix"), el("img", { src: file("confusion_matrix.png"), alt: "confusion matrix", id: "confusion", class: "result-img" }));
    if (files.has("segmentation_examples.png")) out.push(el("h3", {}, "Examples"), el("img", { src: file("segmentation_examples.png"), alt: "segmentation examples", class: "result-img" }));
    if (files.has("detection_examples.png")) out.push(el("h3", {}, "Examples"), el("img", { src: file("detection_examples.png"), alt: "true boxes and the boxes found", class: "result-img" }));
    if (d.misclassified && d.misclassified.worst.length) {
      out.push(el("h3", {}, `Most confident mistakes (${d.misclassified.wrong} wrong of ${d.misclassified.of} ${d.misclassified.split} images)`),
        el("div", { class: "gallery", id: "gallery" }, d.misclassified.worst.map(r => el("figure", {},
          el("img", { src: r.image, alt: `${r.label} taken for ${r.predicted}`, loading: "lazy" }),
          el("figcaption", {}, el("b", {}, r.label), ` → ${r.predicted} (${(r.probability * 100).toFixed(0)}%)`)))));
    } else if (d.misclassified) out.push(el("p", { class: "ok" }, "No mistakes on the evaluated split."));
    const actions = el("div", { class: "actions" });
    if (files.has("model.tar.gz")) actions.append(el("a", { class: "button secondary", id: "download", href: file("model.tar.gz"), download: `${name}-model.tar.gz` }, d.partial_model ? "Download the partial model" : "Download model.tar.gz"));
    else if (d.partial_file && files.has(d.partial_file)) actions.append(el("a", { class: "button secondary", id: "download", href: file(d.partial_file), download: `${name}-partial-model.tar.gz` }, "Download the partial model"));
    if (d.result && d.result.debugger) {
      const rules = Object.entries(d.result.debugger);
      const issues = rules.filter(([, st]) => st === "IssuesFound").map(([r]) => r);
      const clean = rules.filter(([, st]) => st === "NoIssuesFound").length;
      const notRun = rules.filter(([, st]) => st === "NotRun").length;  // e.g. a GPU rule on a CPU run
      const noData = rules.filter(([, st]) => st === "NoData").length;  // nothing they watch was saved
      const other = rules.length - clean - issues.length - notRun - noData;
      out.splice(1, 0, el("p", { class: issues.length ? "warn" : "ok", id: "debugger" },
        `Debugger: ${clean} rules found no issues`, issues.length ? `; ${issues.length} found issues (${issues.join(", ")}): the report shows the evidence` : "",
        notRun ? `; ${notRun} ${notRun === 1 ? "rule does" : "rules do"} not apply to this run` : "",
        noData ? `; ${noData} had nothing saved to look at` : "",
        other ? `; ${other} did not run to the end` : "", "."));
    }
    const report = el("button", { type: "button", class: "secondary", id: "debug-report" }, "Debugger report");
    report.addEventListener("click", async () => {
      report.disabled = true; report.textContent = "Writing the report…";
      try { const r = await api(`/api/jobs/${encodeURIComponent(name)}/report`, { method: "POST" }); location.href = r.report; }
      catch (e) { toast(e.message, true); report.disabled = false; report.textContent = "Debugger report"; }
    });
    if (d.status.status !== "InProgress") actions.append(report);
    if (d.status.status === "Completed") {
      const dep = el("button", { type: "button", id: "deploy" }, "Deploy");
      dep.addEventListener("click", async () => {
        dep.disabled = true; dep.textContent = "Starting endpoint…";
        try { const ep = await deployJob(name); if (ep) location.href = `/deploy?endpoint=${encodeURIComponent(ep.name)}`; }
        catch (e) { toast(e.message, true); }
        dep.disabled = false; dep.textContent = "Deploy";
      });
      actions.append(dep);
    }
    if (d.status.status === "Stopped") out.push(...stoppedActions(name, d, actions));
    out.push(actions, el("details", {}, el("summary", {}, "Hyperparameters"), table(["name", "value"], Object.entries(d.hyperparameters).map(([k, v]) => [k, String(v)]), { class: "kv" })));
    fill(results, ...out);
  }
  page(name, head, el("div", { class: "progress-row" }, bar, eta, stop), charts, results, el("details", { open: true }, el("summary", {}, "Log"), logs));
  const first = await api(`/api/jobs/${encodeURIComponent(name)}`);
  status = first.status; series = first.series;
  drawStatus(); fill(charts, seriesCharts(series));
  const events = new EventSource(`/api/jobs/${encodeURIComponent(name)}/events`);
  events.addEventListener("status", e => { status = JSON.parse(e.data); drawStatus(); });
  events.addEventListener("metrics", e => { series = JSON.parse(e.data); fill(charts, seriesCharts(series)); drawStatus(); });
  events.addEventListener("log", e => { logs.textContent = (logs.textContent + JSON.parse(e.data)).slice(-60000); logs.scrollTop = logs.scrollHeight; });
  events.addEventListener("end", () => { events.close(); drawResults(); });
  events.onerror = () => { if (events.readyState === EventSource.CLOSED) toast("Lost the live connection; reload the page", true); };
}

// a stopped job: Resume (from its last checkpoint, as a new job) and what it made so far
function stoppedActions(name, d, actions) {
  if (d.resumable) {
    const resume = el("button", { type: "button", id: "resume" }, "Resume");
    const submission = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2));
    resume.addEventListener("click", async () => {
      resume.disabled = true; resume.textContent = "Resuming…";
      try { const r = await api(`/api/jobs/${encodeURIComponent(name)}/resume`, { method: "POST", json: { submission } }); location.href = `/jobs/${encodeURIComponent(r.job)}`; }
      catch (e) { toast(e.message, true); resume.disabled = false; resume.textContent = "Resume"; }
    });
    actions.prepend(resume);
  }
  const says = d.resumable ? "Stopped: Resume continues from its last finished epoch (the same options, in the same folder)." + (d.partial_model ? " The model of that epoch is below: download it, or predict and deploy from its partial/ folder." : "")
    : d.partial_model ? "It stopped with a model of what it had learnt: download it below."
    : "Stopped before its first epoch ended: nothing to resume; train it again.";
  return [el("p", { class: "muted", id: "stopped-note" }, says)];
}

// ---------------------------------------------------------------- Jobs and Compare
async function jobsPage() {
  let jobs = await api("/api/jobs");
  let key = "created", desc = true;
  const body = el("tbody", {});
  const compare = el("button", { type: "button", id: "compare", disabled: true }, "Compare selected");
  const picked = new Set();
  const cols = [["name", "Job"], ["status", "Status"], ["model", "Model"], ["mode", "Mode"], ["epochs", "Epochs"], ["headline", "Result"], ["elapsed", "Time"], ["created", "Created"]];
  const value = (j, k) => k === "headline" ? (headlineOf(j.metrics)[1] ?? -1) : j[k];
  function draw() {
    jobs.sort((a, b) => { const x = value(a, key), y = value(b, key); return (x > y ? 1 : x < y ? -1 : 0) * (desc ? -1 : 1); });
    fill(body, ...jobs.map(j => {
      const box = el("input", { type: "checkbox", "aria-label": `select ${j.name}`, checked: picked.has(j.name), "data-job": j.name });
      box.addEventListener("change", () => { box.checked ? picked.add(j.name) : picked.delete(j.name); compare.disabled = picked.size < 2; });
      const [hk, hv] = headlineOf(j.metrics);
      return el("tr", {}, el("td", {}, box), el("td", {}, el("a", { href: `/jobs/${encodeURIComponent(j.name)}` }, j.name)), el("td", {}, badge(j.status)),
        el("td", {}, j.model || ""), el("td", {}, j.mode || ""), el("td", {}, j.epochs ?? ""), el("td", {}, hk ? `${hk} ${fmt.num(hv, 4)}` : "–"),
        el("td", {}, fmt.secs(j.elapsed)), el("td", {}, fmt.when(j.created)));
    }));
  }
  const head = el("tr", {}, el("th", { scope: "col" }, el("span", { class: "sr" }, "select")), cols.map(([k, label]) => {
    const b = el("button", { type: "button", class: "sort" }, label);
    b.addEventListener("click", () => { desc = key === k ? !desc : true; key = k; draw(); marks(); });
    return el("th", { scope: "col", "aria-sort": "none", "data-key": k }, b);
  }));
  const marks = () => head.querySelectorAll("th[data-key]").forEach(th => th.setAttribute("aria-sort", th.dataset.key === key ? (desc ? "descending" : "ascending") : "none"));
  compare.addEventListener("click", () => { location.href = `/compare?jobs=${[...picked].map(encodeURIComponent).join(",")}`; });
  page("Jobs", jobs.length ? el("table", { id: "jobs-table" }, el("thead", {}, head), body) : el("p", {}, "No jobs yet. ", el("a", { href: "/train" }, "Train a model")), el("div", { class: "actions" }, compare));
  draw(); marks();
  const refresh = setInterval(async () => {
    if (!jobs.some(j => j.status === "InProgress")) return;
    try { jobs = await api("/api/jobs"); draw(); } catch (e) { clearInterval(refresh); }
  }, 5000);
}

async function comparePage() {
  const names = (new URLSearchParams(location.search).get("jobs") || "").split(",").filter(Boolean);
  const details = await Promise.all(names.map(n => api(`/api/jobs/${encodeURIComponent(n)}`)));
  const metric = (d, pat) => { const k = Object.keys(d.series).find(k => pat.test(k) && !k.includes(":")); return k ? d.series[k] : []; };
  // what differs: the data first (not a hyperparameter, and the likeliest reason two results differ), then the settings
  const settings = d => ({ data: d.job.data || "–", model: d.job.model, ...d.hyperparameters });
  const keys = [...new Set(details.flatMap(d => Object.keys(settings(d))))];
  const differs = keys.filter(k => new Set(details.map(d => JSON.stringify(settings(d)[k]))).size > 1);
  const metrics = [...new Set(details.flatMap(d => Object.keys(d.job.metrics)))].sort();
  const lower = m => /loss|seconds|time|error/.test(m);  // smaller is better
  const by = el("select", { id: "compare-sort" }, el("option", { value: "" }, "as chosen"), metrics.map(m => el("option", { value: m }, `${m} (${lower(m) ? "lowest" : "highest"} first)`)));
  const box = el("div", { id: "compare-tables" });
  function draw() {
    const m = by.value;
    const order = [...details];
    if (m) order.sort((a, b) => { const x = a.job.metrics[m], y = b.job.metrics[m]; if (x === undefined) return 1; if (y === undefined) return -1; return lower(m) ? x - y : y - x; });
    const cols = order.map(d => d.job.name);
    fill(box, el("h2", {}, "Metrics"),
      table(["metric", ...cols], (m ? [m, ...metrics.filter(k => k !== m)] : metrics).map(k => [k === m ? el("b", {}, k) : k, ...order.map(d => fmt.num(d.job.metrics[k], 4))]), { id: "compare-metrics" }),
      el("h2", {}, "What differs"), differs.length ? table(["setting", ...cols], differs.map(k => [k, ...order.map(d => String(settings(d)[k] ?? "–"))]), { id: "compare-differs" }) : el("p", {}, "Nothing: the same data and settings."));
  }
  by.addEventListener("change", draw);
  page("Compare jobs",
    el("div", { class: "charts" },
      lineChart("Validation accuracy", details.map(d => ({ name: d.job.name, points: metric(d, /^val_acc/) })), { unit: true }),
      lineChart("Validation loss", details.map(d => ({ name: d.job.name, points: metric(d, /^val_loss/) })))),
    el("label", { for: "compare-sort" }, "Sort the jobs by ", by), box);
  draw();
}

// ---------------------------------------------------------------- Deploy / Try it
async function deployPage() {
  const want = new URLSearchParams(location.search).get("endpoint");
  const list = el("tbody", {});
  const pick = el("select", { id: "endpoint" });
  const jobSel = el("select", { id: "deploy-job" });
  const snippets = el("div", { id: "snippets" });
  const result = el("div", { id: "try-result", "aria-live": "polite" });
  let endpoints = [];
  async function load() {
    endpoints = await api("/api/endpoints");
    fill(list, ...endpoints.map(ep => {
      const b = el("button", { type: "button", class: "danger small", "data-stop": ep.name }, "Stop");
      b.addEventListener("click", async () => { if (!confirm(`Stop endpoint ${ep.name}? Programs calling ${ep.invocations} will get no answer.`)) return; b.disabled = true; try { await api(`/api/endpoints/${encodeURIComponent(ep.name)}/stop`, { method: "POST" }); await load(); } catch (e) { toast(e.message, true); } });
      return el("tr", {}, el("td", {}, ep.name), el("td", {}, el("code", {}, ep.invocations)), el("td", {}, ep.job ? el("a", { href: `/jobs/${encodeURIComponent(ep.job)}` }, ep.job) : "pretrained"), el("td", {}, badge(ep.status)), el("td", {}, b));
    }));
    const keep = pick.value || want;
    fill(pick, ...endpoints.map(ep => el("option", { value: ep.name }, ep.name)));
    if (keep && endpoints.some(e => e.name === keep)) pick.value = keep;
    drawSnippets();
  }
  function drawSnippets() {
    const ep = endpoints.find(e => e.name === pick.value);
    if (!ep) { fill(snippets, el("p", { class: "muted" }, "No endpoint running: deploy a finished job above.")); return; }
    const curl = `curl -s -X POST ${ep.invocations} \\\n  -H 'Content-Type: image/jpeg' \\\n  -H 'Accept: application/json;verbose' \\\n  --data-binary @image.jpg`;
    const boto = `import boto3\n\nrt = boto3.client("sagemaker-runtime", endpoint_url="${ep.url}",\n                  region_name="local", aws_access_key_id="x", aws_secret_access_key="x")\nwith open("image.jpg", "rb") as f:\n    r = rt.invoke_endpoint(EndpointName="${ep.name}", ContentType="image/jpeg",\n                           Accept="application/json;verbose", Body=f.read())\nprint(r["Body"].read().decode())`;
    const block = (title, text, id) => {
      const copy = el("button", { type: "button", class: "small secondary" }, "Copy");
      copy.addEventListener("click", async () => { try { await navigator.clipboard.writeText(text); toast("Copied"); } catch (e) { const s = window.getSelection(); s.selectAllChildren(document.getElementById(id)); toast("Selected: press Ctrl+C"); } });
      return el("div", { class: "snippet" }, el("div", { class: "snippet-head" }, el("b", {}, title), copy), el("pre", { id }, text));
    };
    fill(snippets, block("curl", curl, "curl-snippet"), block("boto3 (SageMaker runtime)", boto, "boto3-snippet"));
  }
  const jobs = (await api("/api/jobs")).filter(j => j.status === "Completed" && j.kind === "builtin");
  fill(jobSel, ...(jobs.length ? jobs.map(j => el("option", { value: j.name }, j.name)) : [el("option", { value: "" }, "no finished jobs")]));
  const deploy = el("button", { type: "button", id: "deploy-button", disabled: !jobs.length }, "Deploy");
  deploy.addEventListener("click", async () => {
    deploy.disabled = true; deploy.textContent = "Starting…";
    try { const ep = await deployJob(jobSel.value); if (ep) { pick.value = ep.name; await load(); pick.value = ep.name; drawSnippets(); toast(`Endpoint ${ep.name} is up`); } }
    catch (e) { toast(e.message, true); }
    deploy.disabled = false; deploy.textContent = "Deploy";
  });
  const file = el("input", { type: "file", id: "try-file", accept: "image/*" });
  const zone = el("div", { class: "drop", id: "try-drop", tabindex: "0" }, "Drop an image here, or choose one");
  async function tryImage(f) {
    if (!pick.value) { toast("Deploy an endpoint first", true); return; }
    fill(result, el("p", { class: "muted" }, "Asking the endpoint…"));
    try {
      const r = await api(`/api/endpoints/${encodeURIComponent(pick.value)}/try?top_k=5`, { method: "POST", body: f, type: f.type || "application/octet-stream" });
      const a = r.answer;
      const top = a.pixel_fractions  // a segmentation model: the classes present, by their share of the pixels
        ? Object.entries(a.pixel_fractions).sort((x, y) => y[1] - x[1]).map(([label, probability]) => ({ label, probability }))
        : a.top_k || (a.predicted_label !== undefined ? [{ label: a.predicted_label, probability: a.probability }] : []);
      const preview = el("img", { class: "try-img", alt: "the image sent", src: URL.createObjectURL(f) });
      fill(result, el("div", { class: "try-row" }, preview, el("div", { class: "bars", id: "labels" }, top.map(t => el("div", { class: "bar-row" },
        el("span", { class: "bar-label" }, t.label), el("span", { class: "bar" }, el("i", { style: `width:${(t.probability * 100).toFixed(1)}%` })), el("span", { class: "bar-value" }, `${(t.probability * 100).toFixed(1)}%`))))),
        el("p", { class: "muted", id: "latency" }, a.pixel_fractions ? "shares of the image's pixels per class; " : "",
          `latency ${r.latency_ms.toFixed(1)} ms (round trip through the studio)`));
    } catch (e) { fill(result, el("p", { class: "problems", role: "alert" }, e.message)); }
  }
  file.addEventListener("change", () => file.files[0] && tryImage(file.files[0]));
  zone.addEventListener("dragover", e => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", e => { e.preventDefault(); zone.classList.remove("over"); if (e.dataTransfer.files[0]) tryImage(e.dataTransfer.files[0]); });
  zone.addEventListener("keydown", e => { if (e.key === "Enter" || e.key === " ") file.click(); });
  pick.addEventListener("change", drawSnippets);
  page("Deploy",
    el("section", {}, el("h2", {}, "Deploy a finished job"), el("label", { for: "deploy-job" }, "Job ", jobSel), deploy),
    el("section", {}, el("h2", {}, "Running endpoints"), el("table", { id: "endpoints" }, el("thead", {}, el("tr", {}, ["Name", "URL", "Model", "Status", ""].map(h => el("th", { scope: "col" }, h)))), list)),
    el("section", { class: "try" }, el("h2", {}, "Try it"), el("label", { for: "endpoint" }, "Endpoint ", pick), el("label", { for: "try-file" }, "Image ", file), zone, result),
    el("section", {}, el("h2", {}, "Call it from code"), snippets));
  await load();
}


// ---------------------------------------------------------------- Tune
function dataField(params) {
  const saved = chosenData() || {};
  const chosen = params.has("path") || saved.path !== undefined;
  return chosen ? { root: Number(params.get("root") ?? saved.root ?? 0), path: params.get("path") ?? saved.path } : null;
}

async function tunePage() {
  const [opts, list, roots] = await Promise.all([api("/api/tune/options"), api("/api/tune"), api("/api/data/roots")]);
  const params = new URLSearchParams(location.search);
  const data = dataField(params);
  const submission = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2));
  const err = name => el("span", { class: "field-error", id: `err-${name}`, role: "alert" });
  const input = (id, attrs) => el("input", { id, name: id, ...attrs });
  const form = el("form", { id: "tune-form", novalidate: true });
  const objective = el("select", { id: "t-objective" }, opts.objectives.map((o, i) => el("option", { value: i }, `${o.type} ${o.metric}`)));
  const strategy = el("select", { id: "t-strategy" }, opts.strategies.map(s => el("option", { value: s }, s)));
  const early = el("select", { id: "t-early" }, el("option", { value: "Off" }, "off"), el("option", { value: "Auto" }, "auto (median rule)"));
  const model = input("t-model", { value: localStorage.getItem("vt.model") || "mobilenet_v2" });
  const rows = opts.ranges.map(r => {
    const on = el("input", { type: "checkbox", id: `use-${r.name}`, checked: r.suggested, "aria-label": `tune ${r.name}` });
    let inputs;
    if (r.type === "categorical") {
      inputs = el("fieldset", { class: "choices" }, el("legend", { class: "sr" }, `${r.name} values`),
        r.values.map(v => el("label", { class: "check" }, el("input", { type: "checkbox", "data-value": v, checked: true }), v)));
    } else {
      inputs = el("span", { class: "range-inputs" },
        el("label", { for: `min-${r.name}` }, "min", el("input", { id: `min-${r.name}`, type: "number", step: "any", value: r.min })),
        el("label", { for: `max-${r.name}` }, "max", el("input", { id: `max-${r.name}`, type: "number", step: "any", value: r.max })),
        el("label", { class: "check", for: `log-${r.name}` }, el("input", { id: `log-${r.name}`, type: "checkbox", checked: r.log }), "log scale"));
    }
    return { r, on, inputs, row: el("tr", {}, el("td", {}, on), el("th", { scope: "row" }, r.name.replaceAll("_", " "), el("br"), el("small", { class: "muted" }, r.help)), el("td", {}, inputs, err(`range-${r.name}`))) };
  });
  const maxJobs = input("t-max_jobs", { type: "number", min: 1, value: 6 });
  const parallel = input("t-max_parallel_jobs", { type: "number", min: 1, value: 1 });
  const epochs = input("t-epochs", { type: "number", min: 1, value: 5 });
  const mode = el("select", { id: "t-mode" }, ["head", "partial", "full"].map(m => el("option", { value: m }, m)));
  const size = input("t-image_size", { type: "number", min: 16, placeholder: "default" });
  const name = input("t-name", { placeholder: "default: tune-<time>", pattern: "[A-Za-z0-9_-]+" });
  const go = el("button", { type: "submit", id: "tune-button" }, "Start tuning");
  const top = el("p", { class: "field-error", id: "err-form", role: "alert" });
  form.append(
    el("div", { class: "field wide" }, el("span", { class: "label" }, "Data"), el("output", { id: "data-path" }, data ? `${(roots[data.root] || {}).path}/${data.path}` : "none chosen"), el("a", { href: data ? `/data?next=tune&root=${data.root}&path=${encodeURIComponent(data.path)}` : "/data?next=tune", id: "choose-data" }, " choose…"), err("data")),
    el("div", { class: "form-grid" },
      el("div", { class: "field" }, el("label", { for: "t-name" }, "tuning job name"), name, err("name")),
      el("div", { class: "field" }, el("label", { for: "t-model" }, "model"), model, err("model")),
      el("div", { class: "field" }, el("label", { for: "t-mode" }, "mode"), mode, err("mode")),
      el("div", { class: "field" }, el("label", { for: "t-epochs" }, "epochs per trial"), epochs, err("epochs")),
      el("div", { class: "field" }, el("label", { for: "t-image_size" }, "image size"), size, err("image_size")),
      el("div", { class: "field" }, el("label", { for: "t-objective" }, "objective"), objective),
      el("div", { class: "field" }, el("label", { for: "t-strategy" }, "strategy"), strategy),
      el("div", { class: "field" }, el("label", { for: "t-early" }, "early stopping of trials"), early),
      el("div", { class: "field" }, el("label", { for: "t-max_jobs" }, "max jobs"), maxJobs, err("max_jobs")),
      el("div", { class: "field" }, el("label", { for: "t-max_parallel_jobs" }, "parallel jobs"), parallel, err("max_parallel_jobs"))),
    el("h2", {}, "Ranges"), el("table", { class: "ranges" }, el("tbody", {}, rows.map(x => x.row))), top, go);
  form.addEventListener("submit", async e => {
    e.preventDefault();
    if (go.disabled) return;
    form.querySelectorAll(".field-error").forEach(s => { s.textContent = ""; });
    const ranges = {};
    for (const { r, on, inputs } of rows) {
      if (!on.checked) continue;
      if (r.type === "categorical") ranges[r.name] = { type: "categorical", values: [...inputs.querySelectorAll("input:checked")].map(i => i.dataset.value) };
      else ranges[r.name] = { type: r.type, min: document.getElementById(`min-${r.name}`).value, max: document.getElementById(`max-${r.name}`).value, scaling: document.getElementById(`log-${r.name}`).checked ? "Logarithmic" : "Linear" };
    }
    const base = { model: model.value, mode: mode.value, epochs: epochs.value };
    if (size.value) base.image_size = size.value;
    go.disabled = true; go.textContent = "Starting…";
    try {
      const r = await api("/api/tune", { method: "POST", json: { name: name.value, data, base, ranges, objective: opts.objectives[Number(objective.value)], strategy: strategy.value, early_stopping: early.value, max_jobs: maxJobs.value, max_parallel_jobs: parallel.value, submission } });
      location.href = `/tune/${encodeURIComponent(r.tuning_job)}`;
    } catch (ex) {
      showErrors(ex, form, top, "t-");
      go.disabled = false; go.textContent = "Start tuning";
    }
  });
  page("Tune",
    list.length ? el("section", {}, el("h2", {}, "Tuning jobs"), table(["name", "status", "trials", "objective", "best", "best job"], list.map(t => [el("a", { href: `/tune/${encodeURIComponent(t.name)}` }, t.name), badge(t.status), `${t.trials}/${t.max_jobs}`, t.objective || "", fmt.num(t.best, 4), t.best_job ? el("a", { href: `/jobs/${encodeURIComponent(t.best_job)}` }, t.best_job) : "–"]), { id: "tunings" })) : null,
    el("section", {}, el("h2", {}, "New tuning job"), form),
    el("p", { class: "muted" }, "CLI: ", el("code", {}, "visiontune tune --config tune.yaml [--detach]"), " — the form writes that file (tune.yaml in the tuning job's folder)."));
}

async function tuningPage() {
  const name = ARGS.name;
  const head = el("div", { class: "job-head" });
  const stop = el("button", { type: "button", id: "stop", class: "danger", hidden: true }, "Stop");
  const plots = el("button", { type: "button", id: "plots", class: "secondary" }, "Draw the plots now");
  const chart = el("div", { id: "trials-chart", class: "charts" });
  const board = el("div", { id: "board" });
  const pics = el("div", { id: "tuning-plots", class: "charts" });
  stop.addEventListener("click", async () => { if (!confirm(`Stop tuning job ${name}? Its running trials stop; finished trials stay on the leaderboard.`)) return; stop.disabled = true; try { await api(`/api/tune/${encodeURIComponent(name)}/stop`, { method: "POST" }); toast("Stop requested"); } catch (e) { toast(e.message, true); } });
  function draw(d) {
    const objective = d.config.objective || {};
    fill(head, badge(d.status), el("span", { class: "muted" }, ` ${objective.type || ""} ${objective.metric || ""} · ${d.leaderboard.length}/${d.config.max_jobs} trials · ${d.config.strategy}`),
      d.failure ? el("p", { class: "problems", role: "alert" }, d.failure) : null);
    stop.hidden = d.status !== "InProgress";
    const rows = d.leaderboard;
    const own = ["TrainingJobName", "TrainingJobStatus", "FinalObjectiveValue", "TrainingElapsedTimeSeconds", "TrialNumber", "Attempts", "FailureReason", "LastReportedObjectiveValue", "LastReportedStep"];
    const params = Object.keys(d.config.ranges || {}).length ? Object.keys(d.config.ranges) : rows.length ? Object.keys(rows[0]).filter(k => !own.includes(k)) : [];
    const value = v => v === null || v === undefined ? "–" : typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toPrecision(3)) : String(v);
    const last = r => r.FinalObjectiveValue !== null || r.LastReportedObjectiveValue === null || r.LastReportedObjectiveValue === undefined ? "–"
      : `${fmt.num(r.LastReportedObjectiveValue, 4)}${r.LastReportedStep !== null && r.LastReportedStep !== undefined ? ` (epoch ${r.LastReportedStep})` : ""}`;
    fill(board, rows.length ? table(["Trial", "Training job", "Status", `${objective.metric || "objective"} (final)`, "Last reported, if stopped early", "Time", ...params.map(p => p.replaceAll("_", " "))],
      rows.map(r => [value(r.TrialNumber), r.TrainingJobName ? el("a", { href: `/jobs/${encodeURIComponent(r.TrainingJobName)}` }, r.TrainingJobName) : "–", badge(r.TrainingJobStatus), fmt.num(r.FinalObjectiveValue, 4), last(r), fmt.secs(r.TrainingElapsedTimeSeconds), ...params.map(p => value(r[p]))]), { id: "leaderboard" }) : el("p", { class: "muted" }, "No trial has started yet."));
    const done = rows.filter(r => r.FinalObjectiveValue !== null).sort((a, b) => a.TrialNumber - b.TrialNumber);
    fill(chart, lineChart(`${objective.metric || "objective"} per trial`, [{ name: "trial", points: done.map(r => [r.TrialNumber, r.FinalObjectiveValue]) }], { xlabel: "trial" }));
    fill(pics, d.files.filter(f => f.endsWith(".png")).map(f => el("img", { src: `/api/tune/${encodeURIComponent(name)}/files/${f}?t=${Date.now()}`, alt: f.replace(".png", " plot"), class: "result-img" })));
  }
  plots.addEventListener("click", async () => { plots.disabled = true; try { draw(await api(`/api/tune/${encodeURIComponent(name)}/plots`, { method: "POST" })); } catch (e) { toast(e.message, true); } plots.disabled = false; });
  page(name, head, el("div", { class: "actions" }, stop, plots), chart, el("h2", {}, "Leaderboard"), board, el("h2", {}, "Plots"), pics);
  draw(await api(`/api/tune/${encodeURIComponent(name)}`));
  const events = new EventSource(`/api/tune/${encodeURIComponent(name)}/events`);
  events.addEventListener("board", e => draw(JSON.parse(e.data)));
  events.addEventListener("end", () => events.close());
}

// ---------------------------------------------------------------- Labeling
async function labelPage() {
  const jobs = await api("/api/label");
  const rows = jobs.map(j => {
    const exp = el("button", { type: "button", class: "small", "data-export": j.job, disabled: !j.answers }, "Export and train");
    exp.addEventListener("click", async () => {
      exp.disabled = true;
      try {
        const r = await api(`/api/label/${encodeURIComponent(j.job)}/export`, { method: "POST" });
        localStorage.setItem("vt.data", JSON.stringify({ root: r.root, path: r.path }));
        location.href = `/train?root=${r.root}&path=${encodeURIComponent(r.path)}`;
      } catch (e) { toast(e.message, true); exp.disabled = false; }
    });
    return [j.job, j.labels.join(", ") + (j.multi_label ? " (several per image)" : ""), `${j.complete}/${j.images}`,
      j.answers, j.workers.join(", ") || "–", Object.entries(j.agreement || {}).map(([w, a]) => `${w} ${(a * 100).toFixed(0)}%`).join(", ") || "–",
      el("code", {}, `visiontune label serve ${j.job}`), exp];
  });
  page("Labeling",
    jobs.length ? table(["job", "labels", "complete", "answers", "workers", "agreement with the others", "open the owner view", ""], rows, { id: "label-jobs" })
      : el("p", {}, "No labeling jobs yet."),
    el("p", { class: "muted" }, "Create one with ", el("code", {}, "visiontune label create NAME IMAGES/ --labels a,b,c"),
      "; ", el("code", {}, "visiontune label serve NAME"), " prints the owner's link and serves the workers' pages. ",
      "Export and train writes the labels so far as Ground Truth manifests (80/20 split) and opens the Train page on them."));
}

const PAGES = { label: labelPage, tune: tunePage, tuning: tuningPage, models: modelsPage, model: modelPage, data: dataPage, train: trainPage, job: jobPage, jobs: jobsPage, compare: comparePage, deploy: deployPage };
(PAGES[PAGE] || (async () => {}))().catch(e => {
  main.append(el("p", { class: "problems", role: "alert" }, e.message));
});
