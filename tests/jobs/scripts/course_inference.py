"""The course projects' inference.py (issue 27): a whole pickled model, input_fn with a default content type,
predict_fn answering the model's (1, C) output, no output_fn."""

import io
import os

import torch
from PIL import Image
from torchvision import transforms


def model_fn(model_dir):
    model = torch.load(os.path.join(model_dir, "model.pt"), map_location="cpu")
    model.eval()
    return model


def input_fn(request_body, content_type="image/jpeg"):
    img = Image.open(io.BytesIO(request_body)).convert("RGB")
    return transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor()])(img).unsqueeze(0)


def predict_fn(input_object, model):
    with torch.no_grad():
        return model(input_object)
