"""The web layer stays below the apps and the apps stay small: web/ imports none of serve/, studio/, label/;
no function in those packages is over 60 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import visiontune

SRC = Path(visiontune.__file__).parent
APPS = ("serve", "studio", "label")
LONGEST = 60


def _modules(package: str):
    return sorted((SRC / package).rglob("*.py"))


def test_web_imports_none_of_the_apps():
    for path in _modules("web"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                assert not any(name.startswith(f"visiontune.{app}") for app in APPS), f"{path.name} imports {name}"


def test_no_function_in_the_web_packages_is_over_60_lines():
    long = []
    for package in ("web", *APPS):
        for path in _modules(package):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > LONGEST:
                        long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "split these: " + "; ".join(long)
