"""Jinja2 for every HTML page the apps send (autoescape on: a label, class, worker or file name is text,
never markup).  Each app asks for an environment over its own ``templates/`` folder; the pages every app
shares (the expired-link page, the base layout) live in this package's ``templates/``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


@lru_cache(maxsize=None)
def environment(*folders: str) -> jinja2.Environment:
    """An environment over ``folders`` (an app's templates) and the shared ones, autoescaping everything."""
    loader = jinja2.FileSystemLoader([*folders, str(TEMPLATES)])
    return jinja2.Environment(
        loader=loader, autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )


def render(name: str, *folders: str, **context) -> str:
    return environment(*folders).get_template(name).render(**context)
