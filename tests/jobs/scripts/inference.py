"""The seed-style handler: loads model.pth saved by hpo.py, answers image bytes with probabilities."""

import io
import json
import os

import torch
from PIL import Image
from torchvision import transforms

from hpo import net


def model_fn(model_dir):
    model = net()
    model.load_state_dict(torch.load(os.path.join(model_dir, "model.pth"), map_location="cpu"))
    return model.eval()


def input_fn(request_body, content_type):
    if content_type in ("image/jpeg", "image/png", "application/x-image"):
        img = Image.open(io.BytesIO(request_body)).convert("RGB")
        return transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor()])(img).unsqueeze(0)
    raise ValueError(f"unsupported content type {content_type}")


def predict_fn(input_object, model):
    with torch.no_grad():
        return model(input_object).softmax(1)


def output_fn(prediction, accept):
    return json.dumps(prediction.tolist()), "application/json"
