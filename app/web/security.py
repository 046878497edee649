"""Who may talk to a running server: its own Host names, its own Origin, and the access token.

Installed by the serving code (app/server.py), not by create_app: an app built for tests or
for another WSGI server answers every request, as before.
"""
from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from flask import Flask, Response, request

from app.errors import error_response

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
# GET and HEAD may carry the token in this cookie (set by the page, SameSite=Strict, path /api/):
# an <img> preview and the download link cannot send a header. Suffixed with the port, because
# cookies do not tell ports apart and two servers may run on one machine.
COOKIE_PREFIX = "faceguard-token-"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_loopback(host: str) -> bool:
    """Tell whether an address to bind reaches this machine only (127.0.0.0/8, ::1, localhost)."""
    name = host.strip().strip("[]").lower()
    if name in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    """Tell whether an address to bind means every interface (0.0.0.0, ::, or empty)."""
    name = host.strip().strip("[]")
    try:
        return not name or ipaddress.ip_address(name).is_unspecified
    except ValueError:
        return False


def _netloc(host: str, port: int | None, scheme: str = "http") -> str:
    """Write host and port the one way they are compared: lower case, IPv6 in brackets, port always."""
    name = host.strip().lower().rstrip(".")
    if ":" in name and not name.startswith("["):
        name = f"[{name}]"
    return f"{name}:{port or _DEFAULT_PORTS.get(scheme, 80)}"


def _split(value: str) -> tuple[str, int | None]:
    """Split a Host header's value into its name and port (None if it has none or a bad one)."""
    value = value.strip()
    if value.startswith("["):
        name, _, rest = value.partition("]")
        name, port = name + "]", rest.removeprefix(":")
    elif value.count(":") == 1:
        name, port = value.split(":")
    else:
        name, port = value, ""
    return name, int(port) if port.isdigit() else None


@dataclass(frozen=True)
class Access:
    """What a running server accepts: the Host values that name it (None: any) and its token."""

    hosts: frozenset[str] | None
    token: str | None

    @classmethod
    def for_bind(cls, host: str, port: int, token: str | None) -> Access:
        """Build the rules for a server bound to host:port."""
        if is_wildcard(host):  # its names are unknowable; a wildcard bind always has a token
            return cls(None, token)
        names = {host, *LOOPBACK_NAMES} if is_loopback(host) else {host}
        return cls(frozenset(_netloc(name, port) for name in names), token)

    def host_ok(self, host: str | None) -> bool:
        """Accept a Host that names this server (or none at all: no browser sends that)."""
        return self.hosts is None or host is None or _netloc(*_split(host)) in self.hosts

    def origin_ok(self, origin: str | None, host: str | None, scheme: str) -> bool:
        """Accept no Origin (curl, the CLI, same-origin GETs) or this very server's."""
        if origin is None:
            return True
        if host is None:
            return False
        parts = urlsplit(origin.strip())
        try:
            port = parts.port
        except ValueError:
            return False
        if parts.scheme.lower() != scheme or not parts.hostname:
            return False  # "null" (a sandboxed frame, a file:// page) names no site of ours
        return _netloc(parts.hostname, port, scheme) == _netloc(*_split(host), scheme)

    def token_ok(self, presented: str | None) -> bool:
        """Accept any request if no token is set, else only the token, compared in constant time."""
        if self.token is None:
            return True
        return presented is not None and hmac.compare_digest(presented.encode(), self.token.encode())


def _presented() -> str | None:
    """The token a request carries: its Bearer header, or for GET and HEAD the page's cookie."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.method in ("GET", "HEAD"):
        _, port = _split(request.host)
        raw = request.cookies.get(f"{COOKIE_PREFIX}{port or 80}")
        return unquote(raw) if raw else None
    return None


def _refusal(access: Access) -> tuple[Response, int] | None:
    """Answer a request this server must not serve; None lets it through."""
    host = request.headers.get("Host")
    if not access.host_ok(host):
        return error_response(403, f"This server does not answer to the name {host!r}. "
                                   "Open it at the address it printed when it started.")
    if not access.origin_ok(request.headers.get("Origin"), host, request.scheme):
        return error_response(403, "Requests from other sites are refused. "
                                   "Use Face Privacy Guard's own page, or send the request without an Origin.")
    if request.path.startswith("/api/") and not access.token_ok(_presented()):
        response, status = error_response(
            401, "This server needs its access token. Open the address it printed at start-up (it ends in "
                 "#token=...), or send the header 'Authorization: Bearer <token>'.")
        response.headers["WWW-Authenticate"] = 'Bearer realm="Face Privacy Guard"'
        return response, status
    return None


def protect(app: Flask, access: Access) -> None:
    """Refuse foreign Host names and Origins, and API requests without the token, on every request."""
    app.before_request(lambda: _refusal(access))
    app.context_processor(lambda: {"token_required": access.token is not None})
    app.add_url_rule("/api/access", "access", lambda: ("", 204))  # the page checks a token it was given
