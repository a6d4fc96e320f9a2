"""What the data doctor looks for, each from the frozen backbone's features (computed once, cached):

* likely label errors: every image's class probabilities from a linear head that never saw it (k folds), then
  confident learning (cleanlab's ``find_label_issues``), ranked by how little the head believes the label;
* exact and near duplicates: the same content hash; perceptual hashes a few bits apart (re-encoded, resized,
  slightly cropped copies: ImageHash's pHash, faiss' binary index); or cosine similarity of the features at
  or above a threshold (faiss, exact inner-product search over L2-normalised features); within a split and
  across splits; a test image near one in train or validation is a leak;
* outliers: cleanlab's out-of-distribution score on the features (how far an image is from its nearest
  neighbours), lowest first;
* image quality: near-blank, very dark or bright, very blurry (variance of the Laplacian) or tiny images;
* per-class counts and imbalance."""

from __future__ import annotations

import io

import numpy as np

#: flags of image quality (a 128-px greyscale copy): near-blank below this standard deviation of the grey
#: levels, dark / bright beyond these mean levels, blurry below this variance of the Laplacian, tiny below
#: this many pixels on the shorter side and half the dataset's median (28-px Fashion-MNIST is not tiny)
BLANK_STD, DARK_MEAN, BRIGHT_MEAN, BLURRY_LAPLACIAN, TINY_SIDE = 3.0, 20.0, 235.0, 5.0, 32


def label_issues(probs: np.ndarray, y: np.ndarray) -> list[tuple[int, int, float, float]]:
    """Confident learning over out-of-sample probabilities: ``(row, suggested class, its probability, the
    given label's probability)``, the least believed label first."""
    from cleanlab.filter import find_label_issues

    rows = find_label_issues(labels=y, pred_probs=probs, filter_by="both", return_indices_ranked_by="self_confidence")
    out = []
    for i in rows:
        suggested = int(np.argmax(probs[i]))
        out.append((int(i), suggested, float(probs[i, suggested]), float(probs[i, y[i]])))
    return out


def near_pairs(x: np.ndarray, threshold: float, neighbours: int = 5) -> list[tuple[int, int, float]]:
    """``(i, j, cosine similarity)`` with i < j for each pair at or above ``threshold`` among each image's
    ``neighbours`` nearest (faiss, exact search), most similar first."""
    import faiss

    z = np.ascontiguousarray(x, dtype=np.float32)
    z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    index = faiss.IndexFlatIP(z.shape[1])
    index.add(z)
    sims, nbrs = index.search(z, min(neighbours + 1, len(z)))
    pairs: dict[tuple[int, int], float] = {}
    for i in range(len(z)):
        for s, j in zip(sims[i], nbrs[i]):
            if j >= 0 and j != i and s >= threshold:
                key = (min(i, int(j)), max(i, int(j)))
                pairs[key] = max(pairs.get(key, -1.0), float(s))
    return sorted(((i, j, s) for (i, j), s in pairs.items()), key=lambda p: -p[2])


#: perceptual hashes (64-bit pHash) this many bits apart or fewer: the same picture re-encoded, resized or
#: slightly cropped (measured on the tests' photo crops: copies 1-10 bits apart, other crops of one photo mostly 10-30)
PHASH_BITS = 10
#: perceptual hashes are used while pairs within PHASH_BITS are rare (at most this share of the images, or
#: 10 pairs): on small, alike images they collide (Fashion-MNIST: 2,896 pairs among 1,330 images, almost none
#: copies; confirmed by features of cosine 0.9 or more, still 1,963 false pairs among 12,200) and are not used
HASH_PAIRS_SHARE = 0.02


def look(path: str) -> tuple[dict, bytes | None]:
    """One read of an image: its quality (:func:`quality_of`) and its 64-bit perceptual hash (ImageHash's
    pHash, 8 bytes; None when it cannot be read)."""
    import imagehash
    from PIL import Image

    from visiontune.data.dataset import read_bytes

    try:
        with Image.open(io.BytesIO(read_bytes(path))) as im:  # local files, file:// and remote sources alike
            w, h = im.size
            im.draft("L", (128, 128))
            g = im.convert("L")
            g.thumbnail((128, 128))
    except Exception as exc:  # noqa: BLE001 - an unreadable image is a finding, not a crash
        return {"flags": ["unreadable"], "why": str(exc)}, None
    return quality_of(np.asarray(g, dtype=np.float32), (w, h)), np.packbits(imagehash.phash(g).hash.flatten()).tobytes()


def quality_of(a: np.ndarray, size: tuple[int, int]) -> dict:
    """Quality flags (see the constants) of a greyscale copy ``a`` of an image of ``size`` (width, height)."""
    lap = a[1:-1, 1:-1] * -4 + a[:-2, 1:-1] + a[2:, 1:-1] + a[1:-1, :-2] + a[1:-1, 2:] if min(a.shape) > 2 else a
    stats = {"mean": float(a.mean()), "std": float(a.std()), "laplacian_var": float(lap.var()), "size": list(size)}
    flags = []
    if stats["std"] < BLANK_STD:
        flags.append("near-blank")
    elif stats["laplacian_var"] < BLURRY_LAPLACIAN:
        flags.append("blurry")
    if stats["mean"] < DARK_MEAN:
        flags.append("dark")
    if stats["mean"] > BRIGHT_MEAN:
        flags.append("bright")
    return {"flags": flags, **stats}  # "tiny" is judged against the dataset's own sizes (doctor.run)


def hash_pairs(hashes: list[bytes | None], bits: int = PHASH_BITS) -> list[tuple[int, int, int]]:
    """``(i, j, Hamming distance)`` with i < j for every pair of perceptual hashes at most ``bits`` apart
    (faiss' binary index, a range search)."""
    import faiss

    rows = [i for i, h in enumerate(hashes) if h is not None]
    if len(rows) < 2:
        return []
    codes = np.frombuffer(b"".join(hashes[i] for i in rows), dtype=np.uint8).reshape(len(rows), 8)  # type: ignore[misc]
    index = faiss.IndexBinaryFlat(64)
    index.add(codes)
    lims, dist, found = index.range_search(codes, bits + 1)
    out = []
    for a in range(len(rows)):
        for d, b in zip(dist[lims[a] : lims[a + 1]], found[lims[a] : lims[a + 1]]):
            if b > a:
                out.append((rows[a], rows[int(b)], int(d)))
    return sorted(out, key=lambda p: p[2])


class _Neighbours:
    """What cleanlab's outlier score asks of a fitted ``NearestNeighbors``: cosine distances to each image's
    nearest others, by faiss' exact search (sklearn's brute force took 16 s of a 47 s doctor on 12,000)."""

    metric = "cosine"

    def __init__(self, x: np.ndarray, k: int):
        import faiss

        self.n_neighbors = k
        self._x = x  # what cleanlab is handed back: the fitted images, each one's own match left out
        self._z = _unit(x)
        self._index = faiss.IndexFlatIP(self._z.shape[1])
        self._index.add(self._z)

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):  # noqa: N803 - sklearn's names
        k = n_neighbors or self.n_neighbors
        if X is None or X is self._x:  # the fitted images themselves: each one's nearest others, not itself
            sims, idx = self._index.search(self._z, k + 1)
            sims, idx = sims[:, 1:], idx[:, 1:]
        else:
            sims, idx = self._index.search(_unit(X), k)
        return (np.clip(1.0 - sims, 0.0, 2.0), idx) if return_distance else idx


def _unit(x: np.ndarray) -> np.ndarray:
    z = np.ascontiguousarray(x, dtype=np.float32).copy()
    z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    return z


def outlier_scores(x: np.ndarray) -> np.ndarray:
    """cleanlab's out-of-distribution score per image (0-1, lower: farther from its nearest neighbours, by
    cosine distance of the features)."""
    from cleanlab.outlier import OutOfDistribution

    import warnings

    k = max(1, min(10, len(x) - 1))
    x = np.ascontiguousarray(x, dtype=np.float32)
    with warnings.catch_warnings():  # "a KNN estimator has already been fit": ours is, by design
        warnings.filterwarnings("ignore", message="A KNN estimator has previously already been fit")
        return np.asarray(OutOfDistribution({"knn": _Neighbours(x, k), "k": k}).fit_score(features=x, verbose=False))
