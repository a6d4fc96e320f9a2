"""What guards every web app, as one ASGI middleware (:class:`Guard`) and a few policies:

- the Host allow-list (a loopback server answers only its own names, so a page elsewhere cannot reach it
  through a DNS name that points here: DNS rebinding);
- cross-site requests refused (a state-changing request whose ``Origin`` is another site, or that the
  browser marks ``Sec-Fetch-Site: cross-site``);
- a body-size limit enforced while the body is read (413 before anything is parsed), per route;
- security headers on every reply (CSP with ``script-src 'self'``, ``frame-ancestors 'none'``, nosniff,
  no referrer);
- the bind policy (loopback unless asked) and the one link builder (IPv6 addresses in brackets)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from visiontune.errors import ConfigError, PayloadTooLargeError

LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: the policy of every HTML page the apps send: their own scripts and styles only, never framed
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
KiB, MiB = 1 << 10, 1 << 20
#: the limit of a JSON API's body unless a route says otherwise
JSON_LIMIT = 1 * MiB

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


def allowed_hosts(host: str, port: int) -> set[str] | None:
    """The Host headers a server bound to ``host`` answers: its loopback names with the port, or None (any)
    when it was bound beyond this machine (then its token, key or links are the protection)."""
    if host not in LOOPBACK:
        return None
    return {f"{h}:{port}" for h in ("127.0.0.1", "localhost", "[::1]")}


def check_bind(host: str, allow_remote: bool, what: str) -> None:
    """Refuse to listen beyond this machine unless the user said so."""
    if host not in LOOPBACK and not allow_remote:
        raise ConfigError(
            f"--host {host}: {what} would be reachable from other machines; add --allow-remote to "
            "mean it (and serve it behind HTTPS)"
        )


def base_url(host: str, port: int) -> str:
    """``http://HOST:PORT`` as a browser needs it: an IPv6 address in brackets, a wildcard as loopback."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


@dataclass
class Limits:
    """Body-size limits: ``default`` for every route, ``routes`` by path prefix (the longest match wins).
    Each limit is ``(bytes, what to do when over it)``."""

    default: int = JSON_LIMIT
    routes: dict[str, int] = field(default_factory=dict)
    hints: dict[str, str] = field(default_factory=dict)

    def for_path(self, path: str) -> tuple[int, str]:
        best = max((p for p in self.routes if path.startswith(p)), key=len, default=None)
        if best is None:
            return self.default, self.hints.get("", "")
        return self.routes[best], self.hints.get(best, "")


def _too_large(size: str | int, limit: int, hint: str) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"the body is {size} bytes; the limit for this route is {limit}" + (f" ({hint})" if hint else "")
    )


class Guard:
    """The pure-ASGI middleware every app wraps itself in (cheaper than Starlette's BaseHTTPMiddleware:
    the endpoint's latency counts)."""

    def __init__(
        self,
        app,
        *,
        hosts: set[str] | None = None,
        limits: Limits | None = None,
        csp: str = CSP,
        cache: str | None = "no-store",
    ):
        self.app, self.hosts, self.limits, self.csp, self.cache = app, hosts, limits or Limits(), csp, cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or ()}
        refused = self._refusal(scope, headers)
        if refused is not None:
            await _reply(send, *refused)
            return
        limit, hint = self.limits.for_path(scope.get("path", ""))
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _reply(send, 413, str(_too_large(declared, limit, hint)))
            return
        await self.app(scope, self._limited(receive, limit, hint), self._headed(send))

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        if self.hosts is not None and headers.get("host", "").lower() not in self.hosts:
            return 400, "unknown Host header: open the link the server printed (127.0.0.1 or localhost)"
        if scope.get("method") not in ("GET", "HEAD", "OPTIONS"):
            origin = headers.get("origin")
            if headers.get("sec-fetch-site") == "cross-site" or (
                origin and origin.split("://", 1)[-1].lower() != headers.get("host", "").lower()
            ):  # (an Origin of "null", a sandboxed frame's or a file's, is another site too)
                return 403, "a request from another site was refused (its Origin is not this server)"
        return None

    @staticmethod
    def _limited(receive: Receive, limit: int, hint: str) -> Receive:
        got = 0

        async def limited() -> dict:
            nonlocal got
            message = await receive()
            if message["type"] == "http.request":
                got += len(message.get("body", b""))
                if got > limit:
                    raise _too_large(f"more than {limit}", limit, hint)
            return message

        return limited

    def _headed(self, send: Send) -> Send:
        async def headed(message: dict) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", ())}
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"content-security-policy", self.csp.encode()),
                ]
                if self.cache:
                    extra.append((b"cache-control", self.cache.encode()))
                message["headers"] = [*message.get("headers", ()), *((k, v) for k, v in extra if k not in have)]
            await send(message)

        return headed


async def _reply(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message, "status": status}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-content-type-options", b"nosniff"),
                (b"content-security-policy", CSP.encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
