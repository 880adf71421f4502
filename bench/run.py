"""Run the secretsd benchmark: `.venv/bin/python bench/run.py [--quick] [--workers 1,2] ...`.

`bench/run.py --realistic [--quick] ...` runs issue 12's realistic load instead (bench/realistic.py).

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

from bench import cli, realistic  # noqa: E402

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--realistic" in argv:
        argv.remove("--realistic")
        sys.exit(realistic.main(argv))
    sys.exit(cli.main(argv))
