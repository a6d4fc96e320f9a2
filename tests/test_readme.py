"""The README's first two commands are the whole set-up, and CI runs the second."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_first_two_commands():
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, re.S)
    commands = [ln.strip() for b in blocks for ln in b.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert commands[:2] == ["make demo", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_makefile_targets_exist():
    text = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", text, re.M) and re.search(r"^test:", text, re.M)


def _layouts(root: Path) -> dict[str, Path]:
    """Each layout the README's Data table lists, made from the same tiny images."""
    import json
    import shutil

    from tests.conftest import make_folder_dataset

    folders = make_folder_dataset(root / "folders", per_class=10)
    layouts = {
        "class folders": folders,
        "split folders": make_folder_dataset(root / "splits", per_class=12, split_layout=True),
    }
    classes = sorted(p.name for p in folders.iterdir())
    images = [(img, classes.index(c.name)) for c in sorted(folders.iterdir()) for img in sorted(c.iterdir())]
    manifest = root / "gt" / "output.manifest"
    manifest.parent.mkdir()
    manifest.write_text(
        "".join(
            json.dumps({"source-ref": str(img), "label": k, "label-metadata": {"class-name": classes[k]}}) + "\n"
            for img, k in images
        )
    )
    layouts["augmented manifest"] = manifest
    lst_dir = root / "lst"
    shutil.copytree(folders, lst_dir / "images")
    (lst_dir / "train.lst").write_text(
        "".join(f"{i}\t{k}\timages/{img.parent.name}/{img.name}\n" for i, (img, k) in enumerate(images))
    )
    layouts[".lst"] = lst_dir / "train.lst"
    import visiontune as vt

    vt.split(folders, out=root / "split_files", ratios="0.8,0.2")
    layouts["split files"] = root / "split_files"
    return layouts


def test_python_example_runs_on_every_layout(tmp_path, capsys):
    """Every README Python block that trains, run on each layout the README lists (issue 14.5)."""
    import types

    import visiontune
    from tests.conftest import FAST

    text = (ROOT / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "import visiontune as vt" in b]
    assert blocks
    layouts = _layouts(tmp_path / "data")
    assert set(layouts) == {"class folders", "split folders", "augmented manifest", ".lst", "split files"}
    image = next((tmp_path / "data" / "folders" / "red").iterdir())

    def fast_train(**options):  # the README's options, made quick for a test
        return visiontune.train(**{**options, **{k: v for k, v in FAST.items() if k != "model"}})

    vt = types.SimpleNamespace(**{n: getattr(visiontune, n) for n in visiontune.__all__})
    vt.train = fast_train
    for name, data in layouts.items():
        for block in blocks:
            code = (
                block.replace("import visiontune as vt\n", "")
                .replace("dogImages/", str(data))
                .replace("runs/dogs", str(tmp_path / "runs" / name))
                .replace("some_dog.jpg", str(image))
            )
            exec(compile(code, f"README ({name})", "exec"), {"vt": vt})  # noqa: S102 - the README's own code
    assert capsys.readouterr().out.count("(2, 3)") == len(layouts) * len(blocks)
