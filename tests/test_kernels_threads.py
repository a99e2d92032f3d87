"""The one-pass layers split over threads give the serial result (course_lib/kernels/threads.py).

With more than one BLAS thread configured, max pooling, ReLU's backward and batch norm run their
kernels on slices of the batch in threads (conv and affine have their own tests). Forced here
on small, unevenly split batches: the elementwise results must be identical, and the batch norm
gradients, whose per-channel sums are added up per slice, equal up to float64 rounding of those
sums (the inputs are float64 or float32; the sums are float64 in both cases).
"""

from __future__ import annotations

import numpy as np
import pytest

import course_lib

threadpoolctl = pytest.importorskip("threadpoolctl")
DTYPES = [np.float64, np.float32]
POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}


def _layers(x, dout_pool, dout):
    """Every threaded layer's outputs on x (N, C, H, W)."""
    pooled, pool_cache = course_lib.max_pool_forward(x, POOL)
    results = {"max_pool_forward": pooled,
               "max_pool_backward": course_lib.max_pool_backward(dout_pool, pool_cache)}
    _, relu_cache = course_lib.relu_forward(x)
    results["relu_backward"] = course_lib.relu_backward(dout, relu_cache)
    C = x.shape[1]
    gamma, beta = np.linspace(0.5, 2, C).astype(x.dtype), np.linspace(-1, 1, C).astype(x.dtype)
    for mode in ("train", "test"):
        param = {"mode": mode, "running_mean": np.full(C, 0.1), "running_var": np.full(C, 1.5)}
        out, cache = course_lib.spatial_batchnorm_forward(x, gamma, beta, param)
        dx, dgamma, dbeta = course_lib.spatial_batchnorm_backward(dout, cache)
        results.update({f"spatial_bn_{mode}_out": out, f"spatial_bn_{mode}_dx": dx,
                        f"spatial_bn_{mode}_dgamma": dgamma, f"spatial_bn_{mode}_dbeta": dbeta})
    flat, dflat = x.reshape(x.shape[0], -1), dout.reshape(x.shape[0], -1)
    D = flat.shape[1]
    out, cache = course_lib.batchnorm_forward(flat, np.ones(D, x.dtype), np.zeros(D, x.dtype),
                                              {"mode": "train"})
    results["bn_out"] = out
    results.update(zip(("bn_dx", "bn_dgamma", "bn_dbeta"),
                       course_lib.batchnorm_backward(dflat, cache), strict=True))
    return results


@pytest.mark.parametrize("dtype", DTYPES)
def test_threaded_one_pass_layers_match_the_serial_run(rng, monkeypatch, dtype):
    import course_lib.kernels.threads as threads
    x = (3 + rng.standard_normal((7, 3, 6, 8))).astype(dtype)   # 7 images: an uneven split
    dout_pool = rng.standard_normal((7, 3, 3, 4)).astype(dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        serial = _layers(x, dout_pool, dout)
    monkeypatch.setattr(threads, "MIN_ELEMENTS_PER_THREAD", 1)
    with threadpoolctl.threadpool_limits(limits=3, user_api="blas"):
        threaded = _layers(x, dout_pool, dout)
    eps = float(np.finfo(dtype).eps)
    for name, want in serial.items():
        got = threaded[name]
        assert got.dtype == want.dtype == dtype, name
        if "dgamma" in name or "dbeta" in name or name.endswith("_dx"):
            # Sums over the batch added per slice: a few units in the last place of dtype.
            np.testing.assert_allclose(got, want, rtol=16 * eps, atol=16 * eps, err_msg=name)
        else:
            np.testing.assert_array_equal(got, want, err_msg=name)
