"""Run the real epubcheck (Debian's ``epubcheck`` package, a Java jar) on an EPUB; skip where it is not installed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest


def command() -> list[str]:
    """How to start epubcheck here: Debian's ``/usr/bin/epubcheck`` is the jar itself, which only runs directly
    where binfmt_misc knows jars, so it is started with ``java -jar``."""
    found = shutil.which("epubcheck")
    java = shutil.which("java")
    if found is None or java is None:
        pytest.skip("epubcheck not installed (apt-get install epubcheck; .ci/run installs it)")
    target = Path(os.path.realpath(found))
    return [java, "-jar", str(target)] if target.suffix == ".jar" else [str(target)]


def epubcheck(path: Path) -> tuple[int, str]:
    """The number of errors and fatal errors epubcheck reports for ``path``, and its whole report."""
    result = subprocess.run([*command(), str(path)], capture_output=True, text=True, timeout=300)
    report = result.stdout + result.stderr
    counts = re.search(r"Messages: (\d+) fatals? / (\d+) errors?", report)
    if counts is None:
        raise AssertionError(f"epubcheck gave no summary:\n{report}")
    return int(counts.group(1)) + int(counts.group(2)), report
