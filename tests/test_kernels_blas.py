"""course_lib.kernels.blas.gemm: BLAS's product called from Numba, checked against NumPy."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from course_lib.kernels.blas import gemm

ROOT = Path(__file__).resolve().parents[1]

# Relative error of a product with k = 37 terms: float64 rounding is ~1e-16 per term; float32
# ~6e-8 per term, and BLAS may sum in another order than NumPy's own BLAS call.
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
def test_gemm_matches_numpy_on_column_blocks_of_larger_matrices(dtype, trans_a, trans_b):
    rng = np.random.default_rng(7)
    m, n, k = 5, 11, 37
    # Each operand is a block of columns of a wider matrix: its row stride (ld) is the parent's
    # row length, not the block's width.
    a_parent = rng.standard_normal((k, m + 3) if trans_a else (m, k + 3)).astype(dtype)
    b_parent = rng.standard_normal((n, k + 4) if trans_b else (k, n + 4)).astype(dtype)
    c_parent = rng.standard_normal((m, n + 6)).astype(dtype)
    a = a_parent[:, 2:2 + (m if trans_a else k)]
    b = b_parent[:, 1:1 + (k if trans_b else n)]
    expected = c_parent.copy()
    op_a = a.T if trans_a else a
    op_b = b.T if trans_b else b
    expected[:, 3:3 + n] = 1.5 * (op_a.astype(np.float64) @ op_b.astype(np.float64)) \
        + 0.5 * c_parent[:, 3:3 + n]

    c = c_parent.copy()
    gemm(trans_a, trans_b, m, n, k, 1.5, a, a_parent.shape[1], b, b_parent.shape[1], 0.5,
         c[:, 3:], c.shape[1])

    scale = np.abs(expected).max()
    assert np.abs(c - expected).max() / scale < TOLERANCE[dtype]
    # Columns outside the block are not touched.
    np.testing.assert_array_equal(c[:, :3], c_parent[:, :3])
    np.testing.assert_array_equal(c[:, 3 + n:], c_parent[:, 3 + n:])


def test_gemm_with_beta_one_accumulates():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 6))
    b = rng.standard_normal((6, 3))
    c = np.ones((4, 3))
    for _ in range(3):
        gemm(False, False, 4, 3, 6, 1.0, a, 6, b, 3, 1.0, c, 3)
    np.testing.assert_allclose(c, 1 + 3 * (a @ b), rtol=1e-13, atol=1e-13)


CACHE_SCRIPT = """
import numpy as np
import course_lib
from course_lib.kernels import conv
x = np.ones((2, 3, 6, 6), np.float32); w = np.ones((4, 3, 3, 3), np.float32)
out, cache = course_lib.conv_forward(x, w, np.zeros(4, np.float32), {"stride": 1, "pad": 1})
course_lib.conv_backward(out, cache)
for kernel in (conv.conv_forward_images, conv.conv_backward_images):
    print(kernel.__name__, "hits", sum(kernel.stats.cache_hits.values()),
          "misses", sum(kernel.stats.cache_misses.values()))
"""


def test_kernels_calling_blas_load_from_numbas_disk_cache(tmp_path):
    """A kernel that called BLAS through a ctypes pointer would be compiled again in every
    process (Numba cannot cache a baked-in address); this one is registered by symbol name."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    runs = [subprocess.run([sys.executable, "-c", CACHE_SCRIPT], env=env, capture_output=True,
                           text=True, timeout=300, cwd=tmp_path) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    assert "conv_forward_images hits 0 misses 1" in runs[0].stdout, runs[0].stdout
    assert "conv_forward_images hits 1 misses 0" in runs[1].stdout, runs[1].stdout
    assert "conv_backward_images hits 1 misses 0" in runs[1].stdout, runs[1].stdout
