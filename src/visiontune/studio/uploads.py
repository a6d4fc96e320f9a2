"""Uploads to the studio: zips checked member by member before anything is written, and the names a
request may give a dataset, a class or a file."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path, PurePosixPath

from visiontune.errors import VisiontuneError


class UploadRefused(VisiontuneError):
    """An upload that is too large, not a zip, or would write outside its folder."""


MAX_UPLOAD_BYTES = 2 << 30  #: the largest zip accepted
MAX_UNPACKED_BYTES = 8 << 30  #: what all its files may add up to
MAX_RATIO = 200  #: a member that unpacks to more than this many times its packed size is a bomb
MAX_MEMBERS = 200_000


def safe_name(name: str, what: str = "name") -> str:
    """A folder or file name from a request: letters, digits, ' ', '.', '_', '-' only."""
    cleaned = "".join(c for c in name.strip() if c.isalnum() or c in " ._-").strip(" .")
    if not cleaned or cleaned != name.strip():
        raise UploadRefused(f"{what} {name!r}: use letters, digits, spaces, '.', '_' or '-'")
    return cleaned[:100]


def extract_zip(
    archive: Path,
    dest: Path,
    *,
    max_unpacked: int = MAX_UNPACKED_BYTES,
    max_ratio: int = MAX_RATIO,
    max_members: int = MAX_MEMBERS,
    shown: str | None = None,
) -> int:
    """Unpack an uploaded zip into ``dest`` (which must not exist) after checking every member: no absolute
    paths, no ``..``, no links or device files, no duplicates, sizes and compression ratios within limits
    (per member and for the whole archive).  It unpacks into a temporary folder beside ``dest`` and renames
    it into place, so a zip that fails half-way (a wrong CRC, a size that lies, an encrypted member) leaves
    nothing behind.  Returns the number of files written.  ``shown``: the name messages give the archive (the
    user's file name, not the temporary file it was received into)."""
    shown = shown or archive.name
    if dest.exists():
        raise UploadRefused(f"a dataset named {dest.name!r} was uploaded before; choose another name")
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError):
        raise UploadRefused(f"{shown}: not a zip file") from None
    with zf:
        members = zf.infolist()
        if len(members) > max_members:
            raise UploadRefused(f"{shown}: {len(members)} entries (at most {max_members})")
        plan, total = _plan(members, shown, max_ratio)
        size = max(archive.stat().st_size, 1)
        if total > max_unpacked or total > max(64 << 20, size * max_ratio):
            raise UploadRefused(
                f"{shown}: unpacks to {total} bytes from {size} (at most {max_unpacked}, "
                f"and at most {max_ratio} times the zip)"
            )
        return _unpack(zf, plan, dest, shown)


Plan = list[tuple[zipfile.ZipInfo, tuple[str, ...]]]


def _plan(members: list[zipfile.ZipInfo], shown: str, max_ratio: int) -> tuple[Plan, int]:
    """Every member checked (path, kind, ratio, duplicates) -> the entries to write and the unpacked size."""
    total, seen, plan = 0, set(), []
    for m in members:
        name = m.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or (parts and ":" in parts[0]) or ".." in parts or "\x00" in name:
            raise UploadRefused(f"{shown}: entry {name!r} would be written outside its folder")
        kind = stat.S_IFMT(m.external_attr >> 16)
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise UploadRefused(f"{shown}: entry {name!r} is a link or special file; zip plain files")
        total += m.file_size
        if m.file_size > max(1 << 20, m.compress_size * max_ratio):
            raise UploadRefused(
                f"{shown}: entry {name!r} unpacks to {m.file_size} bytes from {m.compress_size} (a zip bomb?)"
            )
        parts = tuple(p for p in parts if p not in ("", "."))
        if not parts or parts[0] == "__MACOSX" or parts[-1].startswith("._"):
            continue
        if not m.is_dir():
            if parts in seen:
                raise UploadRefused(f"{shown}: entry {name!r} appears twice")
            seen.add(parts)
        plan.append((m, parts))
    return plan, total


def _unpack(zf: zipfile.ZipFile, plan: Plan, dest: Path, shown: str) -> int:
    """Write the planned entries into a temporary folder beside ``dest``, then rename it into place."""
    import shutil
    import tempfile

    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        count = 0
        for m, parts in plan:
            target = work.joinpath(*parts)
            if m.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(m) as src, open(target, "xb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)  # zipfile stops at the declared size and checks the CRC
            count += 1
        os.rename(work, dest)
        return count
    except (zipfile.BadZipFile, EOFError, OSError, RuntimeError, NotImplementedError, ValueError) as exc:
        raise UploadRefused(f"{shown}: could not unpack it ({type(exc).__name__}: {exc}); nothing was kept") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
