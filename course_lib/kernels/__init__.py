"""Numba kernels: small loops over plain arrays, no argument checks (the public layers do those).

Importing this package first makes sure Numba's on-disk cache has a writable home. Numba writes
its cache to `__pycache__` next to the source; when the install directory is read-only (a
system-wide or container install) it would fail with "no locator available", so we point
NUMBA_CACHE_DIR at a per-user cache directory instead. An explicit NUMBA_CACHE_DIR always wins.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _writable(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory):
            pass
        return True
    except OSError:
        return False


def _choose_cache_dir() -> str | None:
    """None when the package's own __pycache__ is writable (Numba's default works)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    if _writable(Path(__file__).parent / "__pycache__"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    for candidate in (Path(base) / "course_lib" / "numba",
                      Path(tempfile.gettempdir()) / f"course_lib-numba-{os.getuid()}"):
        if _writable(candidate):
            return str(candidate)
    return None


CACHE_DIR = _choose_cache_dir()
if CACHE_DIR is not None:
    os.environ["NUMBA_CACHE_DIR"] = CACHE_DIR

import numba  # noqa: E402  (must come after NUMBA_CACHE_DIR is set)

if CACHE_DIR is not None:
    # numba may have been imported before us; its config is read when a function is decorated.
    numba.config.CACHE_DIR = CACHE_DIR

from course_lib.kernels.memory import keep_freed_memory  # noqa: E402

keep_freed_memory()

# Shared decorator settings for every kernel: compiled once, cached on disk.
JIT_OPTIONS = dict(cache=True, nogil=True)
