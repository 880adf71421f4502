"""Where a function's process runs: its unpacked code, its environment, its limits.

The process gets nothing of secretsd's: a fresh environment (AWS's variables, the function's),
no inherited file descriptors, its own working directory, an unprivileged user when secretsd
runs as root, an address-space limit of the function's MemorySize (plus the interpreter's fixed
reservation), and SIGKILL when the secretsd worker that started it dies (PR_SET_PDEATHSIG), so no
environment outlives its server even after kill -9.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import resource
import shutil
import signal
import stat
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import boto3

_PR_SET_PDEATHSIG = 1
# Virtual address space that CPython, glibc's malloc arenas and thread stacks reserve without
# using it; RLIMIT_AS counts reservations, AWS's MemorySize counts what is used.
ADDRESS_SPACE_OVERHEAD_MB = 256
UNPRIVILEGED_USER = "nobody"


class CodeRejected(Exception):
    """The deployment package cannot be unpacked (not a zip, or an entry escapes the root)."""


def check_zip(data: bytes) -> int:
    """Validate a deployment package without unpacking it; returns its unpacked size."""
    import io

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            total = 0
            for info in archive.infolist():
                _safe_member(info.filename)
                total += info.file_size
            return total
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise CodeRejected(str(exc)) from exc


def _safe_member(name: str) -> Path:
    path = Path(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name:
        raise CodeRejected(f"unsafe path in the zip: {name!r}")
    return path


def unpack(data: bytes, root: Path) -> None:
    """Unpack `data` into `root` (zip-slip safe: no absolute paths, no `..`, no links)."""
    import io

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            relative = _safe_member(info.filename)
            target = root / relative
            if not target.resolve().is_relative_to(root.resolve()):
                raise CodeRejected(f"unsafe path in the zip: {info.filename!r}")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)
            unix_mode = (info.external_attr >> 16) & 0o777
            # Readable by the function's user, never writable by it (AWS's /var/task is
            # read-only); executables stay executable.
            target.chmod(0o755 if unix_mode & 0o111 else 0o644)
    for directory, _, _ in os.walk(root):
        Path(directory).chmod(0o755)


@dataclass(frozen=True, slots=True)
class ProcessUser:
    uid: int
    gid: int


def process_user() -> ProcessUser | None:
    """`nobody` when secretsd runs as root; None (run as secretsd's own user) otherwise."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam(UNPRIVILEGED_USER)
    return ProcessUser(entry.pw_uid, entry.pw_gid)


def library_path() -> str:
    """The directory holding boto3, botocore and awslambdaric (secretsd's own site-packages):
    functions import boto3 from it as from AWS's runtime."""
    return str(Path(boto3.__file__).resolve().parent.parent)


def _world_executable(path: Path) -> bool:
    try:
        resolved = path.resolve(strict=True)
    except OSError:
        return False
    for parent in resolved.parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            return False
    return bool(resolved.stat().st_mode & stat.S_IXOTH)


def interpreter(user: ProcessUser | None) -> str:
    """The Python that runs functions: secretsd's own, or, when the unprivileged user cannot
    reach it (say, under /root), a system interpreter of the same version."""
    own = Path(sys.executable)
    if user is None or _world_executable(own):
        return str(own)
    name = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for directory in ("/usr/bin", "/usr/local/bin", "/bin"):
        candidate = Path(directory) / name
        if _world_executable(candidate):
            return str(candidate)
    return str(own)


def runtime_module() -> str:
    return "awslambdaric"


def preexec(memory_mb: int) -> Callable[[], None]:
    """Runs in the child between fork and exec, after subprocess switched to the unprivileged
    user (a credential change clears the parent-death signal, so it is set after it): limits,
    and SIGKILL when the parent dies."""
    limit = (memory_mb + ADDRESS_SPACE_OVERHEAD_MB) * 1024 * 1024
    parent = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True)

    def setup() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            # The parent died before the signal was armed.
            os._exit(1)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return setup
