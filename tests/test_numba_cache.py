"""Numba's on-disk cache works even when course_lib is installed in a read-only directory."""
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import course_lib

SCRIPT = """
import numpy as np
import course_lib
from course_lib.kernels import CACHE_DIR
x = np.ones((1, 1, 4, 4)); w = np.ones((1, 1, 3, 3)); b = np.zeros(1)
out, _ = course_lib.conv_forward(x, w, b, {"stride": 1, "pad": 1})
assert course_lib.__file__.startswith(%r), course_lib.__file__
print("CACHE_DIR", CACHE_DIR)
print("CENTRE", out[0, 0, 1, 1])
"""


def _read_only_tree(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def test_read_only_install_caches_compiled_kernels_in_the_user_cache_dir(tmp_path):
    install = tmp_path / "site"
    shutil.copytree(Path(course_lib.__file__).parent, install / "course_lib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    _read_only_tree(install)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(HOME=str(home), PYTHONPATH=str(install), XDG_CACHE_HOME=str(home / ".cache"))
    command = [sys.executable, "-c", SCRIPT % str(install)]
    if os.geteuid() == 0:
        # Root ignores permission bits; a read-only bind mount in a private mount namespace
        # makes the install truly read-only (EROFS) for root too.
        command = ["unshare", "--mount", "sh", "-c",
                   'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"',
                   "sh", str(install), *command]
    result = subprocess.run(command, env=env, cwd=home, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "CENTRE 9.0" in result.stdout  # 3x3 ones over ones, interior pixel
    expected = home / ".cache" / "course_lib" / "numba"
    assert f"CACHE_DIR {expected}" in result.stdout
    assert list(expected.rglob("*.nbi")), "no Numba index files were written to the cache dir"
    assert not list(install.rglob("*.nbi")), "the read-only install was written to"
