"""Keep freed memory in the process for reuse, instead of handing it back to the system.

A training step allocates and frees the same large arrays again and again (a conv layer's
output, the ReLU and pooling gradients: 8 MiB each for a batch of 64 32x32x32 float32 maps).
glibc's malloc gives memory above its trim threshold back to the kernel when it is freed, so the
next step touches fresh pages and pays one page fault per 4 KiB page. The cost per fault depends
on the machine: measured 4.5 us on the course's virtual machine (an 8 MiB array: 9 ms to touch,
more than the convolution that fills it), about 0.2-0.5 us on bare metal. With the thresholds
below, freed arrays up to 32 MiB are kept and reused: the ThreeLayerConvNet training step on
CIFAR-sized images went from 64 ms to 45 ms on the course machine (benchmarks/README.md).

What it costs: the process keeps up to 256 MiB of freed memory for later instead of returning
it (its resident size does not shrink after a large step). Only glibc (Linux) is tuned; on
other systems, or with COURSE_LIB_KEEP_FREED_MEMORY=0 in the environment, nothing changes.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["KEEP_FREED_BYTES", "MMAP_THRESHOLD_BYTES", "keep_freed_memory"]

# mallopt parameters from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

# Arrays smaller than this come from the heap, where freed memory can be reused; 32 MiB is the
# largest value glibc accepts on 64-bit systems (HEAP_MAX_SIZE / 2).
MMAP_THRESHOLD_BYTES = 32 << 20
# Freed memory at the top of the heap is returned to the system only beyond this much.
KEEP_FREED_BYTES = 256 << 20

applied = False  # whether keep_freed_memory() changed malloc's settings in this process


def keep_freed_memory() -> bool:
    """Set glibc malloc's mmap and trim thresholds (see above). True if they were set."""
    global applied
    if os.environ.get("COURSE_LIB_KEEP_FREED_MEMORY", "1") == "0":
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        if not libc.gnu_get_libc_version:  # glibc only: musl's mallopt does nothing
            return False
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
                   and mallopt(_M_TRIM_THRESHOLD, KEEP_FREED_BYTES))
    return applied
