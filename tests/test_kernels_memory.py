"""course_lib keeps freed memory for reuse (course_lib/kernels/memory.py), in a fresh process.

Freeing and allocating an 8 MiB array again and again must not fault in fresh pages each time
once course_lib is imported; with COURSE_LIB_KEEP_FREED_MEMORY=0 nothing is changed, and the
same loop faults (glibc returns the memory to the system on every free).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc tuning")

_SCRIPT = r"""
import json, resource
import numpy as np
import course_lib
from course_lib.kernels import memory

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

def step():  # a training step's pattern: several 8 MiB arrays alive at once, then all freed
    arrays = [np.ones(1 << 20) for _ in range(5)]
    del arrays

step()  # warm up: the first arrays fault their pages in either way
before = faults()
for _ in range(10):
    step()
print(json.dumps({"applied": memory.applied, "faults": faults() - before}))
"""


def _run(keep: str) -> dict:
    env = dict(os.environ, COURSE_LIB_KEEP_FREED_MEMORY=keep)
    done = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_freed_arrays_are_reused_without_page_faults():
    tuned, untouched = _run("1"), _run("0")
    assert tuned["applied"] is True and untouched["applied"] is False
    # 10 steps of 5 x 2048 pages: untuned, glibc gives what is beyond twice its dynamic
    # threshold (8 MiB) back to the system when they are freed, and every step faults it in again;
    # tuned, the warm-up's pages are reused.
    assert untouched["faults"] > 10 * 2048, untouched
    assert tuned["faults"] < 2048, tuned
