"""The labeling web app: each worker's page (one image at a time, keyboard first), the owner's page
(progress, agreement, disagreements), and the JSON API they use.  Secrets travel only in URL paths and
are never logged (the access log is off); files are served by item id from the job store, never from a
path in the request."""

from __future__ import annotations

import html
import json
from pathlib import Path

from fastapi import Request  # (module level: FastAPI reads the annotation by name)

from visiontune.label.store import LabelStore

FORBIDDEN = """<!doctype html><meta charset="utf-8"><title>Link not valid</title>
<body style="font:16px system-ui;margin:4em auto;max-width:36em;color:#222">
<h1>This link is not valid</h1><p>It was revoked, replaced by a newer one, or mistyped.
Ask the job's owner for your current link (<code>visiontune label workers link JOB NAME</code>).</p></body>"""


def create_app(store: LabelStore | None = None):
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

    from visiontune.errors import request_problems

    store = store or LabelStore()
    app = FastAPI(title="visiontune labeling", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request, exc: RequestValidationError):  # the app's {"error"} shape, not FastAPI's
        return JSONResponse({"error": f"bad request: {request_problems(exc.errors())}"}, status_code=400)

    def forbidden(api: bool):
        if api:
            return JSONResponse({"error": "this link is not valid (revoked, replaced or mistyped)"}, status_code=403)
        return HTMLResponse(FORBIDDEN, status_code=403)

    @app.get("/", response_class=HTMLResponse)
    def root():
        return HTMLResponse("<!doctype html><meta charset='utf-8'><title>visiontune labeling</title>"
                            "<p style='font:16px system-ui;margin:4em'>Open your personal link.</p>")

    @app.get("/w/{secret}", response_class=HTMLResponse)
    def worker_page(secret: str):
        found = store.worker(secret)
        if found is None:
            return forbidden(False)
        job, worker = found
        return HTMLResponse(WORKER_HTML.replace("__TITLE__", html.escape(f"{job.name} — {worker['name']}")))

    def task_json(secret: str, job, worker, item, answer=None) -> dict:
        # the image after this one, leased too, so the page can preload it
        upcoming = store.next_item(job, worker["id"], exclude=item.id) if item is not None else None
        counts = store.counts(job, worker["id"])
        return {"job": job.name, "worker": worker["name"], "labels": job.labels, "multi_label": job.multi_label,
                "instructions": job.instructions, "progress": counts,
                "item": None if item is None else item.id,
                "image": None if item is None else f"/api/w/{secret}/image/{item.id}",
                "next_image": None if upcoming is None or upcoming.id == getattr(item, "id", None)
                else f"/api/w/{secret}/image/{upcoming.id}",
                "answer": answer}

    @app.get("/api/w/{secret}/task")
    def task(secret: str, before: int | None = None):
        found = store.worker(secret)
        if found is None:
            return forbidden(True)
        job, worker = found
        if before is not None:  # Backspace: the image answered before this one, with the answer given
            prev = store.previous(worker["id"], before)
            if prev is None:  # nothing before the first image: the page stays where it is
                return Response(status_code=204)
            return task_json(secret, job, worker, prev[0], prev[1])
        item = store.next_item(job, worker["id"])  # the unfinished one first (a reloaded page), else a new one
        return task_json(secret, job, worker, item)

    @app.post("/api/w/{secret}/answer")
    async def answer(secret: str, request: Request):
        found = store.worker(secret)
        if found is None:
            return forbidden(True)
        job, worker = found
        usage = "send {\"item\": ID, \"label\": INDEX} or {\"item\": ID, \"skip\": true}"
        try:
            body = await request.json()
            item_id = body["item"]
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": usage}, status_code=400)
        # strict types: "false" or 1.7 taken as true or 1 would store what the worker did not answer
        if not isinstance(item_id, int) or isinstance(item_id, bool):
            return JSONResponse({"error": f"item: an image id (an integer), not {json.dumps(item_id)}; {usage}"},
                                status_code=400)
        skip = body.get("skip", False)
        if not isinstance(skip, bool):
            return JSONResponse({"error": f"skip: true or false, not {json.dumps(skip)}"}, status_code=400)
        label = body.get("label")
        if not skip:
            n = len(job.labels)
            if job.multi_label:
                if not isinstance(label, list) or not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < n
                                                          for x in label):
                    return JSONResponse({"error": f"label: a list of label indices 0..{n - 1}"}, status_code=400)
                label = sorted(set(label))
            elif not isinstance(label, int) or isinstance(label, bool) or not 0 <= label < n:
                return JSONResponse({"error": f"label: one label index 0..{n - 1}"}, status_code=400)
        try:
            state = store.answer(job, worker["id"], item_id, label, skipped=skip)
        except PermissionError as e:
            return JSONResponse({"error": str(e)}, status_code=403)
        return {"status": state}  # committed before this reply

    @app.get("/api/w/{secret}/image/{item_id}")
    def worker_image(secret: str, item_id: int):
        found = store.worker(secret)
        if found is None:
            return forbidden(True)
        job, worker = found
        if store.assigned(worker["id"], item_id) is None:
            return JSONResponse({"error": "no such image among yours"}, status_code=404)
        return _file(store, job, item_id)

    @app.get("/o/{secret}", response_class=HTMLResponse)
    def owner_page(secret: str):
        job = store.owner_job(secret)
        if job is None:
            return forbidden(False)
        return HTMLResponse(owner_html(store, job, secret))

    @app.get("/api/o/{secret}/status")
    def owner_status(secret: str):
        job = store.owner_job(secret)
        if job is None:
            return forbidden(True)
        from visiontune.label.jobs import status

        return status(job.name, store)

    @app.get("/api/o/{secret}/image/{item_id}")
    def owner_image(secret: str, item_id: int):
        job = store.owner_job(secret)
        if job is None:
            return forbidden(True)
        return _file(store, job, item_id)

    def _file(store, job, item_id: int):
        item = store.item(job, item_id)
        if item is None or not Path(item.path).is_file():
            return JSONResponse({"error": "no such image"}, status_code=404)
        return FileResponse(item.path, headers={"Cache-Control": "private, max-age=3600"})

    return app


def owner_html(store: LabelStore, job, secret: str) -> str:
    from visiontune.label.consolidate import disagreements
    from visiontune.label.consolidate import consolidated
    from visiontune.label.jobs import status

    st = status(job.name, store)
    items, answers, result = consolidated(job, store)
    esc = html.escape
    agree = st.get("agreement", {})
    rows = "".join(f"<tr><td>{esc(w)}</td><td>{n}</td><td>{f'{agree[w]:.0%}' if w in agree else '–'}</td>"
                   f"<td>{'' if result is None or w not in result.worker_accuracy else f'{result.worker_accuracy[w]:.0%}'}"
                   f"</td></tr>" for w, n in sorted(st["per_worker"].items()))
    dis = ""
    if result is not None:
        triples = [(a["item"], a["worker"], int(a["label"])) for a in answers if not job.multi_label]
        for d in disagreements(triples, result, top=50):
            votes = ", ".join(f"{esc(w)}: {esc(job.labels[lab])}" for w, lab in d["answers"].items())
            dis += (f"<div class='d'><img loading='lazy' src='/api/o/{secret}/image/{d['item']}'><div>"
                    f"<b>{esc(job.labels[d['label']])}</b> ({d['confidence']:.0%})<br>{votes}</div></div>")
    counts = {}
    if result is not None:
        for lab in result.labels.values():
            counts[job.labels[lab]] = counts.get(job.labels[lab], 0) + 1
    per_label = "".join(f"<tr><td>{esc(k)}</td><td>{v}</td></tr>" for k, v in sorted(counts.items()))
    auto = st.get("auto_label")
    auto_html = ""
    if auto is not None:
        est = auto["estimated_accuracy"]
        auto_html = (f"<h2>Auto-labeling</h2><p id='auto'>{auto['human_labeled']} images labelled by people, "
                     f"{auto['auto_labeled']} by the model ({auto['model']}, {auto['rounds']} round(s); estimated "
                     f"accuracy {'–' if est is None else f'{est:.1%}'}, target {auto['target_accuracy']:.0%}). "
                     f"Next round: {esc(auto['next_round'] or 'when more images are labelled')}.</p>")
    return OWNER_HTML.format(
        title=esc(job.name), done=st["complete"], total=st["images"], answers=st["answers"], auto=auto_html,
        k=job.workers_per_image, workers=rows or "<tr><td colspan=4>no answers yet</td></tr>",
        labels=per_label or "<tr><td colspan=2>none yet</td></tr>",
        disagreements=dis or "<p>No disagreements.</p>", data=esc(json.dumps(st)))


OWNER_HTML = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} — owner</title>
<meta http-equiv="refresh" content="15"><link rel="icon" href="data:,">
<style>body{{font:15px system-ui,sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse}}
td,th{{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}} .d{{display:inline-flex;gap:.6em;margin:.4em;
padding:.4em;border:1px solid #ddd;border-radius:6px;align-items:center}} .d img{{width:96px;height:96px;object-fit:contain;
background:#f4f4f4}} progress{{width:24em}}</style></head><body>
<h1>{title}</h1>
<p id="progress"><progress max="{total}" value="{done}"></progress> {done} of {total} images complete
({k} worker(s) per image), {answers} answers.</p>{auto}
<h2>Workers</h2><table id="workers"><tr><th>worker</th><th>answers</th><th>agrees with the others</th>
<th>estimated accuracy</th></tr>{workers}</table>
<h2>Labels so far</h2><table id="labels"><tr><th>label</th><th>images</th></tr>{labels}</table>
<h2>Disagreements (least confident first)</h2><div id="disagreements">{disagreements}</div>
<script type="application/json" id="status">{data}</script></body></html>"""


WORKER_HTML = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><link rel="icon" href="data:,">
<style>
*{box-sizing:border-box} body{margin:0;font:15px system-ui,sans-serif;color:#1d1d1f;background:#f5f5f7;height:100vh;
display:grid;grid-template-columns:1fr 22em;grid-template-rows:auto 1fr}
header{grid-column:1/3;padding:.6em 1em;background:#1e293b;color:#fff;display:flex;justify-content:space-between}
#stage{overflow:hidden;display:flex;align-items:center;justify-content:center;background:#111;position:relative}
#img{width:100%;height:100%;object-fit:contain;transition:transform .1s;cursor:zoom-in;image-rendering:auto}
#side{padding:1em;overflow:auto;background:#fff;border-left:1px solid #ddd}
.lab{display:flex;width:100%;margin:.25em 0;padding:.55em .7em;border:1px solid #c9c9cf;border-radius:6px;
background:#fff;font:inherit;cursor:pointer;text-align:left;gap:.6em}
.lab kbd,.hint kbd{font:12px ui-monospace,monospace;border:1px solid #bbb;border-radius:3px;padding:0 .35em;background:#f2f2f2}
.lab.sel{background:#2563eb;color:#fff;border-color:#2563eb} .lab.sel kbd{color:#111}
#submit{margin-top:.8em;width:100%;padding:.6em;font:inherit;background:#16a34a;color:#fff;border:0;border-radius:6px}
#submit:disabled{background:#9ca3af} #skip{margin-top:.4em;width:100%;padding:.4em;font:inherit}
#filter{width:100%;padding:.4em;margin-bottom:.4em;font:inherit} .hint{color:#555;font-size:13px;margin-top:1em}
#instructions{white-space:pre-wrap;font-size:14px;color:#333;border-top:1px solid #eee;margin-top:1em;padding-top:.6em}
#done{display:none;padding:2em;color:#fff;font-size:20px}
</style></head><body>
<header><b id="title">labeling</b><span id="progress">…</span></header>
<div id="stage"><img id="img" alt="the image to label"><div id="done">All done — thank you! Nothing is left for you.</div></div>
<div id="side">
<input id="filter" placeholder="type to filter labels" autocomplete="off">
<div id="labels"></div>
<button id="submit" disabled>Submit <kbd>Enter</kbd></button>
<button id="skip">Unclear / skip <kbd>0</kbd></button>
<div class="hint"><kbd>1</kbd>–<kbd>9</kbd> choose · <kbd>Enter</kbd> submit · <kbd>Backspace</kbd> back ·
<kbd>+</kbd>/<kbd>-</kbd> or click to zoom</div>
<div id="instructions"></div>
</div>
<script>
"use strict";
const secret = location.pathname.split("/").filter(Boolean)[1];
const api = (p) => "/api/w/" + secret + p;
let task = null, chosen = new Set(), zoom = 1, busy = false, shown = [];
const $ = (id) => document.getElementById(id);
function setZoom(z){ zoom = Math.max(1, Math.min(8, z)); $("img").style.transform = "scale(" + zoom + ")";
  $("img").style.cursor = zoom > 1 ? "zoom-out" : "zoom-in"; }
function renderLabels(){
  const box = $("labels"), f = $("filter").value.toLowerCase(); box.innerHTML = ""; shown = [];
  task.labels.forEach((name, i) => {
    if (f && !name.toLowerCase().includes(f)) return;
    shown.push(i);
    const b = document.createElement("button"); b.className = "lab" + (chosen.has(i) ? " sel" : "");
    b.dataset.index = i;
    const k = shown.length <= 9 ? "<kbd>" + shown.length + "</kbd>" : "<kbd>&nbsp;</kbd>";
    b.innerHTML = k + "<span></span>"; b.querySelector("span").textContent = name;
    b.onclick = () => choose(i); box.appendChild(b);
  });
  $("submit").disabled = chosen.size === 0;
}
function choose(i){
  if (task.multi_label) { chosen.has(i) ? chosen.delete(i) : chosen.add(i); } else { chosen = new Set([i]); }
  renderLabels();
}
function show(t){
  task = t; chosen = new Set(); setZoom(1); $("filter").value = "";
  $("title").textContent = t.job + " — " + t.worker;
  $("instructions").textContent = t.instructions || "";
  const p = t.progress; $("progress").textContent = p.done_by_you + " done · " + p.left_for_you + " left";
  if (t.item === null) { $("img").style.display = "none"; $("done").style.display = "block"; renderLabels(); return; }
  $("img").style.display = ""; $("done").style.display = "none";
  $("img").src = t.image; $("img").dataset.item = t.item;
  if (t.answer !== null && t.answer !== undefined) {
    chosen = new Set(Array.isArray(t.answer) ? t.answer : [t.answer]); }
  if (t.next_image) { const pre = new Image(); pre.src = t.next_image; }
  renderLabels();
}
async function load(before){
  const r = await fetch(api("/task" + (before ? "?before=" + before : "")));
  if (r.status === 403) { location.reload(); return; }
  if (r.status === 204) return;  // nothing before the first image
  show(await r.json());
}
async function send(body){
  if (busy || !task || task.item === null) return; busy = true;
  try {
    const r = await fetch(api("/answer"), {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify(Object.assign({item: task.item}, body))});
    if (!r.ok) { alert((await r.json()).error || "not saved"); return; }
    await load();
  } finally { busy = false; }
}
function submit(){
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
  if (e.key === "Enter") { e.preventDefault(); submit(); return; }
  if (typing) { if (e.key === "Escape") $("filter").blur(); return; }
  if (/^[1-9]$/.test(e.key)) { const i = shown[Number(e.key) - 1]; if (i !== undefined) choose(i); e.preventDefault(); }
  else if (e.key === "0") { send({skip: true}); }
  else if (e.key === "Backspace") { e.preventDefault(); if (task.item !== null) load(task.item); else load(-1); }
  else if (e.key === "+" || e.key === "=") setZoom(zoom * 1.25);
  else if (e.key === "-") setZoom(zoom / 1.25);
  else if (e.key.length === 1 && /\\w/.test(e.key) && task.labels.length > 9) { $("filter").focus(); }
});
load();
</script></body></html>"""


def serve(name: str, host: str = "127.0.0.1", port: int = 8770, allow_remote: bool = False,
          store: LabelStore | None = None, announce=print) -> None:
    """Run the app until interrupted; prints the owner's link (a new one each start)."""
    import uvicorn

    from visiontune.errors import ConfigError

    if host not in ("127.0.0.1", "localhost", "::1") and not allow_remote:
        raise ConfigError(f"--host {host}: the app would be reachable from other machines; add --allow-remote to "
                          "mean it (links are the only protection: serve it behind HTTPS)")
    from visiontune.serve.endpoints import check_port_free

    store = store or LabelStore()
    job = store.get_job(name)
    check_port_free(host, port)  # before a new owner link replaces the one in use
    if host not in ("127.0.0.1", "localhost", "::1"):
        announce(f"warning: serving on {host}: anyone who can reach this machine and has a link can label")
    owner = store.new_owner_secret(job)
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    announce(f"labeling job {job.name}: {base}/o/{owner} (owner view; this link replaces earlier ones)")
    announce(f"worker links: `visiontune label workers add {job.name} NAME...`")
    auto = None
    if job.settings.get("auto_label") is not None:
        from visiontune.label.active import AutoLabeler

        auto = AutoLabeler(job.name, store, say=announce).start()
        announce("auto-labeling: a round runs whenever enough new human labels are in (`label status` shows them)")
    try:
        uvicorn.run(create_app(store), host=host, port=port, access_log=False, log_level="warning")
    finally:
        if auto is not None:
            auto.stop()
