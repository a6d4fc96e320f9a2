"""Image embeddings ("feature vectorization", JumpStart's third vision family) and nearest images.

    vt.embed("mobilenet_v2", "photos/", out="emb.npy")      # a zoo model's pretrained backbone (cached)
    vt.embed("runs/dogs", "photos/", out="emb.parquet")     # a trained model's backbone
    vt.similar("runs/dogs", "query.jpg", "photos/", k=10)   # the nearest images, most similar first

A zoo model name embeds through the feature cache (the pass the data doctor and head-mode training make, read
back on the next call); a trained model folder or ``model.tar.gz`` embeds with its own backbone, as its
endpoint answers ``Accept: application/x-embedding``.  Nearest images: cosine similarity, faiss' exact
inner-product search."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from visiontune.errors import ConfigError, DataError, option


@dataclass
class Embeddings:
    """``vectors`` ``(N, D)`` float32, one row per image of ``sources``; the images that could not be read
    in ``skipped`` (source, why); ``path``: where they were written."""

    sources: list[str]
    vectors: np.ndarray
    skipped: list[tuple[str, str]] = field(default_factory=list)
    path: Path | None = None


def _is_model_path(model: str) -> bool:
    p = Path(str(model)).expanduser()
    return p.is_dir() or p.name.endswith(".tar.gz")


def embed(
    model: str | Path,
    data: str | Path,
    out: str | Path | None = None,
    *,
    image_size: int | None = None,
    batch_size: int = 64,
    device: str = "auto",
) -> Embeddings:
    """The embedding of every image ``data`` names (a folder, a file, a manifest, a URL); ``out``: ``.npy``
    (with ``<out>.sources.json`` beside it) or ``.parquet`` (columns ``source``, ``embedding``)."""
    from visiontune.predictions import list_inputs

    if out is not None and Path(out).suffix not in (".npy", ".parquet"):
        raise ConfigError(f"{option('out', out)}: write embeddings to a .npy or a .parquet file")
    sources = list_inputs(data)
    if not sources:
        raise DataError(f"{data}: no images")
    if _is_model_path(str(model)):
        result = _with_trained(str(model), sources, batch_size, device)
    else:
        result = _with_zoo(str(model), sources, image_size, device)
    if out is not None:
        result.path = _write(result, Path(out))
    return result


def _with_zoo(model: str, sources: list[str], image_size: int | None, device: str) -> Embeddings:
    from visiontune.data.dataset import Sample
    from visiontune.probe import image_features

    x, ok = image_features([Sample(s, 0) for s in sources], model, image_size, device)
    kept = [s for s, good in zip(sources, ok) if good]
    skipped = [(s, "could not be decoded") for s, good in zip(sources, ok) if not good]
    return Embeddings(kept, x[ok].astype(np.float32), skipped)


def _with_trained(model: str, sources: list[str], batch_size: int, device: str) -> Embeddings:
    from visiontune.artifact import load_model
    from visiontune.data.dataset import read_bytes
    from visiontune.errors import BadImageError

    m = load_model(model, device=device)
    kept, rows, skipped = [], [], []
    for start in range(0, len(sources), batch_size):
        pixels = []
        for src in sources[start : start + batch_size]:
            try:
                pixels.append(m.pixels(read_bytes(src), name=src))
                kept.append(src)
            except (BadImageError, OSError) as exc:
                skipped.append((src, getattr(exc, "reason", str(exc))))
        if pixels:
            rows.append(m.embed_pixels(np.stack(pixels)).numpy())
    if not rows:
        raise DataError(f"no readable image among {len(sources)}")
    return Embeddings(kept, np.concatenate(rows).astype(np.float32), skipped)


def _write(result: Embeddings, out: Path) -> Path:
    from visiontune.paths import atomic_write_text
    from visiontune.writes import replacing

    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        import pandas as pd

        frame = pd.DataFrame({"source": result.sources, "embedding": list(result.vectors)})
        with replacing(out) as tmp:
            frame.to_parquet(tmp, index=False)
        return out
    with replacing(out) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, result.vectors)
    atomic_write_text(out.with_name(out.name + ".sources.json"), json.dumps(result.sources, indent=0))
    return out


def similar(model: str | Path, image: str | Path, data: str | Path, k: int = 10, **options) -> list[dict]:
    """The ``k`` images of ``data`` nearest to ``image`` by the cosine similarity of their embeddings (the
    same model for both), most similar first: ``{"source", "similarity"}``."""
    import faiss

    if k < 1:
        raise ConfigError(f"{option('k', k)}: 1 or more")
    pool = embed(model, data, **options)
    query = embed(model, image, **options)
    if not len(query.vectors):
        raise DataError(f"{image}: could not be read")
    z = pool.vectors / np.maximum(np.linalg.norm(pool.vectors, axis=1, keepdims=True), 1e-12)
    q = query.vectors[:1] / max(float(np.linalg.norm(query.vectors[0])), 1e-12)
    index = faiss.IndexFlatIP(z.shape[1])
    index.add(np.ascontiguousarray(z, dtype=np.float32))
    sims, idx = index.search(np.ascontiguousarray(q, dtype=np.float32), min(k, len(z)))
    return [{"source": pool.sources[int(i)], "similarity": round(float(s), 5)} for s, i in zip(sims[0], idx[0])]
