"""Who may talk to the service, and how much: checked in front of every route (an ASGI middleware).

- **Loopback by default.** Bound to 127.0.0.1 with no token, the service answers only requests addressed to
  a loopback name (``Host: localhost``, ``127.0.0.1``, ``[::1]``), so a web page elsewhere cannot reach it by
  pointing a domain name at 127.0.0.1 (DNS rebinding).
- **A token everywhere else.** Bound to any other address a token is required (given, or generated and
  printed by ``audiobook serve``): ``Authorization: Bearer TOKEN``, or ``?token=TOKEN`` once in the browser,
  which then keeps it in a same-site, HTTP-only cookie.
- **No cross-site writes.** A request that changes something (not GET or HEAD) from a page of another origin
  is refused, whatever its content type (an HTML form can post a file upload across sites).
- **Bounded bodies.** A body over the limit is refused by its Content-Length, or cut off as soon as it passes
  the limit when it has none.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..diskspace import human
from ..errors import TooLargeError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "audiobook_token"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine only."""
    if host.strip("[]") in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def token_for(host: str, token: str | None) -> str | None:
    """The token the service will require: the one given; a new one when bound beyond loopback; else none."""
    if token:
        return token
    return None if is_loopback(host) else secrets.token_urlsafe(24)


class Guard:
    """The checks above, in front of ``app``."""

    def __init__(self, app: ASGIApp, token: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.token = token
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _send_error(send, *refusal)
            return
        if self.token and _query_token(scope) == self.token:
            send = _setting_cookie(send, self.token)
        await self.app(scope, self._limited(receive, headers), send)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        host = headers.get("host", "")
        if not self.token and not is_loopback(urlsplit(f"//{host}").hostname or ""):
            return 403, f"this service answers only to localhost, not to Host {host!r}"
        origin = headers.get("origin")
        if scope["method"] not in SAFE_METHODS and origin and urlsplit(origin).netloc != host:
            return 403, f"a request from another site ({origin}) may not change anything here"
        if self.token and not self._authorized(scope, headers):
            return (
                401,
                "this service needs its token: open the address `audiobook serve` printed, or send it as "
                "Authorization: Bearer TOKEN",
            )
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body_bytes:
            return 413, f"the request body is larger than the limit of {human(self.max_body_bytes)}"
        return None

    def _authorized(self, scope: Scope, headers: dict[str, str]) -> bool:
        assert self.token is not None
        given = [_query_token(scope) or ""]
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            given.append(value.strip())
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed cookie header is no token
            pass
        if COOKIE in cookie:
            given.append(cookie[COOKIE].value)
        return any(secrets.compare_digest(g.encode(), self.token.encode()) for g in given if g)

    def _limited(self, receive: Receive, headers: dict[str, str]) -> Receive:
        limit = self.max_body_bytes
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise TooLargeError(f"the request body is larger than the limit of {human(limit)}")
            return message

        return limited


def _query_token(scope: Scope) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None


def _setting_cookie(send: Send, token: str) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
            message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode("latin-1"))]
        await send(message)

    return sending


async def _send_error(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
