"""The offline weights really are ImageNet weights: chelsea.png (a tabby cat) -> class 285 in the top 3."""

import numpy as np
import pytest
import torch
from PIL import Image

from visiontune.data.decode import resize_center_crop
from visiontune.zoo import create_model, default_preprocessing, imagenet_labels


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet_lite0"])
def test_chelsea_is_an_egyptian_cat(name):
    skimage_data = pytest.importorskip("skimage.data")
    model, spec, w = create_model(name)  # keeps the pretrained 1000-class head
    prep = default_preprocessing(spec, w, None)
    img = Image.fromarray(skimage_data.chelsea())
    size = int(prep.image_size / 0.875)
    img = resize_center_crop(img, size, prep.interpolation)
    off = (size - prep.image_size) // 2
    img = img.crop((off, off, off + prep.image_size, off + prep.image_size))
    x = torch.from_numpy(np.array(img)).permute(2, 0, 1).float()[None] / 255
    x = (x - torch.tensor(prep.mean).view(1, 3, 1, 1)) / torch.tensor(prep.std).view(1, 3, 1, 1)
    with torch.no_grad():
        top3 = model.eval()(x).topk(3).indices[0].tolist()
    assert 285 in top3, [imagenet_labels()[i] for i in top3]
    assert imagenet_labels()[285] == "Egyptian cat"
