"""The three ways into visiontune's web apps, as FastAPI dependencies attached per router
(``APIRouter(dependencies=[...])``), every comparison in constant time:

- :class:`ApiKey`: the endpoint's key (``X-Api-Key`` or ``Authorization: Bearer``);
- :class:`Session`: the studio's link token, swapped for an HttpOnly SameSite=Strict cookie on the first
  visit (:meth:`Session.exchange`), and the CSRF token every state-changing request carries in a header;
- :func:`capability`: the labeling app's secret in the URL path (a worker's or the owner's link)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Callable, TypeVar
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from visiontune.errors import AuthError, ForbiddenError

T = TypeVar("T")


def same(given: str | None, expected: str) -> bool:
    """Whether a secret someone sent is the expected one, in time that does not depend on where they differ."""
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


class ApiKey:
    """A dependency: the request carries the API key (no key configured: everyone may)."""

    def __init__(self, key: str | None):
        self.key = key

    def __call__(self, request: Request) -> None:
        if not self.key:
            return
        given = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if given is None and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if given is None:
            raise AuthError("this server needs an API key: send it as X-Api-Key or Authorization: Bearer")
        if not same(given, self.key):
            raise ForbiddenError("the API key is not valid")


@dataclass
class Access:
    """One server process's secrets: ``token`` (in the printed link), the session cookie's value and the CSRF
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
        return same(given, self.token)

    def session_ok(self, cookie: str | None) -> bool:
        return same(cookie, self.session)

    def csrf_ok(self, header: str | None) -> bool:
        return same(header, self.csrf)


class SignInRequired(AuthError):
    """No valid session cookie: the app's pages answer with the page that says how to sign in."""


class Session:
    """The studio's scheme: link token -> cookie, then the cookie on every request and the CSRF header on
    every state-changing one."""

    def __init__(self, access: Access, cookie: str, csrf_header: str, sign_in_hint: str):
        self.access, self.cookie, self.csrf_header, self.hint = access, cookie, csrf_header, sign_in_hint

    def exchange(self, request: Request) -> Response | None:
        """A request with ``?token=`` gets the cookie and a redirect to the same address without the token (so
        it leaves the address bar and the history); a wrong token gets the expired-link page; None without."""
        token = request.query_params.get("token")
        if token is None:
            return None
        if not self.access.token_ok(token):
            from visiontune.web.templates import render

            return HTMLResponse(render("expired.html", hint=self.hint), status_code=403)
        rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
        path = "/" + request.url.path.lstrip("/")  # never "//host": a redirect stays on this server
        response = RedirectResponse(path + ("?" + urlencode(rest) if rest else ""), status_code=303)
        response.set_cookie(self.cookie, self.access.session, httponly=True, samesite="strict", path="/")
        return response

    def middleware(self, app):
        """The exchange as a pure-ASGI middleware (it must not wrap the body stream: a body refused while it
        streams reaches the app's error handler as itself)."""

        async def exchange(scope, receive, send) -> None:
            response = self.exchange(Request(scope)) if scope["type"] == "http" else None
            if response is None:
                await app(scope, receive, send)
            else:
                await response(scope, receive, send)

        return exchange

    def __call__(self, request: Request) -> None:
        """The dependency of every route but the static files' and the sign-in exchange's."""
        if not self.access.session_ok(request.cookies.get(self.cookie)):
            raise SignInRequired(f"not signed in: {self.hint}")
        if request.method not in ("GET", "HEAD") and not self.access.csrf_ok(request.headers.get(self.csrf_header)):
            raise ForbiddenError(
                "this request lacks the page's CSRF token (a request from another site?); reload the page and try again"
            )


def capability(lookup: Callable[[str], T | None], what: str = "link") -> Callable[[str], T]:
    """A dependency that turns the ``secret`` path parameter into what it opens (``lookup(secret)``), or
    answers 403; the secret itself is never logged (the apps' access logs are off)."""

    def dependency(secret: str) -> T:
        found = lookup(secret)
        if found is None:
            raise ForbiddenError(f"this {what} is not valid (revoked, replaced or mistyped)")
        return found

    return dependency
