"""The allowed values of settings that several modules check, in one light module (no torch, no numpy):
the CLI builds its options from these while it starts, and the modules that use a setting import it from here.

* ``PRECISIONS`` / ``INFERENCE_PRECISION`` / ``DEVICES``: :mod:`visiontune.runtime`'s names.
* ``AUGMENTATIONS``: :mod:`visiontune.data.transforms`' policies; ``ON_BAD_IMAGE``: what a data source does
  with an unreadable image.
* ``BOUNDS``: the one table of numeric bounds (``image_size``...): ``TrainConfig``, the CLI, ``Preprocessing``
  and the auto-labeler check against it, and ``train.config.form_fields()`` gives it to forms.
"""

from __future__ import annotations

PRECISIONS = ("auto", "fp32", "tf32", "bf16", "fp16")
#: the one default of everything that answers with a saved model (predict, evaluate, batch transform, serve,
#: load_model), so the same image gets the same answer from each; head-mode training reports its test metrics
#: the same way (the head in float32 on the cached bf16 features).  ``fp32`` gives the float32 network's answers.
INFERENCE_PRECISION = "auto"
DEVICES = ("auto", "cpu", "cuda", "mps")
AUGMENTATIONS = ("none", "crop", "crop_color", "crop_color_transform")
ON_BAD_IMAGE = ("error", "skip")

#: name -> (smallest, largest) allowed; None: no bound on that side
BOUNDS: dict[str, tuple[int | None, int | None]] = {
    "image_size": (16, 2048),  # pixels, the side of the square the model sees
}


#: what a bounded value counts, for messages
UNITS = {"image_size": "pixels"}


def range_text(name: str) -> str:
    """``from 16 to 2048 pixels``: the allowed range of ``name``, for messages."""
    low, high = BOUNDS[name]
    unit = f" {UNITS[name]}" if name in UNITS else ""
    if low is not None and high is not None:
        return f"from {low} to {high}{unit}"
    if low is not None:
        return f"{low}{unit} or more"
    return f"{high}{unit} or less"


def out_of_bounds(name: str, value) -> str | None:
    """Why ``value`` is not allowed for ``name`` (a message naming the field and the allowed range), or None."""
    low, high = BOUNDS[name]
    try:
        whole = not isinstance(value, bool) and float(value) == int(value)
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole:
        return f"{name}={value!r}: give a whole number {range_text(name)}"
    if (low is not None and int(value) < low) or (high is not None and int(value) > high):
        return f"{name}={value}: choose a value {range_text(name)}"
    return None
