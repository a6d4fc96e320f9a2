"""The model zoo: the list the Models page searches and one model's card."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/models")


@router.get("")
def api_models():
    from visiontune.zoo import list_models

    return [s.describe() for s in list_models()]


@router.get("/{name}")
def api_model(name: str):
    from visiontune.zoo import get_model_spec

    return get_model_spec(name).describe()
