"""What guards the studio: the access token (a cookie set from the URL's token, compared in constant
time), the CSRF token every state-changing request carries in a header, the Host check (no DNS
rebinding), the data roots no path may leave, and the checks on uploaded zips."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from visiontune.errors import ConfigError, VisiontuneError

CSRF_HEADER = "X-Studio-CSRF"


def cookie_name(port: int) -> str:
    """Cookies are not separated by port: each studio's has its port in its name, so two studios on one
    machine do not sign each other out."""
    return f"visiontune_studio_{int(port)}"


class PathRefused(VisiontuneError):
    """A path outside the allowed folders, or one that tries to leave them."""


class UploadRefused(VisiontuneError):
    """An upload that is too large, not a zip, or would write outside its folder."""


@dataclass
class Access:
    """One studio process's secrets: ``token`` (in the printed URL), the session cookie's value and the CSRF
    token derived from it.  A restart makes new ones, so an old link or cookie stops working."""

    token: str

    @classmethod
    def new(cls) -> "Access":
        return cls(secrets.token_urlsafe(32))

    def _derive(self, what: str) -> str:
        return hmac.new(self.token.encode(), what.encode(), hashlib.sha256).hexdigest()

    @property
    def session(self) -> str:
        return self._derive("session")

    @property
    def csrf(self) -> str:
        return self._derive("csrf")

    def token_ok(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

    def session_ok(self, cookie: str | None) -> bool:
        return bool(cookie) and hmac.compare_digest(cookie.encode(), self.session.encode())

    def csrf_ok(self, header: str | None) -> bool:
        return bool(header) and hmac.compare_digest(header.encode(), self.csrf.encode())


def allowed_hosts(host: str, port: int) -> set[str] | None:
    """The Host headers a loopback studio answers (127.0.0.1, localhost, [::1] with its port), so a page on
    another site cannot reach it through a DNS name that points here.  None (any) when it was bound beyond
    this machine with --allow-remote: then the link's token is the protection."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        return None
    return {f"{h}:{port}" for h in ("127.0.0.1", "localhost", "[::1]")}


def host_ok(host_header: str | None, allowed: set[str] | None) -> bool:
    return allowed is None or (bool(host_header) and host_header.lower() in allowed)


class Roots:
    """The folders the studio may read (data roots) and write (uploads).  A user's path is a root's index and
    a path relative to it; ``..``, absolute paths, backslashes, NUL, and symlinks that lead out are refused."""

    def __init__(self, roots: list[Path], uploads: Path):
        uploads.mkdir(parents=True, exist_ok=True)
        seen, self.roots = set(), []
        for r in [*roots, uploads]:
            real = Path(os.path.realpath(r))
            if not real.is_dir():
                raise ConfigError(f"--data-root {r}: not a folder")
            if real not in seen:
                seen.add(real)
                self.roots.append(real)
        self.uploads = Path(os.path.realpath(uploads))

    def describe(self) -> list[dict]:
        return [{"index": i, "path": str(r), "uploads": r == self.uploads} for i, r in enumerate(self.roots)]

    def resolve(self, root: int | str, rel: str = "") -> Path:
        """The real path of ``rel`` under root number ``root``; :class:`PathRefused` when it is not inside."""
        try:
            if isinstance(root, bool) or int(root) < 0:  # a negative index would count from the end
                raise IndexError(root)
            base = self.roots[int(root)]
        except (ValueError, IndexError, TypeError):
            raise PathRefused(f"root {root!r}: no such data root (there are {len(self.roots)})") from None
        rel = rel or ""  # (names as the file system has them: no Unicode normalisation; realpath confines)
        if "\x00" in rel or "\\" in rel:
            raise PathRefused(f"{rel!r}: paths use '/' between folders and no control characters")
        parts = PurePosixPath(rel).parts
        if rel.startswith("/") or any(p in ("..", ".") for p in parts) or "%" in rel and _decodes_to_separator(rel):
            raise PathRefused(f"{rel!r}: give a path inside the data root, without '..' or a leading '/'")
        real = Path(os.path.realpath(base.joinpath(*parts)))
        if real != base and base not in real.parents:
            raise PathRefused(f"{rel!r} leads outside the data root {base} (a symbolic link?)")
        return real

    def contains(self, path: str | Path) -> bool:
        """Whether an existing path (from a job's record) lies inside a root or the visiontune home."""
        from visiontune.paths import home

        real = Path(os.path.realpath(path))
        return any(real == r or r in real.parents for r in (*self.roots, Path(os.path.realpath(home()))))

    def relative(self, path: Path) -> tuple[int, str] | None:
        real = Path(os.path.realpath(path))
        for i, r in enumerate(self.roots):
            if real == r or r in real.parents:
                return i, real.relative_to(r).as_posix() if real != r else ""
        return None


def _decodes_to_separator(text: str) -> bool:
    from urllib.parse import unquote

    once = unquote(text)
    return any(s in once for s in ("/", "\\", "..")) and once != text


# ---------------------------------------------------------------------- uploads
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


def extract_zip(archive: Path, dest: Path, *, max_unpacked: int = MAX_UNPACKED_BYTES, max_ratio: int = MAX_RATIO,
                max_members: int = MAX_MEMBERS) -> int:
    """Unpack an uploaded zip into ``dest`` (which must not exist) after checking every member: no absolute
    paths, no ``..``, no links or device files, no duplicates, sizes and compression ratios within limits
    (per member and for the whole archive).  It unpacks into a temporary folder beside ``dest`` and renames
    it into place, so a zip that fails half-way (a wrong CRC, a size that lies, an encrypted member) leaves
    nothing behind.  Returns the number of files written."""
    import shutil
    import tempfile

    if dest.exists():
        raise UploadRefused(f"a dataset named {dest.name!r} was uploaded before; choose another name")
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError):
        raise UploadRefused(f"{archive.name}: not a zip file") from None
    with zf:
        members = zf.infolist()
        if len(members) > max_members:
            raise UploadRefused(f"{archive.name}: {len(members)} entries (at most {max_members})")
        total, seen, plan = 0, set(), []
        for m in members:
            name = m.filename
            parts = PurePosixPath(name.replace("\\", "/")).parts
            if name.startswith(("/", "\\")) or (parts and ":" in parts[0]) or ".." in parts or "\x00" in name:
                raise UploadRefused(f"{archive.name}: entry {name!r} would be written outside its folder")
            kind = stat.S_IFMT(m.external_attr >> 16)
            if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                raise UploadRefused(f"{archive.name}: entry {name!r} is a link or special file; zip plain files")
            total += m.file_size
            if m.file_size > max(1 << 20, m.compress_size * max_ratio):
                raise UploadRefused(f"{archive.name}: entry {name!r} unpacks to {m.file_size} bytes from "
                                    f"{m.compress_size} (a zip bomb?)")
            parts = tuple(p for p in parts if p not in ("", "."))
            if not parts or parts[0] == "__MACOSX" or parts[-1].startswith("._"):
                continue
            if not m.is_dir():
                if parts in seen:
                    raise UploadRefused(f"{archive.name}: entry {name!r} appears twice")
                seen.add(parts)
            plan.append((m, parts))
        size = max(archive.stat().st_size, 1)
        if total > max_unpacked or total > max(64 << 20, size * max_ratio):
            raise UploadRefused(f"{archive.name}: unpacks to {total} bytes from {size} (at most {max_unpacked}, "
                                f"and at most {max_ratio} times the zip)")
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
            raise UploadRefused(f"{archive.name}: could not unpack it ({type(exc).__name__}: {exc}); nothing was "
                                "kept") from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
