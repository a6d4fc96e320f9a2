"""The one path policy of the web apps: everything a browser names (a folder, a file, a manifest) and every
reference inside what it names (a manifest's ``source-ref``, a mask, a ``.lst`` or CSV row) must resolve
inside the allowed roots.  A refusal names what the user gave, never whether something outside exists.

The CLI and the Python API keep reading what their user points them at: only the web apps confine."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from visiontune.errors import ConfigError, PathRefused


NAME_MAX, PATH_MAX = 255, 4000  #: the longest file name and path the file system takes (Linux: 255, 4096)


class Roots:
    """The folders a web app may read (data roots) and write (uploads).  A user's path is a root's index and
    a path relative to it; ``..``, absolute paths, backslashes, NUL, encoded separators and symbolic links
    that lead out are refused."""

    def __init__(self, roots: list[Path], uploads: Path | None = None):
        if uploads is not None:
            uploads.mkdir(parents=True, exist_ok=True)
        seen: set[Path] = set()
        self.roots: list[Path] = []
        for r in [*roots, *([uploads] if uploads is not None else [])]:
            real = Path(os.path.realpath(r))
            if not real.is_dir():
                raise ConfigError(f"--data-root {r}: not a folder")
            if real not in seen:
                seen.add(real)
                self.roots.append(real)
        self._uploads = Path(os.path.realpath(uploads)) if uploads is not None else None

    @property
    def uploads(self) -> Path:
        """The folder uploads go to (the last root)."""
        if self._uploads is None:
            raise PathRefused("this app takes no uploads")
        return self._uploads

    def describe(self) -> list[dict]:
        return [{"index": i, "path": str(r), "uploads": r == self._uploads} for i, r in enumerate(self.roots)]

    def base(self, root: object) -> Path:
        if isinstance(root, bool) or not isinstance(root, (int, str)):
            raise PathRefused(f"root {root!r}: give a data root's number (0..{len(self.roots) - 1})")
        try:
            index = int(root)
            if index < 0:  # a negative index would count from the end
                raise IndexError(index)
            return self.roots[index]
        except (ValueError, IndexError):
            raise PathRefused(f"root {root!r}: no such data root (there are {len(self.roots)})") from None

    def resolve(self, root: object, rel: object = "") -> Path:
        """The real path of ``rel`` under root number ``root``; :class:`PathRefused` when it is not inside."""
        base = self.base(root)
        if rel is None:
            rel = ""
        if not isinstance(rel, str):
            raise PathRefused(f"path {rel!r}: give a folder or file as text, relative to the data root")
        if "\x00" in rel or "\\" in rel:
            raise PathRefused(f"{rel!r}: paths use '/' between folders and no control characters")
        parts = PurePosixPath(rel).parts
        if any(len(p.encode()) > NAME_MAX for p in parts) or len(rel.encode()) > PATH_MAX:
            raise PathRefused(f"{rel[:80]!r}...: a name longer than the file system allows ({NAME_MAX} bytes a name)")
        if rel.startswith("/") or any(p in ("..", ".") for p in parts) or ("%" in rel and _encodes_separator(rel)):
            raise PathRefused(f"{rel!r}: give a path inside the data root, without '..' or a leading '/'")
        real = Path(os.path.realpath(base.joinpath(*parts)))
        if not _inside(real, base):
            raise PathRefused(f"{rel!r} leads outside the data root {base} (a symbolic link?)")
        return real

    def contains(self, path: str | Path, *also: Path) -> bool:
        """Whether a path (from a job's record, a manifest) really lies inside a root (or one of ``also``)."""
        real = Path(os.path.realpath(path))
        return any(_inside(real, Path(os.path.realpath(r))) for r in (*self.roots, *also))

    def relative(self, path: Path) -> tuple[int, str]:
        real = Path(os.path.realpath(path))
        for i, r in enumerate(self.roots):
            if _inside(real, r):
                return i, "" if real == r else real.relative_to(r).as_posix()
        raise PathRefused(f"{path} is not inside the data roots")

    def check_ref(self, ref: str, origin: str = "") -> None:
        """A reference read from a file under the roots (a manifest's ``source-ref``...): refused, naming the
        reference and where it was read, unless it is a local file inside the roots."""
        where = f"{origin}: " if origin else ""
        if "://" in ref and not ref.startswith("file://"):
            raise PathRefused(
                f"{where}the reference {ref!r} is a remote URL; the studio reads only files inside "
                "its data roots (copy the images there)"
            )
        if not self.contains(ref):
            raise PathRefused(
                f"{where}the reference {ref!r} leads outside the studio's data roots; use paths "
                "relative to the manifest, inside a data root (or add the folder with --data-root)"
            )

    def confine(self, dataset) -> None:
        """Every image and mask of an opened dataset (``data.open_dataset``) inside the roots, before any of
        them is read."""
        for samples in dataset.splits.values():
            for s in samples:
                self.check_ref(s.source, s.origin)
                if getattr(s, "mask", ""):
                    self.check_ref(s.mask, s.origin)


def _inside(real: Path, base: Path) -> bool:
    return real == base or base in real.parents


def _encodes_separator(text: str) -> bool:
    once = unquote(text)
    return once != text and any(s in once for s in ("/", "\\", ".."))
