#!/usr/bin/env python3
"""Run the synthesis worker from a checkout: ``python scripts/kokoro_worker.py --help``.

Installed copies use ``python -m audiobook.worker``; both run ``audiobook.worker.main``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audiobook.worker import main  # noqa: E402 - needs the path above

if __name__ == "__main__":
    sys.exit(main())
