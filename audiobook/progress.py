"""Progress over characters: a tqdm bar on a terminal, a plain line now and then otherwise, nothing with -q."""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger(__name__)

PLAIN_EVERY_S = 30.0


class Progress:
    def __init__(self, total_chars: int, done_chars: int, quiet: bool = False, tty: bool | None = None) -> None:
        self.total, self.done = total_chars, done_chars
        self.quiet = quiet
        self._started = time.monotonic()
        self._start_done = done_chars
        self._last_line = self._started
        tty = sys.stderr.isatty() if tty is None else tty
        self._bar = None
        if not quiet and tty:
            self._bar = tqdm(
                total=total_chars,
                initial=done_chars,
                unit="char",
                unit_scale=True,
                dynamic_ncols=True,
                smoothing=0.1,
                file=sys.stderr,
            )

    def advance(self, chars: int) -> None:
        self.done += chars
        if self._bar is not None:
            self._bar.update(chars)
        elif not self.quiet and time.monotonic() - self._last_line >= PLAIN_EVERY_S:
            self._last_line = time.monotonic()
            print(self.line(), file=sys.stderr, flush=True)

    def line(self) -> str:
        """``progress: 41.2% (12,345/29,960 chars), 63 chars/s, ETA 4m40s``"""
        elapsed = time.monotonic() - self._started
        rate = (self.done - self._start_done) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else None
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return (
            f"progress: {pct:.1f}% ({self.done:,}/{self.total:,} chars), {rate:.0f} chars/s, "
            f"ETA {format_duration(eta) if eta is not None else 'unknown'}"
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
