"""Benchmarks for secretsd: `python bench/run.py` (see docs/benchmarks.md).

The bench measures the code of the tree it lives in. Without this, `python bench/run.py` run
from another checkout (a git worktree of an older commit, for an A/B) imported secretsd from
wherever the virtualenv's editable install points, and the figures silently belonged to that
other tree. The servers the bench starts get the same path (bench.processes.clean_environ).
"""

import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "src"
if str(SOURCE) not in sys.path:
    sys.path.insert(0, str(SOURCE))
