"""The studio's HTML: one shell per page (navigation, the CSRF token, the page's name and arguments), a
Jinja2 template; ``static/studio.js`` fills it from the JSON API.  No inline scripts (the Content-Security-
Policy forbids them), nothing from a CDN."""

from __future__ import annotations

from pathlib import Path

from visiontune.web.templates import render as render_template

TEMPLATES = str(Path(__file__).parent / "templates")
#: the navigation, in order; a new page is one entry here, one in PAGES and one function in studio.js
NAV = (
    ("models", "/models", "Models"),
    ("data", "/data", "Data"),
    ("label", "/label", "Labeling"),
    ("train", "/train", "Train"),
    ("jobs", "/jobs", "Jobs"),
    ("tune", "/tune", "Tune"),
    ("deploy", "/deploy", "Deploy"),
)
#: the pages without arguments: (path, page, title)
PAGES = (
    ("/models", "models", "Models"),
    ("/data", "data", "Data"),
    ("/label", "label", "Labeling"),
    ("/train", "train", "Train"),
    ("/jobs", "jobs", "Jobs"),
    ("/compare", "compare", "Compare jobs"),
    ("/tune", "tune", "Tune"),
    ("/deploy", "deploy", "Deploy"),
)
#: which navigation entry a page belongs to
SECTION = {"model": "models", "job": "jobs", "compare": "jobs", "tuning": "tune"}


def render(page: str, title: str, csrf: str, args: dict) -> str:
    # (tojson escapes <, >, & and ' but not ": the shell quotes the attribute with '; autoescape does the rest)
    return render_template(
        "shell.html", TEMPLATES, page=page, title=title, csrf=csrf, args=args, nav=NAV, section=SECTION.get(page, page)
    )
