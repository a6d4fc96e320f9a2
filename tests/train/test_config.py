"""TrainConfig checks every value where a run is configured (issue 33, item 3): image_size against the one
bounds table (visiontune.choices.BOUNDS) that the CLI, forms (form_fields), Preprocessing and the auto-labeler
read too."""

from __future__ import annotations

import pytest

from tests.conftest import cli_run
from visiontune.choices import BOUNDS, range_text
from visiontune.errors import ConfigError
from visiontune.train.config import TrainConfig, form_fields


@pytest.mark.parametrize("size", [8, -5, 5000, 0, 15, 2049])
def test_train_config_refuses_an_image_size_out_of_bounds(size):
    with pytest.raises(ConfigError) as e:
        TrainConfig(data="somewhere", image_size=size)
    assert str(e.value) == f"image_size={size}: choose a value from 16 to 2048 pixels"


@pytest.mark.parametrize("size", [None, 16, 224, 2048])
def test_train_config_takes_an_image_size_in_bounds(size):
    assert TrainConfig(data="somewhere", image_size=size).image_size == size


def test_form_fields_carry_the_bounds():
    rows = {r["name"]: r for r in form_fields()}
    assert (rows["image_size"]["minimum"], rows["image_size"]["maximum"]) == BOUNDS["image_size"] == (16, 2048)
    assert rows["epochs"]["minimum"] == 1 and rows["epochs"]["maximum"] is None
    assert all("maximum" in r for r in rows.values())


def test_the_cli_refuses_it_before_any_job_is_recorded(tmp_path):
    from visiontune.jobs.api import default_store

    res = cli_run("train", "--data", tmp_path, "--image-size", "8", ok=False)
    assert res.exit_code == 2 and "--image-size" in res.output and "16<=x<=2048" in res.output
    assert default_store().list_jobs() == []


def test_preprocessing_and_the_auto_labeler_use_the_same_bounds():
    from visiontune.label.active import AutoLabelSettings
    from visiontune.zoo.weights import Preprocessing, WeightsSpec

    with pytest.raises(ConfigError, match="image_size=8: choose a value from 16 to 2048 pixels"):
        Preprocessing(image_size=8)
    with pytest.raises(ConfigError, match="image_size=0: choose a value"):  # 0 is no longer read as "default"
        Preprocessing.from_weights(WeightsSpec("hub", "hub"), 0)
    assert Preprocessing.from_weights(None, None).image_size == 224
    assert AutoLabelSettings(image_size=1536).image_size == 1536  # 1024 was the auto-labeler's own limit
    with pytest.raises(ConfigError, match=f"auto-label image_size=4096: give {range_text('image_size')}"):
        AutoLabelSettings(image_size=4096)
