"""``audiobook serve``: a library of books converted one after another by warm workers, over HTTP.

- :mod:`.library`: the queue and the runner thread over shared warm worker pools; every route calls it.
- :mod:`.queue`: the queue on disk. :mod:`.paths`: what stays inside the library directory.
- :mod:`.speech`: streamed speech for ``POST /v1/audio/speech``. :mod:`.audio`: WAV headers and encoders.
- :mod:`.metrics`: Prometheus metrics. :mod:`.guard`: loopback, token, cross-site and size checks.
- :mod:`.app`: the routes (FastAPI) and ``static/``: the web page (plain HTML, CSS and JavaScript).
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from .guard import token_for
from .library import Library, ServiceOptions

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765


def serve(library_dir: Path, host: str, port: int, token: str | None, options: ServiceOptions) -> None:
    """Run the service until interrupted (Ctrl-C or SIGTERM stop it cleanly, keeping every finished chunk).

    ``token`` must already be decided (see :func:`~.guard.token_for`)."""
    import uvicorn

    from .app import create_app

    listening = bind(host, port)  # first: a port in use is one clear error, before anything starts
    app = create_app(Library(library_dir, options), token)
    level = logging.getLogger("audiobook").getEffectiveLevel()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info" if level <= logging.DEBUG else "warning",
        access_log=level <= logging.DEBUG,
        timeout_graceful_shutdown=3,  # then open event streams are closed
    )
    uvicorn.Server(config).run(sockets=[listening])


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; ``OSError`` (address in use, no such address) if it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise OSError(e.errno, f"cannot listen on {host}:{port}: {e.strerror}") from e
    return sock


__all__ = ["DEFAULT_PORT", "Library", "ServiceOptions", "serve", "token_for"]
