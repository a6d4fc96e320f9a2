"""``visiontune report``: one self-contained HTML file per job, every chart drawn (checked in headless
Chromium), every rule's finding with its evidence, and warnings rather than silence for what is missing."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.debug.broken import run
from visiontune.debug import TensorUnavailable
from visiontune.debug.report import build_report, terminal_summary
from visiontune.debug.rules import RuleRunner, parse_rules

SECTIONS = ("summary", "rules", "curves", "system", "steps", "profiler", "confusion", "warnings", "traces")
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


# -- runs to report on ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def engine_run(tmp_path_factory) -> Path:
    """A built-in engine run: metrics.json, debug/ with tensors, rules.json, system.jsonl."""
    from tests.conftest import FAST, make_folder_dataset
    from visiontune.train import train

    root = tmp_path_factory.mktemp("report-engine")
    data = make_folder_dataset(root / "data", per_class=12)
    result = train(data=str(data), out=str(root / "run"), mode="full", **{**FAST, "epochs": 2}, profile_interval=0.1)
    return Path(result.out)


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory) -> Path:
    """A script-style run (the hook API) with zero-initialised weights, its rules written to rules.json."""
    folder = run(tmp_path_factory.mktemp("report-zero"), "zero_init", epochs=1)
    RuleRunner(folder, parse_rules("default", "script"), kind="script").evaluate(finished=True)
    return folder.parent


@pytest.fixture(scope="module")
def sparse_run(tmp_path_factory) -> Path:
    """Weights and gradients saved every 1000 steps (so once), and no rules.json (as after a crash)."""
    return run(tmp_path_factory.mktemp("report-sparse"), "healthy", epochs=1, save_interval=1000).parent


def _copy(run_dir: Path, to: Path) -> Path:
    shutil.copytree(run_dir, to)
    (to / "debug" / "report.html").unlink(missing_ok=True)
    return to


def _charts(text: str) -> list[str]:
    return re.findall(r'<figure class="chart" data-chart="([^"]+)"', text)


# -- the tests -------------------------------------------------------------------------------------------
def test_the_report_of_an_engine_run_has_every_section_and_chart(engine_run, tmp_path):
    path = build_report(engine_run)
    assert path == (engine_run / "debug" / "report.html").resolve()
    text = path.read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f'<section id="{section}">' in text, section
    charts = _charts(text)
    assert {"loss", "accuracy", "loss-steps", "system", "step-time", "confusion"} <= set(charts), charts
    assert text.count("<svg") >= 6 and text.count("<svg") == len(charts)
    # self-contained: nothing loaded from anywhere, no scripts at all
    assert not EXTERNAL.search(text)
    assert "<script" not in text and "<link" not in text and "@import" not in text
    assert not re.search(r"""url\(\s*["']?(?!#)""", text)  # only the SVGs' own clip paths: url(#id)
    assert 'class="rules debug"' in text and 'class="rules profiler"' in text  # two tables
    assert "Percentiles (OverallSystemUsage)" in text
    assert "Most-confused pairs" in text or "No image was misclassified" in text
    assert "<?xml" not in text and "<!DOCTYPE svg" not in text
    # --out elsewhere, written whole
    other = build_report(str(engine_run), tmp_path / "reports" / "r.html")
    assert other.is_file() and other.read_text(encoding="utf-8").count("<svg") == len(charts)
    summary = terminal_summary(engine_run)
    assert f"job {engine_run.name} (built-in engine): Completed" in summary
    assert "accuracy" in summary and "rules:" in summary and "step time (mean of" in summary
    assert f"report: {other}" in summary  # the report just written
    assert f"report: {path}" in terminal_summary(engine_run, report=path)
    assert len(summary.splitlines()) <= 24  # one screen


def test_every_chart_draws_in_headless_chromium(engine_run, faulty_run, chromium, tmp_path):
    from playwright.sync_api import sync_playwright

    reports = [build_report(engine_run, tmp_path / "engine.html"), build_report(faulty_run, tmp_path / "faulty.html")]
    artifacts = Path(os.environ.get("VISIONTUNE_TEST_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors, requests = [], []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            for report in reports:
                page.goto(report.as_uri())
                page.wait_for_load_state("load")
                figures = page.query_selector_all("figure.chart")
                assert len(figures) == len(_charts(report.read_text(encoding="utf-8"))) >= 3
                for fig in figures:
                    name = fig.get_attribute("data-chart")
                    svg = fig.query_selector("svg")
                    assert svg is not None, name
                    box = svg.bounding_box()
                    assert box and box["width"] > 50 and box["height"] > 50, (name, box)
                    assert len(svg.query_selector_all("path")) > 0, f"chart {name} drew nothing"
                shot = tmp_path / f"{report.stem}-report.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 10_000
                if artifacts != tmp_path:
                    shutil.copy(shot, artifacts / shot.name)
        finally:
            browser.close()
    assert errors == []
    assert all(u.startswith(("file:", "data:", "about:")) for u in requests), requests


def test_a_fault_shows_each_issue_with_its_evidence_and_a_chart(faulty_run):
    text = build_report(faulty_run).read_text(encoding="utf-8")
    row = re.search(r'<tr class="rule" id="rule-vanishing_gradient">(.*?)</tr>\s*<tr class="rule"', text, re.S)
    assert row, "the vanishing_gradient rule has a row"
    row = row.group(1)
    assert '<span class="badge IssuesFound">IssuesFound</span>' in row
    assert '<table class="evidence">' in row and "gradient/Net_conv.weight" in row and "abs_mean" in row
    assert 'data-chart="rule-vanishing_gradient"' in row
    assert "What it means:" in row and "Recommendation:" in row
    charts = _charts(text)
    assert {"rule-vanishing_gradient", "rule-unchanged_tensor", "loss", "loss-steps", "step-time"} <= set(charts)
    # a script job: curves from the tensors, and a sentence (not an empty chart) for what it did not record
    assert "the curves come from the tensors" in text
    assert "No confusion matrix: this job wrote no metrics.json" in text
    assert "No system-usage timeline" in text and 'data-chart="system"' not in text
    summary = terminal_summary(faulty_run)
    assert "(script): Finished;" in summary and "rule(s) found issues" in summary
    assert "! vanishing_gradient (IssuesFound): gradient/Net_conv.weight" in summary


def test_a_save_config_that_leaves_too_few_points_is_a_warning(sparse_run):
    text = build_report(sparse_run).read_text(encoding="utf-8")
    warnings = text[text.index('<section id="warnings">') :]
    assert "fewer than 3 points" in warnings and "save_interval=1000" in warnings
    assert "gradient/Net_conv.weight" in warnings and "TRAIN" in warnings and "EVAL" in warnings
    # no rules.json: the rules were evaluated now, and the report says so (and writes no rules.json)
    assert "the rules were evaluated now" in text
    assert not (sparse_run / "debug" / "rules.json").exists()
    assert "(evaluated now: no rules.json)" in terminal_summary(sparse_run)


def test_a_regex_that_matches_nothing_is_a_warning_in_the_report(faulty_run, tmp_path):
    copy = _copy(faulty_run, tmp_path / "regex")
    RuleRunner(
        copy / "debug",
        parse_rules([{"name": "all_zero", "parameters": {"tensor_regex": "no_such_layer.*"}}], "script"),
        kind="script",
    ).evaluate(finished=True)
    text = build_report(copy).read_text(encoding="utf-8")
    warnings = text[text.index('<section id="warnings">') :]
    assert "no saved tensor matched regex no_such_layer.*" in warnings


def test_a_store_torn_or_damaged_by_a_crash_still_renders_with_a_warning(faulty_run, tmp_path):
    torn = _copy(faulty_run, tmp_path / "torn")
    store = torn / "debug" / "tensors" / "worker-0.vtd"
    store.write_bytes(store.read_bytes()[:-7])  # the last record cut short, as by a crash mid-write
    text = build_report(torn).read_text(encoding="utf-8")
    assert "worker-0.vtd: the last" in text and "read up to the last complete record" in text
    assert len(_charts(text)) >= 3

    damaged = _copy(faulty_run, tmp_path / "damaged")
    store = damaged / "debug" / "tensors" / "worker-0.vtd"
    raw = bytearray(store.read_bytes())
    raw[-1] ^= 0xFF  # a flipped byte in the last record: its checksum fails
    store.write_bytes(bytes(raw))
    text = build_report(damaged).read_text(encoding="utf-8")
    assert "damaged tensor store" in text and "is damaged; read the" in text
    assert "rule-vanishing_gradient" in text  # everything before the damage is still there


def test_a_job_without_debugger_output_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(TensorUnavailable, match="no debugger output here"):
        build_report(tmp_path / "empty")
    from visiontune.jobs.api import default_store

    default_store().create_job("never-started", "builtin", {}, {}, str(tmp_path / "never"))
    with pytest.raises(TensorUnavailable, match="never-started has not started yet"):
        build_report("never-started")
    assert not (tmp_path / "never").exists()


def test_names_and_messages_from_a_job_are_text_never_markup(engine_run, tmp_path):
    """The templates autoescape: a class name, a rule message or a warning holding HTML shows as text."""
    import json

    copy = _copy(engine_run, tmp_path / "markup")
    metrics = json.loads((copy / "metrics.json").read_text())
    evil = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    metrics["classes"] = [evil, *metrics["classes"][1:]]
    metrics["evaluation"]["per_class"] = {evil: {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 3}}
    (copy / "metrics.json").write_text(json.dumps(metrics))
    rules = json.loads((copy / "debug" / "rules.json").read_text())
    rules["rules"][0]["message"] = evil
    (copy / "debug" / "rules.json").write_text(json.dumps(rules))
    text = build_report(copy).read_text(encoding="utf-8")
    assert "<script" not in text and "<img" not in text and "onerror=alert(2)>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text  # shown, as text
    assert text.count("<svg") == len(_charts(text))
