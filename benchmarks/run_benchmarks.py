"""Speed of course_lib's layers and training steps against naive loops, NumPy and PyTorch (CPU).

    python benchmarks/run_benchmarks.py [--short] [--quick] [--threads N] [--no-single-thread]
                                        [--no-compile-time]

The headline table uses all of the machine's cores on both sides (BLAS, Numba and course_lib's
threads over the batch; torch.set_num_threads); a second table repeats it with 1 thread (in a
fresh process, since thread pools are fixed when the libraries load). Medians after warm-up,
IQR, GFLOP/s, GB/s or images/s, ratios, the share of the machine's matrix-multiply rate, the
targets of issue 14, and the load average at the start and the end. Variants of one measurement
are timed interleaved (round robin), so a burst of load from another process hits all of them
alike. Everything is also written as JSON into benchmarks/results/. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys


def _machine_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true",
                        help="headline rows only (the issue's layers and the ThreeLayerConvNet "
                             "step on 32x32), quick repeats, no 1-thread table: a few minutes")
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for BLAS, Numba, course_lib and PyTorch (default: the "
                             f"machine's cores, {_machine_cores()}); implies --no-single-thread")
    parser.add_argument("--no-single-thread", action="store_true",
                        help="skip the second table (1 thread)")
    parser.add_argument("--no-compile-time", action="store_true",
                        help="skip the cold/warm import-and-first-call measurement")
    parser.add_argument("--blas-autodetect", action="store_true",
                        help="remove OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE from the environment "
                             "first, so OpenBLAS picks its kernels and cache sizes for this CPU "
                             "(see benchmarks/README.md)")
    return parser.parse_args()


ARGS = _parse_args() if __name__ == "__main__" else None
THREADS = ARGS.threads if ARGS and ARGS.threads else _machine_cores()
# Thread counts must be fixed before NumPy, Numba or PyTorch load their thread pools.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = str(THREADS)
if ARGS and ARGS.blas_autodetect:  # read by OpenBLAS when NumPy loads it
    os.environ.pop("OPENBLAS_CORETYPE", None)
    os.environ.pop("OPENBLAS_L2_SIZE", None)
# OpenBLAS's worker threads spin for 2**28 cycles (about 0.1 s) after each multithreaded
# product. The NumPy variant multiplies with all threads, and its spinning workers then held both
# cores while the next variant was timed: PyTorch's 2-thread conv forward measured 11-28 ms
# right after it and 5.8 ms without it. 2**4 cycles lets them sleep at once. course_lib's layers
# run BLAS single-threaded inside their own threads, so only the NumPy variant is affected.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE), str(ROOT / "tests")]

import numba  # noqa: E402
import numpy_layers  # noqa: E402
from naive_conv_pool import (  # noqa: E402  (the tests' plain-loop reference)
    conv_backward_naive,
    conv_forward_naive,
    max_pool_backward_naive,
    max_pool_forward_naive,
)

import course_lib  # noqa: E402

try:
    import torch
    import torch.nn.functional as torch_f
    torch.set_num_threads(THREADS)
except ImportError:
    torch = None

N = 64  # batch size of every row
POOL_SHAPE = (64, 32, 32, 32)


@dataclass(frozen=True)
class ConvCase:
    """One conv layer: x (N, C, H, H), w (F, C, k, k)."""
    C: int
    F: int
    H: int = 32
    k: int = 3
    stride: int = 1
    pad: int = 1
    headline: bool = False  # in the --short run

    @property
    def out_size(self) -> int:
        return 1 + (self.H + 2 * self.pad - self.k) // self.stride

    @property
    def name(self) -> str:
        name = f"conv {self.C}->{self.F} {self.k}x{self.k}"
        if self.stride != 1:
            name += f"/{self.stride}"
        return f"{name} {self.H}^2"

    @property
    def forward_flops(self) -> int:
        return 2 * N * self.F * self.C * self.k * self.k * self.out_size ** 2


CONV_CASES = [
    ConvCase(3, 32, headline=True),               # the first layer of a CIFAR net
    ConvCase(16, 32, headline=True),
    ConvCase(32, 32, headline=True),
    ConvCase(16, 32, stride=2),                   # strided, 3x3 / 2, pad 1: 32 -> 16
    ConvCase(3, 32, k=5, pad=2),
    ConvCase(3, 32, k=7, pad=3),                  # ThreeLayerConvNet's default on CIFAR
    ConvCase(1, 16, H=28),                        # ConvNet's first layer on MNIST
    ConvCase(16, 32, H=14),                       # its second layer, after 2x2 pooling
    ConvCase(1, 32, H=28, k=7, pad=3),            # ThreeLayerConvNet on MNIST
]


# ---- timing ------------------------------------------------------------------------------------

# Pause before each timed call. PyTorch's OpenMP threads busy-wait for a while after each
# parallel region; without a pause they would still be spinning on the cores while the next
# variant (course_lib) is timed. After the pause every variant starts on an idle machine.
PAUSE = 0.005


def time_interleaved(variants, rounds, warmup=2, limited=None):
    """Median and IQR (seconds) per variant, calling the variants round robin.

    variants: {name: fn}; limited: {name: k}, variants run only in the first k rounds (slow ones).
    """
    limited = limited or {}
    for name, fn in variants.items():
        for _ in range(1 if name in limited else warmup):
            fn()
    samples = {name: [] for name in variants}
    names = list(variants)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate the order
            if r < limited.get(name, rounds):
                time.sleep(PAUSE)
                t0 = time.perf_counter()
                variants[name]()
                samples[name].append(time.perf_counter() - t0)
    stats = {}
    for name, s in samples.items():
        q1, med, q3 = np.percentile(s, [25, 50, 75])
        stats[name] = {"median": float(med), "iqr": float(q3 - q1), "n": len(s)}
    return stats


def gemm_rate(dtype, size=2048, rounds=7):
    """GFLOP/s of np.dot on two large square matrices with THREADS BLAS threads: the machine's
    matrix-multiply rate (NumPy's OpenBLAS)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    out = np.empty_like(a)
    t = time_interleaved({"gemm": lambda: np.dot(a, b, out=out)}, rounds)["gemm"]["median"]
    return 2 * size ** 3 / t / 1e9


# ---- the measured layers -----------------------------------------------------------------------

def _scale_naive(stats, n_naive):
    stats["naive"] = {k: (v * N / n_naive if k != "n" else v) for k, v in stats["naive"].items()}
    return stats


def conv_rows(case: ConvCase, dtype, rounds, naive_rounds):
    """Forward and backward rows of one conv layer: course_lib, naive loops, NumPy, PyTorch."""
    rng = np.random.default_rng(231)
    x = rng.standard_normal((N, case.C, case.H, case.H)).astype(dtype)
    w = (rng.standard_normal((case.F, case.C, case.k, case.k)) * 0.1).astype(dtype)
    b = rng.standard_normal(case.F).astype(dtype)
    Ho = case.out_size
    dout = rng.standard_normal((N, case.F, Ho, Ho)).astype(dtype)
    conv_param = {"stride": case.stride, "pad": case.pad}
    n_naive = 1
    xs, ds = x[:n_naive].copy(), dout[:n_naive].copy()
    _, cache = course_lib.conv_forward(x, w, b, conv_param)
    _, np_cache = numpy_layers.conv_forward_numpy(x, w, b, conv_param)
    fwd = {
        "course_lib": lambda: course_lib.conv_forward(x, w, b, conv_param),
        "naive": lambda: conv_forward_naive(xs, w, b, conv_param),
        "numpy": lambda: numpy_layers.conv_forward_numpy(x, w, b, conv_param),
    }
    bwd = {
        "course_lib": lambda: course_lib.conv_backward(dout, cache),
        "naive": lambda: conv_backward_naive(ds, xs, w, conv_param),
        "numpy": lambda: numpy_layers.conv_backward_numpy(dout, np_cache),
    }
    if torch is not None:
        tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))

        def t_forward():
            return torch_f.conv2d(tx, tw, tb, stride=case.stride, padding=case.pad)
        t_out = t_forward()
        t_dout = torch.from_numpy(dout)
        fwd["pytorch"] = t_forward
        bwd["pytorch"] = lambda: torch.autograd.grad(t_out, (tx, tw, tb), t_dout,
                                                     retain_graph=True)
    rows = []
    for pass_name, variants, flops in (("forward", fwd, case.forward_flops),
                                       ("backward", bwd, 2 * case.forward_flops)):
        stats = time_interleaved(variants, rounds, limited={"naive": naive_rounds})
        rows.append({"layer": case.name, "kind": "conv", "C": case.C,
                     "dtype": np.dtype(dtype).name, "pass": pass_name, "work": flops,
                     "unit": "GFLOP/s", "stats": _scale_naive(stats, n_naive),
                     "naive_batch": n_naive})
    return rows


def pool_rows(dtype, rounds, naive_rounds):
    rng = np.random.default_rng(231)
    x = rng.standard_normal(POOL_SHAPE).astype(dtype)
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    out, cache = course_lib.max_pool_forward(x, pool_param)
    dout = rng.standard_normal(out.shape).astype(dtype)
    _, np_cache = numpy_layers.max_pool_forward_numpy(x, pool_param)
    n_naive = 2
    xs, ds = x[:n_naive].copy(), dout[:n_naive].copy()
    fwd = {
        "course_lib": lambda: course_lib.max_pool_forward(x, pool_param),
        "naive": lambda: max_pool_forward_naive(xs, pool_param),
        "numpy": lambda: numpy_layers.max_pool_forward_numpy(x, pool_param),
    }
    bwd = {
        "course_lib": lambda: course_lib.max_pool_backward(dout, cache),
        "naive": lambda: max_pool_backward_naive(ds, xs, pool_param),
        "numpy": lambda: numpy_layers.max_pool_backward_numpy(dout, np_cache),
    }
    if torch is not None:
        tx = torch.from_numpy(x).requires_grad_()
        t_out = torch_f.max_pool2d(tx, 2, 2)
        t_dout = torch.from_numpy(dout)
        fwd["pytorch"] = lambda: torch_f.max_pool2d(tx, 2, 2)
        bwd["pytorch"] = lambda: torch.autograd.grad(t_out, (tx,), t_dout, retain_graph=True)
    rows = []
    bytes_moved = {"forward": x.nbytes + out.nbytes, "backward": x.nbytes + out.nbytes}
    for pass_name, variants in (("forward", fwd), ("backward", bwd)):
        stats = time_interleaved(variants, rounds, limited={"naive": naive_rounds})
        rows.append({"layer": "max pool 2x2/2", "kind": "max pool", "dtype": np.dtype(dtype).name,
                     "pass": pass_name, "work": bytes_moved[pass_name], "unit": "GB/s",
                     "stats": _scale_naive(stats, n_naive), "naive_batch": n_naive})
    return rows


def batchnorm_rows(dtype, rounds):
    rng = np.random.default_rng(231)
    x = rng.standard_normal(POOL_SHAPE).astype(dtype)
    C = POOL_SHAPE[1]
    gamma, beta = np.ones(C, dtype), np.zeros(C, dtype)
    dout = rng.standard_normal(POOL_SHAPE).astype(dtype)

    def fresh_param():  # running averages are updated in place; keep them from drifting
        return {"mode": "train", "eps": 1e-5, "momentum": 0.9}

    forward, backward = course_lib.spatial_batchnorm_forward, course_lib.spatial_batchnorm_backward
    _, cache = forward(x, gamma, beta, fresh_param())
    _, np_cache = numpy_layers.spatial_batchnorm_forward_numpy(x, gamma, beta)
    fwd = {
        "course_lib": lambda: forward(x, gamma, beta, fresh_param()),
        "numpy": lambda: numpy_layers.spatial_batchnorm_forward_numpy(x, gamma, beta),
    }
    bwd = {
        "course_lib": lambda: backward(dout, cache),
        "numpy": lambda: numpy_layers.spatial_batchnorm_backward_numpy(dout, np_cache),
    }
    if torch is not None:
        tx, tg, tb = (torch.from_numpy(a).requires_grad_() for a in (x, gamma, beta))
        running_mean, running_var = torch.zeros(C, dtype=tx.dtype), torch.ones(C, dtype=tx.dtype)

        def t_forward():
            return torch_f.batch_norm(tx, running_mean, running_var, tg, tb, training=True,
                                      momentum=0.1, eps=1e-5)
        t_out = t_forward()
        t_dout = torch.from_numpy(dout)
        fwd["pytorch"] = t_forward
        bwd["pytorch"] = lambda: torch.autograd.grad(t_out, (tx, tg, tb), t_dout,
                                                     retain_graph=True)
    rows = []
    for pass_name, variants, n_bytes in (("forward", fwd, 2 * x.nbytes),
                                         ("backward", bwd, 3 * x.nbytes)):
        rows.append({"layer": "spatial batchnorm", "kind": "batchnorm",
                     "dtype": np.dtype(dtype).name, "pass": pass_name, "work": n_bytes,
                     "unit": "GB/s", "stats": time_interleaved(variants, rounds)})
    return rows


# ---- where a conv layer's time goes --------------------------------------------------------------

def conv_profile(case: ConvCase, dtype, repeats=5):
    """CPU time per stage of course_lib's conv forward + backward (one thread only: cProfile sees
    the calling thread), with time.thread_time as the clock, so that time the process spends
    waiting for a core on a busy machine is not counted.

    cProfile gives the time inside the two Numba kernels that loop over the images
    (conv_forward_images, conv_backward_images) and the rest (validation, allocating and zeroing
    dx, the dw sum). Inside the kernels, im2col (run twice: forward and backward) and col2im are
    timed on their own over the same batch; the products are the kernels' time less those.
    """
    import cProfile
    import pstats

    from course_lib.kernels import conv as conv_kernels

    rng = np.random.default_rng(231)
    x = rng.standard_normal((N, case.C, case.H, case.H)).astype(dtype)
    w = (rng.standard_normal((case.F, case.C, case.k, case.k)) * 0.1).astype(dtype)
    b = np.zeros(case.F, dtype)
    conv_param = {"stride": case.stride, "pad": case.pad}
    out, cache = course_lib.conv_forward(x, w, b, conv_param)
    dout = rng.standard_normal(out.shape).astype(dtype)
    course_lib.conv_backward(dout, cache)
    profiler = cProfile.Profile(time.thread_time)
    profiler.enable()
    for _ in range(repeats):
        _, cache = course_lib.conv_forward(x, w, b, conv_param)
        course_lib.conv_backward(dout, cache)
    profiler.disable()
    total = kernels = 0.0
    for (_, _, function), (_, _, own, _, _) in pstats.Stats(profiler).stats.items():
        total += own
        if function in ("conv_forward_images", "conv_backward_images"):
            kernels += own

    Ho = case.out_size
    K = case.C * case.k * case.k
    cols = np.zeros((1, K + 1, Ho * Ho), dtype)
    dx = np.zeros_like(x)

    def unfold():
        for n in range(N):
            conv_kernels.im2col(x, n, case.k, case.k, case.stride, case.pad, Ho, Ho, cols)

    def fold():
        for n in range(N):
            conv_kernels.col2im_add(cols, n, case.k, case.k, case.stride, case.pad, Ho, Ho, dx)

    def cpu_time(fn):
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.thread_time()
            fn()
            times.append(time.thread_time() - t0)
        return float(np.median(times))

    im2col, col2im = 2 * cpu_time(unfold), cpu_time(fold)
    stages = {"im2col": im2col, "col2im": col2im,
              "products (BLAS)": kernels / repeats - im2col - col2im,
              "rest": (total - kernels) / repeats}
    flops = 3 * case.forward_flops
    return {"layer": case.name, "dtype": np.dtype(dtype).name,
            "total_ms": total / repeats * 1e3,
            "stages_ms": {k: v * 1e3 for k, v in stages.items()},
            "blas_gflops": flops / stages["products (BLAS)"] / 1e9,
            "layer_gflops": flops / (total / repeats) / 1e9}


def gemm_cpu_rate(dtype, size=1024, rounds=7):
    """GFLOP/s of np.dot on two square matrices in CPU time of the calling thread (1 thread):
    the matmul rate that conv_profile's CPU-time rates compare with."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    out = np.empty_like(a)
    np.dot(a, a, out=out)
    times = []
    for _ in range(rounds):
        t0 = time.thread_time()
        np.dot(a, a, out=out)
        times.append(time.thread_time() - t0)
    return 2 * size ** 3 / float(np.median(times)) / 1e9


def print_profiles(profiles, gemm):
    """gemm: {dtype: matmul GFLOP/s in CPU time} (gemm_cpu_rate)."""
    print("where course_lib's conv time goes (1 thread, CPU time per forward + backward, "
          "cProfile):\n")
    print("| layer | dtype | total ms | im2col | col2im | products (BLAS) | rest | "
          "BLAS GFLOP/s | layer GFLOP/s | layer / matmul rate (CPU time) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for p in profiles:
        st = p["stages_ms"]
        print(f"| {p['layer']} | {p['dtype']} | {p['total_ms']:.2f} | {st['im2col']:.2f} | "
              f"{st['col2im']:.2f} | {st['products (BLAS)']:.2f} | {st['rest']:.2f} | "
              f"{p['blas_gflops']:.0f} | {p['layer_gflops']:.0f} | "
              f"{p['layer_gflops'] / gemm[p['dtype']]:.0%} |")
    print()


def step_profile(dtype=np.float32, C=3, H=32, repeats=15):
    """CPU time per stage of one ThreeLayerConvNet training step (1 thread, time.thread_time,
    medians of `repeats`), course_lib layer by layer, and PyTorch's forward and its backward +
    Adam step: where a step's time goes on each side."""
    from course_lib.layers.composite import affine_relu_backward, affine_relu_forward

    rng = np.random.default_rng(231)
    X = rng.standard_normal((N, C, H, H)).astype(dtype)
    y = rng.integers(0, 10, N)
    model = course_lib.ThreeLayerConvNet(input_dim=(C, H, H), dtype=dtype, seed=0)
    p = model.params
    conv_param = {"stride": 1, "pad": (model.filter_size - 1) // 2}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    configs = {name: {"learning_rate": 1e-4} for name in p}

    def ours():
        clock = [time.thread_time()]
        a, conv_cache = course_lib.conv_forward(X, p["W1"], p["b1"], conv_param)
        clock.append(time.thread_time())
        r, relu_cache = course_lib.relu_forward(a)
        pooled, pool_cache = course_lib.max_pool_forward(r, pool_param)
        clock.append(time.thread_time())
        hidden, cache2 = affine_relu_forward(pooled, p["W2"], p["b2"])
        scores, cache3 = course_lib.affine_forward(hidden, p["W3"], p["b3"])
        _, dscores = course_lib.softmax_loss(scores, y)
        dhidden, dW3, db3 = course_lib.affine_backward(dscores, cache3)
        dpooled, dW2, db2 = affine_relu_backward(dhidden, cache2)
        clock.append(time.thread_time())
        dr = course_lib.max_pool_backward(dpooled, pool_cache)
        da = course_lib.relu_backward(dr, relu_cache)
        clock.append(time.thread_time())
        _, dW1, db1 = course_lib.conv_backward(da, conv_cache, need_dx=False)
        clock.append(time.thread_time())
        grads = {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2, "W3": dW3, "b3": db3}
        for name, w in p.items():
            p[name], configs[name] = course_lib.adam(w, grads[name], configs[name])
        clock.append(time.thread_time())
        return np.diff(clock)

    stages = ["conv forward", "relu + pool forward", "affine layers + loss, fwd + bwd",
              "pool + relu backward", "conv backward (dw, db)", "Adam update"]
    for _ in range(3):
        ours()
    profile = {"course_lib": dict(zip(stages, np.median([ours() for _ in range(repeats)],
                                                         axis=0) * 1e3, strict=True))}
    if torch is not None:
        net = _torch_three_layer_net(C, H).to(torch.float32 if dtype == np.float32
                                              else torch.float64)
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
        tX, ty = torch.from_numpy(X), torch.from_numpy(y)

        def theirs():
            clock = [time.thread_time()]
            optimizer.zero_grad(set_to_none=True)
            loss = torch_f.cross_entropy(net(tX), ty)
            clock.append(time.thread_time())
            loss.backward()
            clock.append(time.thread_time())
            optimizer.step()
            clock.append(time.thread_time())
            return np.diff(clock)

        for _ in range(3):
            theirs()
        profile["pytorch"] = dict(zip(["forward + loss", "backward", "Adam update"],
                                      np.median([theirs() for _ in range(repeats)],
                                                axis=0) * 1e3, strict=True))
    return profile


def print_step_profile(profile):
    print("where a ThreeLayerConvNet training step's time goes (float32, 3x32x32, batch 64, "
          "1 thread, CPU time, medians):")
    for side, stages in profile.items():
        total = sum(stages.values())
        parts = ", ".join(f"{name} {ms:.2f}" for name, ms in stages.items())
        print(f"  {side}: {total:.2f} ms = {parts}")
    print()


def thread_wake_latency(repeats=50):
    """Seconds for course_lib.kernels.threads.over_batch to run an empty job over THREADS
    threads after 5 ms idle (median, 90th percentile): what every call that splits its batch
    pays before any work, mostly handing the job to a waiting helper thread and getting it back.
    On a virtual machine an idle vCPU is halted and waking it can take a millisecond or more."""
    from course_lib.kernels.threads import over_batch

    times = []
    for _ in range(repeats + 1):
        time.sleep(0.005)
        t0 = time.perf_counter()
        over_batch(lambda lo, hi: None, THREADS, 10**12)
        times.append(time.perf_counter() - t0)
    times = times[1:]  # the first call starts the helpers
    return float(np.median(times)), float(np.percentile(times, 90))


# ---- whole training steps ----------------------------------------------------------------------

def _torch_three_layer_net(C, H):
    """ThreeLayerConvNet's defaults in torch.nn: conv 32 7x7 pad 3 - relu - pool 2x2 - affine 100
    - relu - affine 10."""
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(C, 32, 7, padding=3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(32 * (H // 2) ** 2, 100), nn.ReLU(), nn.Linear(100, 10))


def _torch_conv_net(C, H):
    """ConvNet's defaults in torch.nn: [conv 3x3 pad 1 - spatial batchnorm - relu - pool 2x2] with
    16 then 32 filters - affine 64 - relu - affine 10."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(C, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * (H // 4) ** 2, 64), nn.ReLU(), nn.Linear(64, 10))


MODELS = {  # name: (course_lib model with its defaults, the same model in torch.nn)
    "ThreeLayerConvNet": (lambda dim, dtype: course_lib.ThreeLayerConvNet(
        input_dim=dim, dtype=dtype, seed=0), _torch_three_layer_net),
    "ConvNet": (lambda dim, dtype: course_lib.ConvNet(input_dim=dim, dtype=dtype, seed=0),
                _torch_conv_net),
}
STEP_INPUTS = [(3, 32), (1, 28)]  # (C, H): CIFAR-10 and MNIST images


def training_step_row(model_name, C, H, dtype, rounds):
    """One training step on a batch of 64: forward, backward and an Adam update of every
    parameter; course_lib's model + course_lib.adam against the torch.nn model + torch.optim.Adam.
    """
    rng = np.random.default_rng(231)
    X = rng.standard_normal((N, C, H, H)).astype(dtype)
    y = rng.integers(0, 10, N)
    make_ours, make_theirs = MODELS[model_name]
    model = make_ours((C, H, H), dtype)
    configs = {name: {"learning_rate": 1e-4} for name in model.params}

    def ours():
        _, grads = model.loss(X, y)
        for name, w in model.params.items():
            model.params[name], configs[name] = course_lib.adam(w, grads[name], configs[name])

    variants = {"course_lib": ours}
    if torch is not None:
        net = make_theirs(C, H).to(torch.float32 if dtype == np.float32 else torch.float64)
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
        tX, ty = torch.from_numpy(X), torch.from_numpy(y)

        def theirs():
            optimizer.zero_grad(set_to_none=True)
            torch_f.cross_entropy(net(tX), ty).backward()
            optimizer.step()
        variants["pytorch"] = theirs
    return {"layer": f"{model_name} step {C}x{H}^2", "kind": "step", "model": model_name,
            "dtype": np.dtype(dtype).name, "pass": "fwd+bwd+adam", "work": N, "unit": "img/s",
            "stats": time_interleaved(variants, rounds)}


# ---- compile time ------------------------------------------------------------------------------

_FIRST_CALL_SCRIPT = r"""
import json, time
t0 = time.perf_counter()
import course_lib
t1 = time.perf_counter()
import numpy as np
x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
w = np.ones((4, 3, 3, 3), np.float32)
out, cache = course_lib.conv_forward(x, w, np.zeros(4, np.float32), {"stride": 1, "pad": 1})
t2 = time.perf_counter()
course_lib.conv_backward(out, cache)
t3 = time.perf_counter()
pooled, pool_cache = course_lib.max_pool_forward(out, {"pool_height": 2, "pool_width": 2,
                                                       "stride": 2})
course_lib.max_pool_backward(pooled, pool_cache)
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first_conv_forward": t2 - t1,
                  "first_conv_backward": t3 - t2, "first_max_pool_fwd_bwd": t4 - t3}))
"""


def first_call_times():
    """Seconds for `import course_lib` and first calls, in fresh processes: cold, then warm."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache_dir:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
        for label in ("empty cache", "warm cache"):
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", _FIRST_CALL_SCRIPT], env=env,
                                  cwd=ROOT, capture_output=True, text=True, check=True)
            wall = time.perf_counter() - t0
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result["process_wall"] = wall
            results[label] = result
    return results


# ---- environment -------------------------------------------------------------------------------

def environment():
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "not initialised (no parallel Numba kernel has run)"
    blas = []
    try:
        import threadpoolctl
        blas = [{k: info.get(k) for k in ("internal_api", "version", "architecture",
                                          "num_threads", "prefix")}
                for info in threadpoolctl.threadpool_info()]
    except ImportError:
        pass
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "python": platform.python_version(), "numpy": np.__version__,
        "numba": numba.__version__, "scipy": _version("scipy"),
        "torch": torch.__version__ if torch is not None else None,
        "cpu": cpu, "cpu_count": os.cpu_count(),
        "threads": THREADS,
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                               "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                                               "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                               "OPENBLAS_THREAD_TIMEOUT")},
        "numba_num_threads": numba.get_num_threads(),
        "numba_threading_layer": layer,
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "blas": blas,
    }


def _version(module):
    try:
        return __import__(module).__version__
    except ImportError:
        return None


# ---- report ------------------------------------------------------------------------------------

_UNIT_SCALE = {"GFLOP/s": 1e9, "GB/s": 1e9, "img/s": 1.0}


def print_table(rows):
    print(f"{'layer':<26}{'dtype':<9}{'pass':<13}{'implementation':<26}{'median ms':>10}"
          f"{'IQR ms':>9}{'rate':>10} {'unit':<8}{'time / course_lib':>18}")
    for row in rows:
        ours = row["stats"]["course_lib"]["median"]
        for impl, s in row["stats"].items():
            label = impl
            if impl == "naive":
                label = f"naive loops (N={row['naive_batch']}, x{N // row['naive_batch']})"
            rate = row["work"] / s["median"] / _UNIT_SCALE[row["unit"]]
            ratio = "" if impl == "course_lib" else f"{s['median'] / ours:.2f}x"
            print(f"{row['layer']:<26}{row['dtype']:<9}{row['pass']:<13}{label:<26}"
                  f"{s['median'] * 1e3:>10.2f}{s['iqr'] * 1e3:>9.2f}{rate:>10.1f} "
                  f"{row['unit']:<8}{ratio:>18}")
        print()


def _total(rows, layer, dtype, impl):
    """Sum of the medians of one implementation over a layer's passes (forward + backward, or
    the one training-step row), or None when it was not measured."""
    parts = [r["stats"].get(impl) for r in rows if r["layer"] == layer and r["dtype"] == dtype]
    if not parts or None in parts:
        return None
    return sum(p["median"] for p in parts)


def _groups(rows):
    """(layer, dtype, kind, first row) of each measured layer or step, in table order."""
    seen = {}
    for r in rows:
        seen.setdefault((r["layer"], r["dtype"]), r)
    return [(layer, dtype, r["kind"], r) for (layer, dtype), r in seen.items()]


def print_summary(rows, gemm):
    """The headline as a markdown table: forward + backward (or one step) per layer."""
    print(f"summary ({THREADS} thread(s)): medians, forward + backward (training steps: forward, "
          "backward and Adam update)\n")
    print("| layer | dtype | course_lib ms | PyTorch ms | ratio | course_lib rate | "
          "share of matmul rate |")
    print("|---|---|---|---|---|---|---|")
    for layer, dtype, kind, first in _groups(rows):
        ours = _total(rows, layer, dtype, "course_lib")
        theirs = _total(rows, layer, dtype, "pytorch")
        work = sum(r["work"] for r in rows if r["layer"] == layer and r["dtype"] == dtype)
        rate = work / ours / _UNIT_SCALE[first["unit"]]
        share = f"{rate / gemm[dtype]:.0%}" if kind == "conv" else ""
        versus = (f"{theirs * 1e3:.2f} | {ours / theirs:.2f}" if theirs is not None else
                  "- | -")
        print(f"| {layer} | {dtype} | {ours * 1e3:.2f} | {versus} | {rate:.1f} {first['unit']} "
              f"| {share} |")
    print()


# Issue 14's targets: course_lib's time / PyTorch's time (forward + backward) at most this.
RATIO_TARGETS = {("conv", "float32"): 0.9, ("conv", "float64"): 0.6,
                 ("max pool", "float32"): 0.8, ("max pool", "float64"): 0.8,
                 ("batchnorm", "float32"): 0.5, ("batchnorm", "float64"): 0.5}
STEP_TARGET = ("ThreeLayerConvNet", "float32", 1.0)
GEMM_SHARE_TARGET = 0.6  # float32 conv with C >= 16
FIRST_CALL_TARGET = 1.0  # seconds, import + first conv call with a warm cache


def check_targets(rows, gemm, first_calls):
    checks = []

    def add(description, ok, detail):
        checks.append({"target": description, "met": ok, "detail": detail})

    for layer, dtype, kind, first in _groups(rows):
        ours = _total(rows, layer, dtype, "course_lib")
        theirs = _total(rows, layer, dtype, "pytorch")
        limit = RATIO_TARGETS.get((kind, dtype))
        if kind == "step":
            model, step_dtype, step_limit = STEP_TARGET
            limit = step_limit if (first["model"], dtype) == (model, step_dtype) else None
        what = "one step" if kind == "step" else "fwd+bwd"
        if theirs is None:
            add(f"{layer} {dtype}: vs PyTorch", None, "torch not installed")
        else:
            detail = f"{ours * 1e3:.2f} ms vs {theirs * 1e3:.2f} ms ({ours / theirs:.2f}x)"
            if limit is None:
                add(f"{layer} {dtype}: {what} vs PyTorch (info)", None, detail)
            else:
                add(f"{layer} {dtype}: {what} <= {limit}x PyTorch", ours <= limit * theirs,
                    detail)
        if kind == "conv":
            rate = 3 * first["work"] / ours / 1e9
            detail = (f"{rate:.1f} GFLOP/s = {rate / gemm[dtype]:.0%} of np.dot 2048^2 "
                      f"({gemm[dtype]:.1f} GFLOP/s)")
            if dtype == "float32" and first["C"] >= 16:
                add(f"{layer} float32: >= {GEMM_SHARE_TARGET:.0%} of the matmul rate",
                    rate >= GEMM_SHARE_TARGET * gemm[dtype], detail)
            else:
                add(f"{layer} {dtype}: share of the matmul rate (info)", None, detail)
            naive = _total(rows, layer, dtype, "naive")
            add(f"{layer} {dtype}: fwd+bwd >= 100x faster than naive loops", naive / ours >= 100,
                f"{naive / ours:.0f}x")
    if first_calls:
        warm = first_calls["warm cache"]
        t = warm["import"] + warm["first_conv_forward"]
        add(f"import course_lib + first conv call, warm cache, < {FIRST_CALL_TARGET} s",
            t < FIRST_CALL_TARGET, f"{t:.2f} s")
    return checks


def _progress(what: str) -> None:
    """What is being measured now, on stderr (the tables come at the end of a long run)."""
    print(f"  measuring {what} ...", file=sys.stderr, flush=True)


def _second_table_command():
    """This script again with 1 thread (thread pools are fixed when the libraries load)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--threads", "1",
               "--no-compile-time"]
    return (command + (["--quick"] if ARGS.quick else [])
            + (["--blas-autodetect"] if ARGS.blas_autodetect else []))


def main():
    if ARGS.short:
        rounds, naive_rounds = 7, 1
    else:
        rounds, naive_rounds = (5, 1) if ARGS.quick else (15, 3)
    load_before = os.getloadavg()
    print(f"course_lib benchmarks: {THREADS} thread(s) on a machine with {_machine_cores()} "
          f"core(s), load average {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f} ({'short' if ARGS.short else 'quick' if ARGS.quick else 'full'}"
          f" run: {rounds} interleaved rounds)")
    if load_before[0] > 0.5:
        print("  note: the machine is busy (load > 0.5); expect noisy numbers")
    env = environment()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "course_lib", "benchmarks"],
                           cwd=ROOT, capture_output=True, text=True).stdout.strip()
    env["commit"] = commit + (" (with uncommitted changes in course_lib/benchmarks)"
                              if dirty else "")
    print(f"  commit {env['commit']}")
    print(f"  python {env['python']}, numpy {env['numpy']}, numba {env['numba']}, "
          f"scipy {env['scipy']}, torch {env['torch'] or 'not installed'}; cpu {env['cpu']}")
    pools = ", ".join(f"{p['internal_api']} {p['version'] or ''} {p['architecture'] or ''} "
                      f"({p['num_threads']} thr)" for p in env["blas"]) or "unknown"
    print(f"  threads: {env['env']}, numba {env['numba_num_threads']}, torch "
          f"{env['torch_threads']}; thread pools: {pools}")
    if os.environ.get("OPENBLAS_CORETYPE"):
        # OpenBLAS then uses these kernels whatever the CPU has; PyTorch (MKL, oneDNN) is not
        # affected. See benchmarks/README.md.
        print(f"  note: OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} is set: OpenBLAS "
              "(course_lib's products) uses those kernels instead of detecting the CPU; "
              "--blas-autodetect measures without it")
    print("  naive loops run on a reduced batch (N shown) and are scaled to N=64 per image; "
          "PyTorch: torch.nn.functional with autograd.grad for backward; training steps: "
          "torch.nn + torch.optim.Adam.\n")

    wake = thread_wake_latency()
    env["thread_wake_seconds"] = {"median": wake[0], "p90": wake[1]}
    print(f"  an empty job split over {THREADS} thread(s) after 5 ms idle: median "
          f"{wake[0] * 1e6:.0f} us, 90th percentile {wake[1] * 1e6:.0f} us (paid by every call "
          "split over threads)")
    gemm = {"float32": gemm_rate(np.float32), "float64": gemm_rate(np.float64)}
    print(f"machine matmul rate (np.dot 2048x2048, {THREADS} thread(s)): float32 "
          f"{gemm['float32']:.1f} GFLOP/s, float64 {gemm['float64']:.1f} GFLOP/s\n")

    cases = [c for c in CONV_CASES if c.headline or not ARGS.short]
    steps = [(m, C, H) for m in MODELS for C, H in STEP_INPUTS
             if not ARGS.short or (m, C, H) == ("ThreeLayerConvNet", 3, 32)]
    rows = []
    for dtype in (np.float32, np.float64):
        name = np.dtype(dtype).name
        for case in cases:
            _progress(f"{case.name} {name}")
            rows += conv_rows(case, dtype, rounds, naive_rounds)
        _progress(f"max pool, batch norm {name}")
        rows += pool_rows(dtype, rounds, naive_rounds)
        rows += batchnorm_rows(dtype, rounds)
        for model_name, C, H in steps:
            _progress(f"{model_name} step {C}x{H}^2 {name}")
            rows.append(training_step_row(model_name, C, H, dtype, rounds))
    env["numba_threading_layer"] = environment()["numba_threading_layer"]  # after the kernels
    print_table(rows)
    print_summary(rows, gemm)
    profiles, step = [], None
    if THREADS == 1 and not ARGS.short:
        profiled = [c for c in CONV_CASES if c.headline or c.k == 7 and c.H == 32]
        profiles = [conv_profile(c, dtype) for dtype in (np.float32, np.float64)
                    for c in profiled]
        gemm_cpu = {"float32": gemm_cpu_rate(np.float32), "float64": gemm_cpu_rate(np.float64)}
        print(f"matmul rate in CPU time (np.dot 1024x1024, 1 thread): float32 "
              f"{gemm_cpu['float32']:.1f} GFLOP/s, float64 {gemm_cpu['float64']:.1f} GFLOP/s")
        print_profiles(profiles, gemm_cpu)
        step = step_profile()
        print_step_profile(step)

    first_calls = None if ARGS.no_compile_time else first_call_times()
    if first_calls:
        print("import course_lib and first calls in a fresh process (seconds):")
        for label, r in first_calls.items():
            print(f"  {label:<12} import {r['import']:.2f}  first conv_forward "
                  f"{r['first_conv_forward']:.2f}  first conv_backward "
                  f"{r['first_conv_backward']:.2f}  first max pool fwd+bwd "
                  f"{r['first_max_pool_fwd_bwd']:.2f}  (process {r['process_wall']:.2f})")
        print()

    checks = check_targets(rows, gemm, first_calls)
    print(f"targets ({THREADS} thread(s)):")
    for c in checks:
        mark = {True: "MET    ", False: "NOT MET", None: "info   "}[c["met"]]
        print(f"  [{mark}] {c['target']}: {c['detail']}")
    load_after = os.getloadavg()
    print(f"\nload average at the end: {load_after[0]:.2f} {load_after[1]:.2f} "
          f"{load_after[2]:.2f}; Numba threading layer: {env['numba_threading_layer']}")

    results_dir = HERE / "results"
    results_dir.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    label = ("-short" if ARGS.short else "-quick" if ARGS.quick else "") + (
        "-blas-autodetect" if ARGS.blas_autodetect else "")
    path = results_dir / f"bench-{stamp}-{THREADS}thr{label}.json"
    path.write_text(json.dumps({
        "environment": env, "load_before": load_before, "load_after": load_after,
        "rounds": rounds, "naive_rounds": naive_rounds, "gemm_gflops": gemm, "rows": rows,
        "first_calls": first_calls, "targets": checks, "conv_profiles": profiles,
        "step_profile": step}, indent=1))
    print(f"results written to {path.relative_to(ROOT)}")

    if not (ARGS.threads or ARGS.no_single_thread or ARGS.short):
        print("\n" + "=" * 100 + "\nsecond table: 1 thread on both sides\n", flush=True)
        subprocess.run(_second_table_command(), check=True)


if __name__ == "__main__":
    main()
