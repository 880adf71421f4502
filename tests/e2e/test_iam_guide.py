"""docs/iam.md's commands work: every ```sh block runs, in order, against a real server.

A line ending in ``# -> text`` must fail with `text` in its output; every other command must
succeed (the script runs with ``set -euo pipefail``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from support.clients import ISOLATED_AWS_ENV
from support.factories import ServerFactory
from support.server import scrubbed_environ

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "iam.md"
BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.S | re.M)
EXPECT_FAILURE = re.compile(r"^(?P<command>.*?)\s+# -> (?P<text>.+)$")


def guide_script() -> str:
    lines = ["set -euo pipefail"]
    for block in BLOCK.findall(GUIDE.read_text()):
        for line in block.splitlines():
            failing = EXPECT_FAILURE.match(line)
            if failing is None:
                lines.append(line)
                continue
            command, text = failing["command"], failing["text"]
            lines.append(
                f"if out=$({command} 2>&1); then echo 'expected to fail: {command}' >&2; exit 1; fi"
            )
            lines.append(
                f'grep -qF -- \'{text}\' <<<"$out" || {{ echo "$out" >&2;'
                f" echo 'expected {text}' >&2; exit 1; }}"
            )
    return "\n".join(lines) + "\n"


def test_guide_blocks_are_found() -> None:
    script = guide_script()
    assert script.count("aws ") > 40
    assert script.count("expected to fail") >= 6


def test_every_guide_command_works(server_factory: ServerFactory, tmp_path: Path) -> None:
    server = server_factory()
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    # The guide reads the administrator's key from ./secretsd-data, as after a quick start.
    (work / "secretsd-data").symlink_to(server.data_dir)
    script = work / "guide.sh"
    script.write_text(guide_script().replace("http://127.0.0.1:8566", server.endpoint))
    bin_dir = str(Path(sys.executable).parent)
    env = scrubbed_environ(
        {
            **ISOLATED_AWS_ENV,
            "HOME": str(home),
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "AWS_PAGER": "",
            "SECRETSD_DATA_DIR": str(server.data_dir),
        }
    )
    # The guide's CLI configuration lives in ~/.aws, not in the isolated paths.
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        env.pop(name, None)
    if server.database_url:
        env["SECRETSD_DATABASE_URL"] = server.database_url
    done = subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(script)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-4000:]}"
    assert "for both" in done.stdout
    assert "assumed-role/billing-reader/bob-at-work" in done.stdout
