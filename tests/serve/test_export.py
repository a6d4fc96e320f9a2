"""Export: ONNX and torch.export programs match the original, carry their labels, and the ONNX runtime
serves the same answers."""

import json

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

import visiontune as vt
from visiontune.serve.app import ServerSettings, create_app
from visiontune.serve.export import export


@pytest.fixture(scope="module")
def exported(model_dir):
    return export(model_dir, "onnx", check_images=[p for p in sorted(model_dir.parent.glob("d/test/*/*.png"))])


def test_onnx_parity_on_real_images(exported):
    assert exported.path.name == "model.onnx" and exported.images_checked == 12
    assert exported.max_abs_diff <= 1e-4


def test_onnx_file_says_what_its_outputs_mean(exported, model_dir):
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(exported.path)).metadata_props}
    assert json.loads(meta["visiontune.classes"]) == ["blue", "green", "red"]
    assert json.loads(meta["visiontune.preprocessing"])["image_size"] == 32


@pytest.mark.parametrize("fmt", ["pt2", "onnx"])
def test_export_parity_and_no_deprecation_warning(model_dir, tmp_path, fmt):
    """Regression (issue 14.10): the export path warned that TorchScript is deprecated."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        warnings.simplefilter("error", FutureWarning)
        r = export(model_dir, fmt, out=tmp_path / f"m.{fmt}")
    assert r.max_abs_diff <= 1e-4 and (tmp_path / f"m.{fmt}").exists()


def test_export_writes_beside_the_input_and_torchscript_is_explained(model_dir, tmp_path):
    """Regression (issue 14.10): exporting a model.tar.gz wrote into a hidden cache folder."""
    import shutil

    from visiontune.errors import ConfigError

    tar = shutil.copy(model_dir / "model.tar.gz", tmp_path / "model.tar.gz")
    r = export(tar, "onnx")
    assert r.path == tmp_path / "model.onnx" and r.path.exists()
    with pytest.raises(ConfigError, match="TorchScript is deprecated.*pt2"):
        export(model_dir, "torchscript")


def test_onnx_runtime_serves_the_same_answers(exported, model_dir, png_bytes):
    answers = {}
    for runtime in ("torch", "onnx"):
        app = create_app(ServerSettings(models={"m": str(model_dir)}, runtime=runtime, precision="fp32"))
        with TestClient(app) as c:
            app.state.loader.join(60)
            r = c.post("/invocations", content=png_bytes, headers={"Content-Type": "image/png"})
            assert r.status_code == 200, r.text
            answers[runtime] = np.array(r.json())
    assert np.abs(answers["torch"] - answers["onnx"]).max() <= 1e-4
    direct = vt.load_model(model_dir, precision="fp32").predict(png_bytes, top_k=3)
    assert direct.probability == pytest.approx(answers["onnx"].max(), abs=1e-4)


def test_onnx_runtime_without_export_says_what_to_do(tmp_path, model_dir):
    import shutil

    from visiontune.errors import ArtifactError
    from visiontune.serve.handler import Handler

    d = tmp_path / "m"
    shutil.copytree(model_dir, d)
    (d / "model.onnx").unlink(missing_ok=True)
    with pytest.raises(ArtifactError, match="visiontune export"):
        Handler(d, runtime="onnx").load()
    assert json.loads((d / "labels.json").read_text()) == ["blue", "green", "red"]


def test_reduced_precision_serving_stays_close_to_fp32(model_dir, png_bytes):
    """bf16 (what --precision auto picks on CPUs with native bf16) answers within a loose bound of fp32."""
    exact = vt.load_model(model_dir, precision="fp32")
    fast = vt.load_model(model_dir, precision="bf16")
    assert "bfloat16" in fast.how and "bfloat16" not in exact.how
    a, b = exact.predict_proba([png_bytes]), fast.predict_proba([png_bytes])
    assert a.shape == b.shape == (1, 3)
    assert np.allclose(a.sum(1), 1, atol=1e-5) and np.allclose(b.sum(1), 1, atol=1e-3)
    assert np.abs(a - b).max() <= 0.05
    # the trained network is untouched (the input on the model's device: CUDA where there is one)
    assert exact.module(torch.zeros(1, 3, 32, 32, device=exact.device)).dtype == torch.float32


def test_precision_is_checked(model_dir):
    from visiontune.errors import ConfigError
    from visiontune.serve.runtimes import create_runtime

    with pytest.raises(ConfigError, match="precision='fp64': choose one of auto, fp32, tf32, bf16, fp16"):
        vt.load_model(model_dir, precision="fp64")
    with pytest.raises(ConfigError, match="needs runtime 'torch'"):
        create_runtime("onnx", model_dir, precision="bf16")
