"""``audiobook serve``: a library of books converted one after another by warm workers, over HTTP.

- :mod:`.library`: the queue and the runner thread over shared warm worker pools; every route calls it.
- :mod:`.queue`: the queue on disk. :mod:`.paths`: what stays inside the library directory.
- :mod:`.speech`: streamed speech for ``POST /v1/audio/speech``. :mod:`.audio`: WAV headers and encoders.
- :mod:`.metrics`: Prometheus metrics. :mod:`.guard`: loopback, token, cross-site and size checks.
- :mod:`.app`: the routes (FastAPI) and ``static/``: the web page (plain HTML, CSS and JavaScript).
"""

from __future__ import annotations

import logging
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

    app = create_app(Library(library_dir, options), token)
    level = logging.getLogger("audiobook").getEffectiveLevel()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info" if level <= logging.DEBUG else "warning",
        access_log=level <= logging.DEBUG,
        timeout_graceful_shutdown=3,
    )
    uvicorn.Server(config).run()


__all__ = ["DEFAULT_PORT", "Library", "ServiceOptions", "serve", "token_for"]
