"""The studio's API over the library: the Train form's checks (the CLI's messages, beside their field), one
job per submission, models and options for the pages, deploy refusals, and the pages themselves."""

from __future__ import annotations

import socket
import time

import pytest

from tests.studio.conftest import PORT, labeling_job


def _train(c, path="colors", submission=None, **config):
    body = {"data": {"root": 0, "path": path}, "config": config}
    if submission:
        body["submission"] = submission
    return c.post("/api/jobs", json=body)


@pytest.mark.parametrize(
    "config,field,words",
    [
        ({"epochs": 0}, "epochs", "epochs=0: must be 1 or more"),
        ({"epochs": "two"}, "epochs", "whole number"),
        ({"learning_rate": "-1"}, "learning_rate", "greater than 0"),
        ({"mode": "everything"}, "mode", "choose one of head, partial, full"),
        ({"dropout": 1.5}, "dropout", "[0, 1)"),
        ({"batch_size": ""}, "batch_size", "give a value"),
        ({"not_an_option": 1}, "not_an_option", "unknown option"),
    ],
)
def test_bad_hyperparameters_are_named_beside_their_field(studio, config, field, words):
    c, _ = studio
    r = _train(c, **config)
    assert r.status_code == 400
    assert r.json()["field"] == field and words in r.json()["error"]


def test_a_malformed_form_or_an_unknown_name_gets_a_json_answer(studio):
    c, _ = studio
    r = c.post("/api/jobs", json={"data": {"root": 0, "path": "colors"}, "config": [1]})
    assert r.status_code == 400 and r.json()["field"] == "config" and "an object" in r.json()["error"]
    r = c.get("/api/jobs/no-such-job")
    assert r.status_code == 404 and "no training job named 'no-such-job'" in r.json()["error"]


def test_bad_data_gets_the_clis_messages_beside_the_data_field(studio, data_root):
    import shutil

    c, _ = studio
    one = data_root / "one"
    shutil.copytree(data_root / "colors" / "red", one / "red")
    (data_root / "empty").mkdir()
    corrupt = data_root / "corrupt"
    shutil.copytree(data_root / "colors", corrupt)
    (corrupt / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    for path, words in (
        ("one", "class"),
        ("empty", "image"),
        ("corrupt", "broken.png"),
        ("../..", "inside the data root"),
    ):
        r = _train(c, path=path, epochs=1)
        assert r.status_code in (400, 403) and r.json()["field"] == "data", (path, r.text)
        assert words in r.json()["error"], (path, r.json()["error"])
    # skipping bad images is the user's choice, as on the CLI
    from visiontune.data.inspect import inspect

    assert any("broken.png" in p["message"] for p in inspect(corrupt)["problems"])


def test_a_second_click_on_train_starts_no_second_job(studio, monkeypatch):
    import visiontune.jobs.runner as runner
    from visiontune.jobs.api import default_store

    started = []
    monkeypatch.setattr(runner, "launch", lambda store, name, **kw: started.append(name))
    c, _ = studio
    first = _train(c, submission="s-1", epochs=1, image_size=32)
    again = _train(c, submission="s-1", epochs=1, image_size=32)
    assert first.status_code == again.status_code == 200
    assert again.json() == {"job": first.json()["job"], "repeated": True}
    assert started == [first.json()["job"]] and len(default_store().list_jobs()) == 1
    # two requests at once (the second arrives while the first still checks the data): still one job
    from concurrent.futures import ThreadPoolExecutor

    import visiontune.studio.forms as studio_forms

    slow = studio_forms.problems_for_training
    monkeypatch.setattr(studio_forms, "problems_for_training", lambda *a: (time.sleep(0.5), slow(*a))[1])
    with ThreadPoolExecutor(2) as pool:
        both = list(pool.map(lambda _: _train(c, submission="s-2", epochs=1, image_size=32), range(2)))
    assert [r.status_code for r in both] == [200, 200] and both[0].json()["job"] == both[1].json()["job"]
    assert sorted("repeated" in r.json() for r in both) == [False, True]
    assert len(started) == 2 and len(default_store().list_jobs()) == 2
    # a refused submission may be corrected and sent again with the same id
    assert _train(c, submission="s-3", epochs=0).status_code == 400
    assert _train(c, submission="s-3", epochs=1, image_size=32).status_code == 200 and len(started) == 3
    job = default_store().get_job(first.json()["job"])
    assert job.spec["config"]["data"].endswith("colors") and job.spec["config"]["epochs"] == 1
    from visiontune.paths import home

    assert job.output_dir.startswith(str(home() / "runs"))  # the studio's runs live in the visiontune home


def test_deploying_a_job_without_a_model_says_why(studio, tmp_path):
    from visiontune.jobs.api import default_store

    c, _ = studio
    store = default_store()
    store.create_job("broken", "builtin", {"config": {}}, {}, str(tmp_path / "broken"))
    store.finish("broken", "Failed", reason="ValueError: the data fell over")
    r = c.post("/api/endpoints", json={"job": "broken"})
    assert r.status_code == 400
    assert "broken is Failed (ValueError: the data fell over)" in r.json()["error"]
    r = c.post("/api/endpoints", json={"pretrained": "no_such_model_xyz"})
    assert r.status_code == 404 and "unknown model" in r.json()["error"]
    assert c.post("/api/endpoints", json={}).status_code == 400
    assert c.post("/api/endpoints/nothing/try", content=b"x").status_code == 404  # no endpoint of that name


def test_models_options_and_pages(studio):
    c, _ = studio
    models = c.get("/api/models").json()
    mobile = next(m for m in models if m["name"] == "mobilenet_v2")
    assert mobile["offline"] and mobile["imagenet_top1"] == 71.878 and "segmentation" in mobile["tasks"]
    assert any(not m["offline"] for m in models)  # download-only entries are listed, marked as such
    options = {o["name"]: o for o in c.get("/api/train/options").json()}
    assert options["epochs"]["core"] and options["epochs"]["minimum"] == 1 and options["mode"]["choices"]
    assert "data" not in options and "out" not in options
    for path in ("/models", "/models/mobilenet_v2", "/data", "/train", "/jobs", "/compare?jobs=a,b", "/deploy"):
        r = c.get(path)
        assert r.status_code == 200 and '<nav aria-label="main">' in r.text and "/static/studio.js" in r.text
    assert c.get("/jobs/no-such-job").status_code == 404
    assert c.get("/static/studio.css").status_code == 200
    assert c.get("/static/nope.js").status_code == 404


def test_the_studio_refuses_a_busy_port_and_a_remote_bind_without_the_flag(tmp_path):
    from visiontune.errors import ConfigError
    from visiontune.studio import serve

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} is already in use"):
            serve(port=port, data_roots=[tmp_path])
    with pytest.raises(ConfigError, match="--allow-remote"):
        serve(port=PORT, host="0.0.0.0", data_roots=[tmp_path])
    with pytest.raises(ConfigError, match="not a folder"):
        serve(port=0, data_roots=[tmp_path / "missing"])


def _tune(c, **body):
    doc = {
        "data": {"root": 0, "path": "colors"},
        "base": {"epochs": 1, "image_size": 32},
        "ranges": {"learning_rate": {"type": "continuous", "min": 1e-4, "max": 1e-2, "scaling": "Logarithmic"}},
        "max_jobs": 2,
        **body,
    }
    return c.post("/api/tune", json=doc)


@pytest.mark.parametrize(
    "body,field,words",
    [
        (
            {"ranges": {"learning_rate": {"type": "continuous", "min": 0, "max": 1e-2, "scaling": "Logarithmic"}}},
            "range-learning_rate",
            "Logarithmic scaling needs a range above 0",
        ),
        ({"ranges": {"dropout": {"type": "continuous", "min": "a", "max": 0.5}}}, "range-dropout", "must be a number"),
        ({"ranges": {}}, None, "at least one hyperparameter range"),
        ({"name": "bad name!"}, "name", "letters, digits"),
        ({"max_jobs": 0}, "max_jobs", "must be 1 or more"),
        ({"base": {"epochs": 0}}, "epochs", "must be 1 or more"),
        ({"data": None}, "data", "choose a data folder"),
    ],
)
def test_bad_tuning_settings_are_named_beside_their_field(studio, body, field, words, monkeypatch):
    import visiontune.tune.tuner as tuner

    monkeypatch.setattr(tuner, "launch", lambda config: pytest.fail("a bad tuning job was started"))
    c, _ = studio
    r = _tune(c, **body)
    assert r.status_code == 400, r.text
    assert words in r.json()["error"] and r.json()["field"] == field, r.json()


def test_tuning_options_offer_ranges_with_log_scales(studio):
    c, _ = studio
    opts = c.get("/api/tune/options").json()
    assert {"Bayesian", "Random", "Grid", "Hyperband"} <= set(opts["strategies"])
    lr = next(r for r in opts["ranges"] if r["name"] == "learning_rate")
    assert lr["log"] and lr["type"] == "continuous"
    assert any(r["type"] == "categorical" and "crop" in r["values"] for r in opts["ranges"])
    assert c.get("/api/tune").json() == []
    assert c.get("/tune").status_code == 200 and c.get("/tune/none").status_code == 404


def test_labeling_jobs_are_listed_and_their_labels_train(studio, data_root):
    """A labeling job's answers -> Export and train -> manifests the Train page (and `train`) accept."""
    c, _ = studio
    labeling_job(data_root, 24)
    [row] = c.get("/api/label").json()
    assert row["job"] == "colours" and row["answers"] == 24 and row["images"] == 24 and row["workers"] == ["ann"]
    r = c.post("/api/label/colours/export")
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["train_images"] + out["validation_images"] == 24
    report = c.post("/api/data/inspect", json={"root": out["root"], "path": out["path"]}).json()
    assert report["ok"] and report["classes"] == ["blue", "green", "red"], report["problems"]
    assert set(report["totals"]) == {"train", "validation"}
    assert c.post("/api/label/nope/export").status_code == 404
    assert c.get("/label").status_code == 200


def test_the_train_form_names_every_bad_field_at_once_and_starts_nothing(studio, monkeypatch):
    """Issue 33 item 13: every field checked before anything starts (an unknown model, a model without offline
    weights, bad values, bad data), each error beside its field, all in one answer; no job recorded."""
    import visiontune.jobs.runner as runner
    from visiontune.jobs.api import default_store

    monkeypatch.setattr(runner, "launch", lambda *a, **kw: pytest.fail("a job bound to fail was started"))
    c, _ = studio
    r = c.post(
        "/api/jobs",
        json={
            "data": {"root": 0, "path": "no-such-folder"},
            "config": {
                "epochs": 0,
                "dropout": 1.5,
                "model": "no_such_model_xyz",
                "mode": "everything",
                "image_size": 8,
                "what": 1,
            },
        },
    )
    assert r.status_code == 400, r.text
    body = r.json()
    by_field = {e["field"]: e["error"] for e in body["fields"]}
    assert set(by_field) == {"data", "epochs", "dropout", "model", "mode", "image_size", "what"}, by_field
    assert body["field"] == body["fields"][0]["field"] == "data"  # the one-error clients still get the first
    assert "does not exist" in by_field["data"] and "unknown model 'no_such_model_xyz'" in by_field["model"]
    assert "must be 1 or more" in by_field["epochs"] and "[0, 1)" in by_field["dropout"]
    assert all(e["error"] in body["error"] for e in body["fields"])
    # a model whose weights are not on this machine: refused before a job could fail on the download
    hub = next(m["name"] for m in c.get("/api/models").json() if not m["offline"])
    r = _train(c, model=hub, epochs=1, image_size=32)
    assert r.status_code == 400 and r.json()["field"] == "model", r.text
    assert "no pretrained weights on this machine" in r.json()["error"]
    # values fine alone but not together, next to the data's own problems
    r = _train(c, path="colors", valid_fraction=0.6, test_fraction=0.5)
    assert r.status_code == 400 and [e["field"] for e in r.json()["fields"]] == ["test_fraction"], r.text
    assert default_store().list_jobs() == []


def test_a_stopped_job_resumes_from_its_checkpoint_as_a_new_job(studio, data_root, tmp_path, monkeypatch):
    import visiontune.jobs.runner as runner
    from visiontune.jobs.api import default_store
    from visiontune.train.config import TrainConfig

    started = []
    monkeypatch.setattr(runner, "launch", lambda store, name, **kw: started.append(name))
    c, _ = studio
    store = default_store()
    out = tmp_path / "run"
    out.mkdir()
    cfg = TrainConfig(data=str(data_root / "colors"), out=str(out), epochs=3, image_size=32)
    store.create_job("halted", "builtin", {"config": cfg.to_dict()}, {}, str(out))
    store.finish("halted", "Stopped", reason="stopped on request")
    detail = c.get("/api/jobs/halted").json()
    assert detail["resumable"] is False and detail["partial_model"] is False
    r = c.post("/api/jobs/halted/resume", json={})
    assert r.status_code == 400 and "no checkpoint to resume from" in r.json()["error"]
    (out / "checkpoint.pt").write_bytes(b"a checkpoint")
    assert c.get("/api/jobs/halted").json()["resumable"] is True
    (out / "partial").mkdir()  # the engine's model of its last finished epoch (train/loop.py's PARTIAL)
    (out / "partial" / "model.tar.gz").write_bytes(b"a partial model")
    detail = c.get("/api/jobs/halted").json()
    assert detail["partial_model"] is True and detail["partial_file"] in detail["files"]
    assert c.get(f"/api/jobs/halted/files/{detail['partial_file']}").content == b"a partial model"
    r = c.post("/api/jobs/halted/resume", json={"submission": "r-1"})
    assert r.status_code == 200, r.text
    again = c.post("/api/jobs/halted/resume", json={"submission": "r-1"})  # a double click: one job
    assert again.json()["job"] == r.json()["job"] and started == [r.json()["job"]]
    job = store.get_job(r.json()["job"])
    assert job.spec["config"]["resume"] is True and job.output_dir == str(out) and job.spec["config"]["epochs"] == 3
    store.create_job("ok", "builtin", {"config": cfg.to_dict()}, {}, str(tmp_path / "ok"))
    store.finish("ok", "Completed")
    r = c.post("/api/jobs/ok/resume", json={})
    assert r.status_code == 400 and "only a Stopped run resumes" in r.json()["error"]


def test_deploying_a_job_that_has_an_endpoint_asks_first(studio, tmp_path, monkeypatch):
    import visiontune.serve.endpoints as endpoints
    from visiontune.jobs.api import default_store

    c, settings = studio
    out = tmp_path / "done"
    out.mkdir()
    (out / "config.json").write_text("{}")
    store = default_store()
    store.create_job("done", "builtin", {"config": {}}, {}, str(out))
    store.finish("done", "Completed")
    running = [
        endpoints.Endpoint(
            name="done-ep", model=str(out), port=1, pid=1, url="http://127.0.0.1:1", started_at=0.0, job="done"
        )
    ]
    started = []
    monkeypatch.setattr(endpoints, "list_endpoints", lambda include_stopped=False: running)

    def start(model, job=None, name=None):
        started.append(job)
        return endpoints.Endpoint(
            name="done-2", model=str(model), port=2, pid=2, url="http://127.0.0.1:2", started_at=0.0, job=job
        )

    monkeypatch.setattr(endpoints, "start", start)
    r = c.post("/api/endpoints", json={"job": "done"})
    assert r.status_code == 409 and "already has an endpoint: done-ep (http://127.0.0.1:1)" in r.json()["error"]
    assert started == []
    r = c.post("/api/endpoints", json={"job": "done", "again": True})
    assert r.status_code == 200 and r.json()["name"] == "done-2" and started == ["done"]
    assert settings.deployed == {"done-2"}


def test_stopping_the_studio_says_which_endpoints_keep_running(monkeypatch):
    import visiontune.serve.endpoints as endpoints
    from visiontune.studio import on_exit

    running = {
        n: endpoints.Endpoint(name=n, model="m", port=i, pid=i, url=f"http://127.0.0.1:{i}", started_at=0.0)
        for i, n in enumerate(("mine", "cli-made"), 1)
    }
    monkeypatch.setattr(endpoints, "list_endpoints", lambda include_stopped=False: list(running.values()))
    monkeypatch.setattr(endpoints, "stop", lambda name, wait_s=15.0: running.pop(name))
    said: list[str] = []
    assert on_exit({"mine"}, False, said.append) == ["mine", "cli-made"]
    assert "mine http://127.0.0.1:1" in said[0] and "cli-made" in said[0] and "--stop-endpoints" in said[0]
    said.clear()
    assert on_exit({"mine"}, True, said.append) == ["cli-made"]  # only what this studio deployed
    assert said[0] == "stopped endpoint mine" and "cli-made" in said[1] and "mine" not in said[1]
    said.clear()
    running.clear()
    assert on_exit(set(), True, said.append) == [] and said == []


def test_the_cli_passes_stop_endpoints(monkeypatch):
    from click.testing import CliRunner

    import visiontune.studio as studio_pkg
    from visiontune.cli.studio import studio_cmd

    seen = {}
    monkeypatch.setattr(studio_pkg, "serve", lambda **kw: seen.update(kw))
    assert CliRunner().invoke(studio_cmd, ["--stop-endpoints", "--port", "9999"]).exit_code == 0
    assert seen["stop_endpoints"] is True and seen["port"] == 9999
    assert "--stop-endpoints" in CliRunner().invoke(studio_cmd, ["--help"]).output


def test_the_eta_never_grows_within_an_epoch():
    from visiontune.studio.views import eta

    start = 1000.0
    assert eta(start, [], 10, start + 50) is None  # nothing to go on before the first epoch ends
    ends = [start + 30, start + 40, start + 50]  # a slow first epoch (caches), then 10 s each
    seen = [eta(start, ends, 10, start + 50 + t) for t in range(0, 60, 2)]
    assert all(b <= a for a, b in zip(seen, seen[1:])), seen
    assert seen[0] < 7 * 30 and seen[-1] >= 6 * 10 * 0.5  # smoothed towards the recent epochs; floored
    assert eta(start, [start + 10] * 10, 10, start + 99) == 0.0
    assert eta(start, [start + 10], 10, start + 10, done=8) == 20.0  # a resumed run: 2 epochs left, not 9


def test_the_job_status_carries_the_countdown(studio, tmp_path):
    from visiontune.jobs.api import default_store
    from visiontune.studio.views import status

    store = default_store()
    store.create_job("running", "builtin", {"config": {"epochs": 4}}, {}, str(tmp_path / "running"))
    assert store.started("running")
    job = store.get_job("running")
    points = {"val_acc": [(1, 0.5, job.started_at + 10), (2, 0.6, job.started_at + 20)]}
    first, later = (status(job, points, now=job.started_at + t) for t in (21, 25))
    assert first["done"] == 2 and first["epochs"] == 4 and first["eta"] == 19.0 and later["eta"] == 15.0
    assert status(job, {}, now=job.started_at + 5)["eta"] is None


def test_a_pages_arguments_reach_its_script_intact(studio):
    """The shell's data-args holds JSON (double quotes inside): the attribute must keep it whole, as the
    browser's dataset hands it to studio.js (a name with quotes and markup stays text)."""
    import html
    import json
    import re

    c, _ = studio
    for path, args in (("/models/mobilenet_v2", {"name": "mobilenet_v2"}), ("/models/a'b\"<c>", {"name": "a'b\"<c>"})):
        page = c.get(path).text
        found = re.search(r"data-args='([^']*)'", page)
        assert found, page[:400]
        assert json.loads(html.unescape(found.group(1))) == args
