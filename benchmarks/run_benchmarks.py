"""Speed of course_lib's conv, max pool and batch norm against naive loops, NumPy and PyTorch.

    python benchmarks/run_benchmarks.py [--quick] [--threads N] [--no-compile-time]

Prints a table (medians after warm-up, IQR, GFLOP/s or GB/s, ratios), checks the targets, and
writes everything as JSON into benchmarks/results/. Variants of one measurement are timed
interleaved (round robin), so a burst of load from another process hits all of them alike.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys


def _parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (about 1 minute)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for BLAS, Numba and PyTorch (default: "
                             "OPENBLAS_NUM_THREADS from the environment, else 1)")
    parser.add_argument("--no-compile-time", action="store_true",
                        help="skip the cold/warm import-and-first-call measurement")
    return parser.parse_args()


ARGS = _parse_args() if __name__ == "__main__" else None
THREADS = (ARGS.threads if ARGS and ARGS.threads else
           int(os.environ.get("OPENBLAS_NUM_THREADS", "1")))
# Thread counts must be fixed before NumPy, Numba or PyTorch load their thread pools.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = str(THREADS)

import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
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

N = 64
CONV_CASES = [(3, 32), (16, 32), (32, 32)]  # (C, F) on 32x32 images, 3x3 kernels, pad 1
POOL_SHAPE = (64, 32, 32, 32)


# ---- timing ------------------------------------------------------------------------------------

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
                t0 = time.perf_counter()
                variants[name]()
                samples[name].append(time.perf_counter() - t0)
    stats = {}
    for name, s in samples.items():
        q1, med, q3 = np.percentile(s, [25, 50, 75])
        stats[name] = {"median": float(med), "iqr": float(q3 - q1), "n": len(s)}
    return stats


def gemm_rate(dtype, size=2048, rounds=7):
    """GFLOP/s of np.dot on two large square matrices: the machine's matrix-multiply rate."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    out = np.empty_like(a)
    t = time_interleaved({"gemm": lambda: np.dot(a, b, out=out)}, rounds)["gemm"]["median"]
    return 2 * size ** 3 / t / 1e9


# ---- the measured layers -----------------------------------------------------------------------

def conv_variants(x, w, b, dout, n_naive):
    """{implementation: fn} for the forward and the backward pass of one conv layer."""
    conv_param = {"stride": 1, "pad": 1}
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
        t_out = torch_f.conv2d(tx, tw, tb, stride=1, padding=1)
        t_dout = torch.from_numpy(dout)
        fwd["pytorch"] = lambda: torch_f.conv2d(tx, tw, tb, stride=1, padding=1)
        bwd["pytorch"] = lambda: torch.autograd.grad(t_out, (tx, tw, tb), t_dout,
                                                     retain_graph=True)
    return fwd, bwd


def _scale_naive(stats, n_naive):
    stats["naive"] = {k: (v * N / n_naive if k != "n" else v) for k, v in stats["naive"].items()}
    return stats


def conv_rows(dtype, rounds, naive_rounds):
    rows = []
    rng = np.random.default_rng(231)
    n_naive = 1
    for C, F in CONV_CASES:
        x = rng.standard_normal((N, C, 32, 32)).astype(dtype)
        w = (rng.standard_normal((F, C, 3, 3)) * 0.1).astype(dtype)
        b = rng.standard_normal(F).astype(dtype)
        dout = rng.standard_normal((N, F, 32, 32)).astype(dtype)
        fwd, bwd = conv_variants(x, w, b, dout, n_naive)
        flops_fwd = 2 * N * F * 32 * 32 * C * 9
        for pass_name, variants, flops in (("forward", fwd, flops_fwd),
                                           ("backward", bwd, 2 * flops_fwd)):
            stats = time_interleaved(variants, rounds, limited={"naive": naive_rounds})
            rows.append({"layer": f"conv {C}->{F}", "dtype": np.dtype(dtype).name,
                         "pass": pass_name, "work": flops, "unit": "GFLOP/s",
                         "stats": _scale_naive(stats, n_naive), "naive_batch": n_naive})
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
        rows.append({"layer": "max pool 2x2/2", "dtype": np.dtype(dtype).name, "pass": pass_name,
                     "work": bytes_moved[pass_name], "unit": "GB/s",
                     "stats": _scale_naive(stats, n_naive), "naive_batch": n_naive})
    return rows


def batchnorm_rows(dtype, rounds):
    forward = getattr(course_lib, "spatial_batchnorm_forward", None)
    backward = getattr(course_lib, "spatial_batchnorm_backward", None)
    if forward is None or backward is None:
        return [], "spatial_batchnorm_forward/backward not in course_lib yet: rows skipped"
    rng = np.random.default_rng(231)
    x = rng.standard_normal(POOL_SHAPE).astype(dtype)
    C = POOL_SHAPE[1]
    gamma, beta = np.ones(C, dtype), np.zeros(C, dtype)
    dout = rng.standard_normal(POOL_SHAPE).astype(dtype)

    def fresh_param():  # running averages are updated in place; keep them from drifting
        return {"mode": "train", "eps": 1e-5, "momentum": 0.9}

    try:
        _, cache = forward(x, gamma, beta, fresh_param())
    except Exception as error:  # another helper's layer may be half-done
        return [], f"spatial_batchnorm_forward failed ({error!r}): rows skipped"
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
        rows.append({"layer": "spatial batchnorm", "dtype": np.dtype(dtype).name,
                     "pass": pass_name, "work": n_bytes, "unit": "GB/s",
                     "stats": time_interleaved(variants, rounds)})
    return rows, None


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
                                               "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")},
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

def print_table(rows):
    print(f"{'layer':<18}{'dtype':<9}{'pass':<10}{'implementation':<26}{'median ms':>10}"
          f"{'IQR ms':>9}{'rate':>10} {'unit':<8}{'time / course_lib':>18}")
    for row in rows:
        ours = row["stats"]["course_lib"]["median"]
        for impl, s in row["stats"].items():
            label = impl
            if impl == "naive":
                label = f"naive loops (N={row['naive_batch']}, x{N // row['naive_batch']})"
            rate = row["work"] / s["median"] / 1e9
            ratio = "" if impl == "course_lib" else f"{s['median'] / ours:.2f}x"
            print(f"{row['layer']:<18}{row['dtype']:<9}{row['pass']:<10}{label:<26}"
                  f"{s['median'] * 1e3:>10.2f}{s['iqr'] * 1e3:>9.2f}{rate:>10.1f} "
                  f"{row['unit']:<8}{ratio:>18}")
        print()


def _total(rows, layer, dtype, impl):
    """forward + backward median of one implementation, or None."""
    parts = [r["stats"].get(impl) for r in rows if r["layer"] == layer and r["dtype"] == dtype]
    if len(parts) != 2 or None in parts:
        return None
    return sum(p["median"] for p in parts)


def check_targets(rows, gemm, first_calls):
    checks = []

    def add(description, ok, detail):
        checks.append({"target": description, "met": ok, "detail": detail})

    for C, F in CONV_CASES:
        layer = f"conv {C}->{F}"
        for dtype in ("float32", "float64"):
            ours = _total(rows, layer, dtype, "course_lib")
            naive = _total(rows, layer, dtype, "naive")
            add(f"{layer} {dtype}: fwd+bwd >= 100x faster than naive loops", naive / ours >= 100,
                f"{naive / ours:.0f}x")
            theirs = _total(rows, layer, dtype, "pytorch")
            if theirs is None:
                add(f"{layer} {dtype}: vs PyTorch", None, "torch not installed")
            elif dtype == "float64":
                add(f"{layer} float64: fwd+bwd faster than PyTorch", ours < theirs,
                    f"{ours * 1e3:.1f} ms vs {theirs * 1e3:.1f} ms ({ours / theirs:.2f}x)")
            else:
                add(f"{layer} float32: fwd+bwd within 1.25x of PyTorch", ours <= 1.25 * theirs,
                    f"{ours * 1e3:.1f} ms vs {theirs * 1e3:.1f} ms ({ours / theirs:.2f}x)")
            flops = 3 * 2 * N * F * 32 * 32 * C * 9
            add(f"{layer} {dtype}: share of the machine's GEMM rate (info)", None,
                f"{flops / ours / 1e9:.1f} GFLOP/s = {flops / ours / 1e9 / gemm[dtype]:.0%} of "
                f"np.dot 2048^2 ({gemm[dtype]:.1f} GFLOP/s)")
    for layer in ("max pool 2x2/2", "spatial batchnorm"):
        for dtype in ("float32", "float64"):
            ours = _total(rows, layer, dtype, "course_lib")
            theirs = _total(rows, layer, dtype, "pytorch")
            if ours is None:
                add(f"{layer} {dtype}: fwd+bwd no slower than PyTorch", None, "not measured")
            elif theirs is None:
                add(f"{layer} {dtype}: fwd+bwd no slower than PyTorch", None,
                    "torch not installed")
            else:
                add(f"{layer} {dtype}: fwd+bwd no slower than PyTorch", ours <= theirs,
                    f"{ours * 1e3:.2f} ms vs {theirs * 1e3:.2f} ms ({ours / theirs:.2f}x)")
    if first_calls:
        warm = first_calls["warm cache"]
        t = warm["import"] + warm["first_conv_forward"]
        add("import course_lib + first conv call, warm cache, < 1.5 s", t < 1.5, f"{t:.2f} s")
    return checks


def main():
    rounds, naive_rounds = (5, 1) if ARGS.quick else (15, 3)
    load_before = os.getloadavg()
    print(f"course_lib benchmarks: {THREADS} thread(s), load average {load_before[0]:.2f} "
          f"{load_before[1]:.2f} {load_before[2]:.2f} "
          f"({'quick' if ARGS.quick else 'full'} run: {rounds} interleaved rounds)")
    if load_before[0] > 0.5:
        print("  note: the machine is busy (load > 0.5); expect noisy numbers")
    env = environment()
    print(f"  python {env['python']}, numpy {env['numpy']}, numba {env['numba']}, "
          f"scipy {env['scipy']}, torch {env['torch'] or 'not installed'}; cpu {env['cpu']}")
    pools = ", ".join(f"{p['internal_api']} {p['version'] or ''} ({p['num_threads']} thr)"
                      for p in env["blas"]) or "unknown"
    print(f"  threads: {env['env']}, numba {env['numba_num_threads']}, torch "
          f"{env['torch_threads']}; thread pools: {pools}")
    print("  naive loops run on a reduced batch (N shown) and are scaled to N=64 per image; "
          "PyTorch: torch.nn.functional with autograd.grad for backward.\n")

    gemm = {"float32": gemm_rate(np.float32), "float64": gemm_rate(np.float64)}
    print(f"machine GEMM rate (np.dot 2048x2048): float32 {gemm['float32']:.1f} GFLOP/s, "
          f"float64 {gemm['float64']:.1f} GFLOP/s\n")

    rows, notes = [], []
    for dtype in (np.float32, np.float64):
        rows += conv_rows(dtype, rounds, naive_rounds)
    for dtype in (np.float32, np.float64):
        rows += pool_rows(dtype, rounds, naive_rounds)
    for dtype in (np.float32, np.float64):
        bn, note = batchnorm_rows(dtype, rounds)
        rows += bn
        if note and note not in notes:
            notes.append(note)
    env["numba_threading_layer"] = environment()["numba_threading_layer"]  # after the kernels
    print_table(rows)
    for note in notes:
        print(f"note: {note}")

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
    print("targets:")
    for c in checks:
        mark = {True: "MET   ", False: "NOT MET", None: "info  "}[c["met"]]
        print(f"  [{mark}] {c['target']}: {c['detail']}")
    load_after = os.getloadavg()
    print(f"\nload average at the end: {load_after[0]:.2f} {load_after[1]:.2f} "
          f"{load_after[2]:.2f}; Numba threading layer: {env['numba_threading_layer']}")

    results_dir = HERE / "results"
    results_dir.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = results_dir / f"bench-{stamp}-{THREADS}thr{'-quick' if ARGS.quick else ''}.json"
    path.write_text(json.dumps({
        "environment": env, "load_before": load_before, "load_after": load_after,
        "rounds": rounds, "naive_rounds": naive_rounds, "gemm_gflops": gemm, "rows": rows,
        "first_calls": first_calls, "targets": checks, "notes": notes}, indent=1))
    print(f"results written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
