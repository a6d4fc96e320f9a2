// The worker's page: one image at a time, keyboard first.  An answer that was not saved says so at once,
// keeps the choice and is sent again until the server has it.
"use strict";
const secret = location.pathname.split("/").filter(Boolean)[1];
const api = (p) => "/api/w/" + secret + p;
let task = null, chosen = new Set(), zoom = 1, busy = false, shown = [], retry = null;
const $ = (id) => document.getElementById(id);
function setZoom(z) {
  zoom = Math.max(1, Math.min(8, z)); $("img").style.transform = "scale(" + zoom + ")";
  $("img").style.cursor = zoom > 1 ? "zoom-out" : "zoom-in";
}
function renderLabels() {
  const box = $("labels"), f = $("filter").value.toLowerCase(); box.replaceChildren(); shown = [];
  task.labels.forEach((name, i) => {
    if (f && !name.toLowerCase().includes(f)) return;
    shown.push(i);
    const b = document.createElement("button"); b.className = "lab" + (chosen.has(i) ? " sel" : "");
    b.dataset.index = i;
    const k = document.createElement("kbd"); k.textContent = shown.length <= 9 ? String(shown.length) : "\u00a0";
    const s = document.createElement("span"); s.textContent = name;
    b.append(k, s); b.onclick = () => choose(i); box.appendChild(b);
  });
  $("submit").disabled = chosen.size === 0;
}
function choose(i) {
  if (task.multi_label) { chosen.has(i) ? chosen.delete(i) : chosen.add(i); } else { chosen = new Set([i]); }
  renderLabels();
}
function progress(p) {
  const answered = p.answered_by_you ?? p.done_by_you, skipped = p.skipped_by_you ?? 0;
  return answered + " answered" + (skipped ? " · " + skipped + " skipped" : "") + " · " + p.left_for_you + " left";
}
function show(t) {
  task = t; chosen = new Set(); setZoom(1); $("filter").value = "";
  $("title").textContent = t.job + " — " + t.worker;
  $("instructions").innerHTML = t.instructions_html || "";  // rendered from Markdown on the server, raw HTML escaped
  $("progress").textContent = progress(t.progress);
  if (t.item === null) { $("img").style.display = "none"; $("done").style.display = "block"; renderLabels(); return; }
  $("img").style.display = ""; $("done").style.display = "none";
  $("img").src = t.image; $("img").dataset.item = t.item;
  if (t.answer !== null && t.answer !== undefined) chosen = new Set(Array.isArray(t.answer) ? t.answer : [t.answer]);
  if (t.next_image) { const pre = new Image(); pre.src = t.next_image; }
  renderLabels();
}
function unsaved(text) {
  const box = $("unsaved");
  box.hidden = !text; box.textContent = text || "";
}
async function load(before) {
  const r = await fetch(api("/task" + (before ? "?before=" + before : "")));
  if (r.status === 403) { location.reload(); return; }
  if (r.status === 204) return;  // nothing before the first image
  show(await r.json());
}
async function post(body) {
  try {
    const r = await fetch(api("/answer"), {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body)});
    if (r.ok) return {ok: true};
    let message = "HTTP " + r.status;
    try { message = (await r.json()).error || message; } catch (e) { /* not JSON */ }
    return {ok: false, message, again: r.status >= 500 || r.status === 429};
  } catch (e) {
    return {ok: false, message: "the server cannot be reached", again: true};
  }
}
async function send(body) {
  if (busy || !task || task.item === null) return;
  busy = true; clearTimeout(retry); retry = null;
  const r = await post(Object.assign({item: task.item}, body));
  if (!r.ok) {
    unsaved("Not saved: " + r.message + (r.again ? ". Your choice is kept; trying again…" : "."));
    if (r.again) retry = setTimeout(() => { busy = false; send(body); }, 2000);
    else busy = false;
    return;
  }
  unsaved(null);
  try { await load(); } finally { busy = false; }
}
function submit() {
  if (chosen.size === 0) return;
  const list = Array.from(chosen).sort((a, b) => a - b);
  send(task.multi_label ? {label: list} : {label: list[0]});
}
$("submit").onclick = submit; $("skip").onclick = () => send({skip: true});
$("filter").oninput = renderLabels;
$("img").onclick = () => setZoom(zoom > 1 ? 1 : 2.5);
$("stage").addEventListener("wheel", (e) => { e.preventDefault(); setZoom(zoom * (e.deltaY < 0 ? 1.2 : 1 / 1.2)); },
  {passive: false});
document.addEventListener("keydown", (e) => {
  if (!task) return;
  const typing = document.activeElement === $("filter");
  if (e.key === "Enter") {
    e.preventDefault();
    if (typing && shown.length === 1) { choose(shown[0]); $("filter").blur(); return; }  // the single match
    if (typing) $("filter").blur();
    submit(); return;
  }
  if (typing) { if (e.key === "Escape") $("filter").blur(); return; }
  if (/^[1-9]$/.test(e.key)) { const i = shown[Number(e.key) - 1]; if (i !== undefined) choose(i); e.preventDefault(); }
  else if (e.key === "0") { send({skip: true}); }
  else if (e.key === "Backspace") { e.preventDefault(); if (task.item !== null) load(task.item); else load(-1); }
  else if (e.key === "+" || e.key === "=") setZoom(zoom * 1.25);
  else if (e.key === "-") setZoom(zoom / 1.25);
  else if (e.key.length === 1 && /\w/.test(e.key) && task.labels.length > 9) { $("filter").focus(); }
});
load();
