"""Batch transform: input order, one .out per image, bad images reported, resume."""

import json
import shutil

import pytest

from tests.conftest import COLORS, draw_image
from visiontune.serve.batch import batch_predict


def _folder(tmp_path, n=5):
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    for i in range(n):
        draw_image(COLORS["green"], 50 + i).save(d / ("sub" if i % 2 else "") / f"img{i}.png")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    return d


def test_folder_outputs_and_resume(model_dir, tmp_path):
    d = _folder(tmp_path)
    r = batch_predict(model_dir, d, tmp_path / "out", batch_size=2)
    assert (r.written, r.skipped_done, r.errors) == (6, 0, 1)
    rec = json.loads((tmp_path / "out" / "sub" / "img1.png.out").read_text())
    assert rec["label"] == "green" and len(rec["probabilities"]) == 3
    assert "error" in json.loads((tmp_path / "out" / "broken.jpg.out").read_text())
    (tmp_path / "out" / "img0.png.out").unlink()
    r = batch_predict(model_dir, d, tmp_path / "out")
    assert (r.written, r.skipped_done, r.retried) == (2, 4, 1)  # the missing one, and the failed one again


def test_a_rerun_predicts_changed_inputs_again_and_lists_records_without_input(model_dir, tmp_path):
    """Regression: a replaced image kept its old record, and a removed one's record was not mentioned."""
    import os

    from tests.conftest import cli_run

    d = _folder(tmp_path)
    out = tmp_path / "out"
    batch_predict(model_dir, d, out)
    draw_image(COLORS["red"], 7).save(d / "img0.png")  # replaced by another picture
    later = (out / "img0.png.out").stat().st_mtime_ns + 1_000_000
    os.utime(d / "img0.png", ns=(later, later))  # written after its record, whatever the clock's resolution
    (d / "img2.png").unlink()
    r = batch_predict(model_dir, d, out)
    assert (r.changed, r.written, r.retried) == (1, 2, 1) and r.orphans == ["img2.png.out"]  # + broken.jpg
    assert json.loads((out / "img0.png.out").read_text())["label"] == "red"
    assert (out / "img2.png.out").exists()  # kept: the user decides
    res = cli_run("batch-predict", model_dir, d, "--out", out, ok=False)  # broken.jpg: still an error record
    assert res.exit_code == 1 and json.loads(res.output.strip().splitlines()[-1])["errors"] == 1


def test_manifest_in_order_and_resume_after_torn_line(model_dir, tmp_path):
    d = _folder(tmp_path)
    images = sorted(d.rglob("*.png"))
    manifest = tmp_path / "in.manifest"
    manifest.write_text("".join(json.dumps({"source-ref": str(p)}) + "\n" for p in images))
    out = tmp_path / "out"
    r = batch_predict(model_dir, manifest, out, batch_size=2)
    lines = (out / "in.manifest.out").read_text().splitlines()
    assert [json.loads(x)["source"] for x in lines] == [str(p) for p in images]
    full = (out / "in.manifest.out").read_bytes()
    (out / "in.manifest.out").write_bytes(full[: full.index(b"\n", full.index(b"\n") + 1) + 20])  # 2 lines + torn
    r = batch_predict(model_dir, manifest, out)
    assert (r.skipped_done, r.written) == (2, len(images) - 2)
    resumed = [json.loads(x) for x in (out / "in.manifest.out").read_text().splitlines()]
    original = [json.loads(x) for x in full.decode().splitlines()]
    assert [r["source"] for r in resumed] == [r["source"] for r in original]
    assert [r["label"] for r in resumed] == [r["label"] for r in original]
    for a, b in zip(resumed, original):  # another batch composition: same answers to float precision
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-5)
    shutil.rmtree(out)


def test_fsspec_folder_url(model_dir, tmp_path):
    """A remote folder (here fsspec's in-memory file system, the same code path as s3://)."""
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    for i, p in enumerate(sorted(_folder(tmp_path).rglob("*.png"))):
        fs.pipe(f"/bucket/imgs/{'sub/' if i % 2 else ''}{p.name}", p.read_bytes())
    r = batch_predict(model_dir, "memory://bucket/imgs/", tmp_path / "out")
    assert (r.written, r.errors) == (5, 0)
    assert json.loads((tmp_path / "out" / "sub" / "img1.png.out").read_text())["label"] == "green"


def test_rerun_with_other_options_or_model_is_refused(model_dir, tmp_path):
    """Regression (issue 14.1): a rerun with --top-k 1 reported everything already done and kept stale files."""
    from visiontune.errors import ConfigError

    d, out = _folder(tmp_path), tmp_path / "out"
    batch_predict(model_dir, d, out, top_k=3)
    with pytest.raises(ConfigError, match=r"top_k: 3 then, 1 now.*overwrite=True"):
        batch_predict(model_dir, d, out, top_k=1)
    other = tmp_path / "other_model"
    shutil.copytree(model_dir, other)
    labels = json.loads((other / "labels.json").read_text())
    (other / "labels.json").write_text(json.dumps([x.upper() for x in labels]))  # another model: another fingerprint
    with pytest.raises(ConfigError, match="model:"):
        batch_predict(other, d, out, top_k=3)
    r = batch_predict(model_dir, d, out, top_k=1, overwrite=True)
    assert (r.written, r.skipped_done) == (6, 0)
    assert len(json.loads((out / "sub" / "img1.png.out").read_text())["top_k"]) == 1


def test_a_fixed_file_is_predicted_on_the_rerun(model_dir, tmp_path):
    """Regression (issue 14.1): a file that failed and was fixed kept its old error on the rerun."""
    d, out = _folder(tmp_path), tmp_path / "out"
    assert batch_predict(model_dir, d, out).errors == 1
    draw_image(COLORS["blue"], 1).save(d / "broken.jpg", "JPEG")
    r = batch_predict(model_dir, d, out)
    assert (r.written, r.retried, r.errors) == (1, 1, 0)
    rec = json.loads((out / "broken.jpg.out").read_text())
    assert "error" not in rec and rec["label"] in ("blue", "green", "red")


def test_manifest_rerun_retries_failed_lines_in_place(model_dir, tmp_path):
    d = _folder(tmp_path)
    images = sorted(d.rglob("*.png")) + [d / "broken.jpg"]
    manifest = tmp_path / "in.manifest"
    manifest.write_text("".join(json.dumps({"source-ref": str(p)}) + "\n" for p in images))
    out = tmp_path / "out"
    assert batch_predict(model_dir, manifest, out).errors == 1
    draw_image(COLORS["red"], 2).save(d / "broken.jpg", "JPEG")
    r = batch_predict(model_dir, manifest, out)
    rows = [json.loads(x) for x in (out / "in.manifest.out").read_text().splitlines()]
    assert (r.retried, r.errors) == (1, 0) and len(rows) == len(images)
    assert rows[-1]["source"] == str(d / "broken.jpg") and "error" not in rows[-1] and "label" in rows[-1]


def test_an_edited_manifest_is_redone_exactly_where_it_changed(model_dir, tmp_path, monkeypatch):
    """Regression (issue 33, item 8): a line inserted at the top left the output misaligned (line 1 held the
    old line 1's image), one image never predicted and another predicted twice; an image replaced by another
    with an older mtime kept its stale prediction."""
    import os

    import visiontune.serve.batch as batch_mod

    d = _folder(tmp_path)
    images = sorted(d.rglob("*.png"))
    manifest = tmp_path / "in.manifest"
    write = lambda paths: manifest.write_text("".join(json.dumps({"source-ref": str(p)}) + "\n" for p in paths))  # noqa: E731
    write(images)
    out = tmp_path / "out"
    batch_predict(model_dir, manifest, out)
    before = {json.loads(x)["source"]: x for x in (out / "in.manifest.out").read_text().splitlines()}

    predicted = []
    rows = batch_mod._rows
    monkeypatch.setattr(batch_mod, "_rows", lambda m, srcs, *a: predicted.extend(srcs) or rows(m, srcs, *a))
    new = tmp_path / "new.png"
    draw_image(COLORS["red"], 99).save(new)
    write([new, *images])  # a line inserted at the top
    r = batch_predict(model_dir, manifest, out)
    assert predicted == [str(new)] and (r.written, r.skipped_done, r.changed) == (1, len(images), 0)
    lines = (out / "in.manifest.out").read_text().splitlines()
    assert [json.loads(x)["source"] for x in lines] == [str(p) for p in [new, *images]]  # aligned
    assert lines[1:] == [before[str(p)] for p in images]  # the other records kept as they were
    assert json.loads(lines[0])["label"] == "red"

    predicted.clear()  # an image replaced by another picture whose file is older than its record
    draw_image(COLORS["red"], 5).save(images[2])
    old = (out / "in.manifest.out").stat().st_mtime_ns - 10**10
    os.utime(images[2], ns=(old, old))
    write([*images[:3], *images[4:], new])  # and a line removed, another moved
    r = batch_predict(model_dir, manifest, out)
    assert predicted == [str(images[2])] and (r.written, r.changed) == (1, 1)
    rows_now = [json.loads(x) for x in (out / "in.manifest.out").read_text().splitlines()]
    assert [x["source"] for x in rows_now] == [str(p) for p in [*images[:3], *images[4:], new]]
    assert rows_now[2]["label"] == "red"
    assert not list(out.glob(".*partial*"))

    predicted.clear()  # the same in a folder: the replaced image is predicted again, only it
    folder_out = tmp_path / "folder-out"
    batch_predict(model_dir, d, folder_out)
    draw_image(COLORS["blue"], 6).save(images[0])
    old = (folder_out / images[0].relative_to(d).with_suffix(".png.out")).stat().st_mtime_ns - 10**10
    os.utime(images[0], ns=(old, old))
    r = batch_predict(model_dir, d, folder_out)
    assert (r.changed, r.written) == (1, 2)  # + broken.jpg, retried
    assert predicted[-2:] == sorted([str(d / "broken.jpg"), str(images[0])])
    assert json.loads((folder_out / (str(images[0].relative_to(d)) + ".out")).read_text())["label"] == "blue"


def test_a_manifest_run_killed_midway_loses_nothing(model_dir, tmp_path, monkeypatch):
    """The output is rebuilt beside the old one: a run killed midway leaves its partial output, which the next
    run reuses (nothing predicted twice), and the finished output replaces the old one."""
    import visiontune.serve.batch as batch_mod

    d = _folder(tmp_path, n=7)
    images = sorted(d.rglob("*.png"))
    manifest = tmp_path / "in.manifest"
    manifest.write_text("".join(json.dumps({"source-ref": str(p)}) + "\n" for p in images))
    out = tmp_path / "out"
    rows = batch_mod._rows

    def killed_after_3(m, srcs, *a):
        for i, row in enumerate(rows(m, srcs, *a)):
            if i == 3:
                raise KeyboardInterrupt
            yield row

    monkeypatch.setattr(batch_mod, "_rows", killed_after_3)
    with pytest.raises(KeyboardInterrupt):
        batch_predict(model_dir, manifest, out, batch_size=2)
    assert len(list(out.glob(".in.manifest.out.partial-*"))) == 1 and not (out / "in.manifest.out").exists()
    predicted = []
    monkeypatch.setattr(batch_mod, "_rows", lambda m, srcs, *a: predicted.extend(srcs) or rows(m, srcs, *a))
    r = batch_predict(model_dir, manifest, out)
    assert (r.skipped_done, r.written) == (3, len(images) - 3) and predicted == [str(p) for p in images[3:]]
    assert [json.loads(x)["source"] for x in (out / "in.manifest.out").read_text().splitlines()] == [
        str(p) for p in images
    ]
    assert not list(out.glob(".*partial*"))
