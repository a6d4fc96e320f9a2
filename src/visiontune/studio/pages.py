"""The studio's HTML: one shell per page (navigation, the CSRF token, the page's name and arguments);
``static/studio.js`` fills it from the JSON API.  No inline scripts (the Content-Security-Policy forbids
them), nothing from a CDN."""

from __future__ import annotations

import html
import json

#: the navigation, in order; a new page is one entry here, one in app.PAGES and one function in studio.js
NAV = (("models", "/models", "Models"), ("data", "/data", "Data"), ("label", "/label", "Labeling"),
       ("train", "/train", "Train"),
       ("jobs", "/jobs", "Jobs"), ("tune", "/tune", "Tune"), ("deploy", "/deploy", "Deploy"))
#: which navigation entry a page belongs to
SECTION = {"model": "models", "job": "jobs", "compare": "jobs", "tuning": "tune"}

EXPIRED = """<!doctype html><html lang="en"><meta charset="utf-8"><title>visiontune studio: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<body style="font:16px system-ui,sans-serif;margin:4em auto;max-width:38em;padding:0 1em;color:#222">
<h1>This studio link is not valid (any more)</h1>
<p>The studio makes a new link each time it starts, and this browser holds an old one or none.</p>
<p>Open the link printed by <code>visiontune studio</code> in its terminal, or print it again with
<code>visiontune studio --url</code>.</p></body></html>"""


def render(page: str, title: str, csrf: str, args: dict) -> str:
    section = SECTION.get(page, page)
    current = ' aria-current="page"'
    nav = "".join(f'<a href="{href}"{current if key == section else ""}>{label}</a>' for key, href, label in NAV)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf" content="{html.escape(csrf)}">
<title>{html.escape(title)} · visiontune studio</title>
<link rel="stylesheet" href="/static/studio.css">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<script src="/static/studio.js" defer></script>
</head>
<body data-page="{html.escape(page)}" data-args="{html.escape(json.dumps(args))}">
<header><a class="brand" href="/models">visiontune <span>studio</span></a><nav aria-label="main">{nav}</nav></header>
<main id="main"><h1>{html.escape(title)}</h1><p class="muted">Loading…</p></main>
<div id="toast" role="status" aria-live="polite"></div>
</body></html>"""
