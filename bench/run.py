"""Run the secretsd benchmark: `.venv/bin/python bench/run.py [--quick] [--workers 1,2] ...`.

Starts secretsd and the ceiling server on 127.0.0.1, measures with wrk, stops everything, and
prints the tables; see docs/benchmarks.md for the method.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder is on sys.path, not the repository root that `bench` and
# the ceiling server's workers import from.
_REPO = str(Path(__file__).resolve().parent.parent)
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from bench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
