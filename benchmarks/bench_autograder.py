"""Autograder speed: the trusted runner vs stock `nbgrader autograde`, and batch throughput.

    .venv/bin/python benchmarks/bench_autograder.py [--students 8] [--conv 20] [--jobs 2]

1. Per-submission time on the same notebooks (the a2 subset: affine, ReLU, softmax and SVM
   losses, graded by the frozen fixture suite of tests/fixtures/autograder/suites):
   * stock nbgrader: nbgrader's own autograde, whose hidden test cells run equivalent checks
     (course_lib as the oracle, the same cases) inside the student's kernel;
   * nbgrader + runner: `nbgrader autograde` with the kit's nbgrader_config.py;
   * autograder CLI: `autograder grade --jobs 1` on the same notebooks.
   Two numbers per row: the whole command's wall time divided by the number of notebooks
   (start-up shared out, as an instructor experiences it), and the marginal cost of one more
   notebook, (T_N - T_1) / (N - 1), which is what grows with the size of the class.
2. Throughput with --jobs N on the conv assignment (a3_convolutional_nets, reference solution
   of tests/fixtures/assignments) when that suite exists, else on the a2 subset (the table
   says which), extrapolated to 200 submissions (target: under 10 minutes on 2 cores).

3. Scale (`--scale 200`): the same a3 batch graded with `--jobs 2` and with
   `--scheduler local:2` (a Dask LocalCluster of 2 workers on 127.0.0.1): seconds per
   submission, Dask's overhead per submission (cluster start-up included, and without it:
   the marginal cost from a second, smaller batch), and a projection of how many workers
   like these grade 5,000 submissions in 10 minutes.
   `--layers-only` grades every a3 function except the training task (train_digits_convnet,
   10-50 s of training per submission), and `--functions NAME,...` only the functions named:
   both pass `--function NAME` for each to `autograder grade`, so 200 submissions take
   minutes, not most of an hour; the table says which functions were graded.

Prints a table and writes benchmarks/results/autograder.json (autograder_scale.json for
--scale; autograder_scale_layers.json with --layers-only or --functions). Not a test:
timings depend on the machine and on its load (shown in the table).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

KIT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(KIT / "tests"))
from fixtures.autograder.support import (  # noqa: E402
    FIXTURE_SUITES,
    SOURCE_NOTEBOOK,
    student_notebook,
    write_notebook,
)

A2 = "a2_fully_connected"
A3 = "a3_convolutional_nets"
A3_TRAINING = "train_digits_convnet"
A3_FIXTURES = KIT / "tests" / "fixtures" / "assignments" / A3
A3_SOLUTION = next((p for p in (A3_FIXTURES / "solution.py", A3_FIXTURES / "reference_solution.py")
                    if p.is_file()), A3_FIXTURES / "solution.py")

# The hidden checks a stock nbgrader notebook would run in the student's kernel: the same
# seeds, shapes and tolerances as the fixture suite, course_lib as the oracle.
STOCK_CHECKS = {
    "affine_forward": """
from course_lib import affine_forward as _ref
for _seed, _shape, _m in [(2101, (6, 5), 4), (2102, (3, 2, 4, 5), 7), (2103, (4, 3, 5), 6)]:
    _rng = np.random.default_rng(_seed)
    _d = int(np.prod(_shape[1:]))
    _x = _rng.standard_normal(_shape)
    _w = _rng.standard_normal((_d, _m)) / np.sqrt(_d)
    _b = _rng.standard_normal(_m)
    np.testing.assert_allclose(affine_forward(_x, _w, _b)[0], _ref(_x, _w, _b)[0],
                               rtol=1e-6, atol=1e-9)
""",
    "affine_backward": """
from course_lib import affine_forward as _reff, affine_backward as _refb
for _seed, _shape, _m in [(2201, (5, 6), 3), (2202, (2, 3, 2, 4), 5), (2203, (4, 5), 3)]:
    _rng = np.random.default_rng(_seed)
    _d = int(np.prod(_shape[1:]))
    _x, _w, _b = _rng.standard_normal(_shape), _rng.standard_normal((_d, _m)), np.zeros(_m)
    _dout = _rng.standard_normal((_shape[0], _m))
    for _got, _want in zip(affine_backward(_dout, affine_forward(_x, _w, _b)[1]),
                           _refb(_dout, _reff(_x, _w, _b)[1])):
        np.testing.assert_allclose(_got, _want, rtol=1e-6, atol=1e-9)
""",
    "relu_forward": """
from course_lib import relu_forward as _ref
for _seed, _shape in [(2301, (7, 9)), (2302, (2, 3, 4, 5)), (2303, (6, 6))]:
    _x = np.random.default_rng(_seed).standard_normal(_shape)
    _copy = _x.copy()
    np.testing.assert_allclose(relu_forward(_x)[0], _ref(_copy)[0], rtol=1e-6, atol=1e-9)
    assert np.array_equal(_x, _copy)
""",
    "relu_backward": """
from course_lib import relu_forward as _reff, relu_backward as _refb
for _seed, _shape in [(2401, (5, 8)), (2403, (3, 4, 5))]:
    _rng = np.random.default_rng(_seed)
    _x, _dout = _rng.standard_normal(_shape), _rng.standard_normal(_shape)
    np.testing.assert_allclose(relu_backward(_dout, relu_forward(_x)[1]),
                               _refb(_dout, _reff(_x)[1]), rtol=1e-6, atol=1e-9)
""",
    "softmax_loss": """
from course_lib import softmax_loss as _ref
for _seed, _n, _c, _scale in [(3101, 8, 5, 1.0), (3102, 6, 4, 800.0), (3103, 1, 7, 1.0),
                              (3104, 5, 3, 1.0)]:
    _rng = np.random.default_rng(_seed)
    _x, _y = _scale * _rng.standard_normal((_n, _c)), _rng.integers(0, _c, size=_n)
    for _got, _want in zip(softmax_loss(_x, _y), _ref(_x, _y)):
        np.testing.assert_allclose(_got, _want, rtol=1e-6, atol=1e-9)
""",
    "svm_loss": """
from course_lib import svm_loss as _ref
for _seed, _n, _c, _scale in [(3201, 9, 6, 1.0), (3202, 30, 3, 2.0), (3203, 5, 4, 1.0)]:
    _rng = np.random.default_rng(_seed)
    _x, _y = _scale * _rng.standard_normal((_n, _c)), _rng.integers(0, _c, size=_n)
    for _got, _want in zip(svm_loss(_x, _y), _ref(_x, _y)):
        np.testing.assert_allclose(_got, _want, rtol=1e-6, atol=1e-9)
""",
}


def env() -> dict:
    bin_dir = str(Path(sys.executable).parent)
    return dict(os.environ, AUTOGRADER_SUITES_PATH=str(FIXTURE_SUITES),
                PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
                OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")


def run(args: list[str], cwd: Path, environment: dict | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=environment or env(), capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return seconds


def stock_source() -> nbformat.NotebookNode:
    """The fixture source notebook with in-kernel hidden checks in its test cells."""
    nb = nbformat.read(SOURCE_NOTEBOOK, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        function = grade_id.removeprefix("test_")
        if grade_id.startswith("test_") and function in STOCK_CHECKS:
            visible = cell.source.split("### BEGIN HIDDEN TESTS")[0]
            cell.source = (visible + "### BEGIN HIDDEN TESTS" + STOCK_CHECKS[function]
                           + "### END HIDDEN TESTS\n")
    return nb


def make_course(root: Path, stock: bool, students: int) -> list[Path]:
    source = root / "assignments" / "source" / A2 / f"{A2}.ipynb"
    if stock:
        (root / "nbgrader_config.py").write_text(
            "c = get_config()  # noqa: F821\n"
            "c.CourseDirectory.source_directory = 'assignments/source'\n"
            "c.CourseDirectory.release_directory = 'assignments/release'\n")
        write_notebook(stock_source(), source)
    else:
        shutil.copy(KIT / "nbgrader_config.py", root / "nbgrader_config.py")
        source.parent.mkdir(parents=True)
        shutil.copy(SOURCE_NOTEBOOK, source)
    run([sys.executable, "-m", "nbgrader", "generate_assignment", A2], root)
    release = root / "assignments" / "release" / A2 / f"{A2}.ipynb"
    paths = []
    for i in range(students):
        fixture = "reference.py" if i % 2 == 0 else "buggy.py"
        path = root / "submitted" / f"student{i:03d}" / A2 / f"{A2}.ipynb"
        paths.append(write_notebook(student_notebook(fixture, release), path))
    return paths


def compare_with_stock(students: int) -> dict:
    """Seconds per notebook, whole command / N and marginal ((T_N - T_1) / (N - 1))."""
    rows = {}
    with tempfile.TemporaryDirectory(prefix="bench-autograder-") as tmp:
        for stock in (True, False):
            root = Path(tmp) / ("stock" if stock else "runner")
            root.mkdir()
            paths = make_course(root, stock, students)
            one = run([sys.executable, "-m", "nbgrader", "autograde", A2, "--student",
                       "student000"], root)
            every = run([sys.executable, "-m", "nbgrader", "autograde", A2, "--force"], root)
            name = "stock nbgrader autograde" if stock else "nbgrader autograde + runner"
            rows[name] = {"whole": every / students,
                          "marginal": (every - one) / max(students - 1, 1)}
            if not stock:
                cli = [sys.executable, "-m", "autograder", "grade", "--assignment", A2,
                       "--jobs", "1", "--no-progress", "--force", "--out", str(root / "cli"),
                       "--source", str(root / "assignments" / "source")]
                one = run([*cli, str(paths[0])], root)
                every = run([*cli, *map(str, paths)], root)
                rows["autograder grade --jobs 1"] = {
                    "whole": every / students, "marginal": (every - one) / max(students - 1, 1)}
    return rows


def throughput(count: int, jobs: int) -> dict:
    from autograder.suites import available_suites
    conv = A3 in available_suites() and A3_SOLUTION.is_file()
    assignment = A3 if conv else A2
    solution = A3_SOLUTION if conv else KIT / "tests/fixtures/autograder/submissions/reference.py"
    environment = env()
    if conv:
        environment.pop("AUTOGRADER_SUITES_PATH")
    with tempfile.TemporaryDirectory(prefix="bench-autograder-") as tmp:
        folder = Path(tmp) / "subs"
        folder.mkdir()
        for i in range(count):
            shutil.copy(solution, folder / f"student{i:03d}.py")
        seconds = run([sys.executable, "-m", "autograder", "grade", "--assignment", assignment,
                       "--jobs", str(jobs), "--no-progress", "--out", str(Path(tmp) / "out"),
                       str(folder)], KIT, environment)
        scores = [json.loads(p.read_text())["score"] for p in (Path(tmp) / "out").glob("s*.json")]
    return {"assignment": assignment, "submissions": count, "jobs": jobs, "seconds": seconds,
            "per_submission": seconds / count, "projected_200": 200 * seconds / count,
            "all_full_marks": len(set(scores)) == 1, "conv": conv}


def print_throughput(batch: dict) -> None:
    label = "conv assignment (a3)" if batch["conv"] else "a2 subset (no conv suite available)"
    print(f"\nThroughput, {batch['submissions']} submissions of the {label}, "
          f"--jobs {batch['jobs']} (load average {os.getloadavg()[0]:.1f}):")
    print(f"  {batch['seconds']:.1f} s in all, {batch['per_submission']:.2f} s per submission, "
          f"projected 200 submissions: {batch['projected_200'] / 60:.1f} min "
          f"(target < 10 min){'' if batch['all_full_marks'] else '  [scores differ!]'}")


def grade_batch_seconds(count: int, engine: list[str], functions: tuple[str, ...] = ()
                        ) -> tuple[float, bool]:
    """Wall time of `autograder grade <engine>` on `count` copies of the a3 solution (only
    `functions`, if given), and whether every copy got full marks."""
    environment = env()
    environment.pop("AUTOGRADER_SUITES_PATH")
    with tempfile.TemporaryDirectory(prefix="bench-autograder-") as tmp:
        folder = Path(tmp) / "subs"
        folder.mkdir()
        for i in range(count):
            shutil.copy(A3_SOLUTION, folder / f"student{i:04d}.py")
        selection = [arg for f in functions for arg in ("--function", f)]
        seconds = run([sys.executable, "-m", "autograder", "grade", "--assignment", A3,
                       *engine, *selection, "--no-progress", "--out", str(Path(tmp) / "out"),
                       str(folder)], KIT, environment)
        results = [json.loads(p.read_text()) for p in (Path(tmp) / "out").glob("s*.json")]
    full = len(results) == count and all(r["score"] == r["max_score"] > 0 for r in results)
    return seconds, full


def scale(count: int, workers: int = 2, functions: tuple[str, ...] = ()) -> dict:
    """--jobs N against --scheduler local:N on `count` a3 submissions (and count // 4, for
    the marginal cost without start-up), and the 5,000-in-10-minutes projection; only
    `functions` are graded if given."""
    small = max(count // 4, 2)
    rows = {}
    for label, engine in (("jobs", ["--jobs", str(workers)]),
                          ("dask", ["--scheduler", f"local:{workers}"])):
        whole, full = grade_batch_seconds(count, engine, functions)
        part, _ = grade_batch_seconds(small, engine, functions)
        rows[label] = {"seconds": whole, "per_submission": whole / count,
                       "marginal": (whole - part) / (count - small),
                       "startup": part - small * (whole - part) / (count - small),
                       "all_full_marks": full}
    # One worker grades a submission in workers * marginal seconds (the batch runs `workers`
    # at a time); 5,000 in 600 s needs 5000 * that / 600 workers.
    per_worker = workers * rows["dask"]["marginal"]
    return {"submissions": count, "workers": workers, "rows": rows,
            "functions": list(functions) or "all",
            "dask_overhead_per_submission": rows["dask"]["per_submission"]
            - rows["jobs"]["per_submission"],
            "dask_marginal_overhead": rows["dask"]["marginal"] - rows["jobs"]["marginal"],
            "seconds_per_submission_per_worker": per_worker,
            "workers_for_5000_in_10_min": int(-(-5000 * per_worker // 600)),
            "load_average": os.getloadavg()[0], "cores": os.cpu_count()}


def print_scale(report: dict) -> None:
    print(f"\nScale: {report['submissions']} a3 submissions, {report['workers']} workers "
          f"(load average {report['load_average']:.1f} on {report['cores']} cores)")
    graded = report.get("functions", "all")
    print("Graded: " + ("every function" if graded == "all" else
                        f"{len(graded)} functions ({', '.join(graded)})"))
    print(f"{'engine':24s} {'total s':>8s} {'s/sub':>7s} {'marginal s/sub':>15s} "
          f"{'start-up s':>11s}")
    for label, row in report["rows"].items():
        name = "--jobs" if label == "jobs" else "--scheduler local"
        print(f"{name:24s} {row['seconds']:8.1f} {row['per_submission']:7.3f} "
              f"{row['marginal']:15.3f} {row['startup']:11.1f}"
              f"{'' if row['all_full_marks'] else '  [scores differ!]'}")
    print(f"Dask overhead per submission: {report['dask_overhead_per_submission']:+.3f} s "
          f"(with start-up), {report['dask_marginal_overhead']:+.3f} s (marginal)")
    print(f"One worker: {report['seconds_per_submission_per_worker']:.2f} s per submission; "
          f"5,000 submissions in 10 minutes need {report['workers_for_5000_in_10_min']} such "
          "workers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=8)
    parser.add_argument("--conv", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--throughput-only", action="store_true",
                        help="skip the comparison with stock nbgrader")
    parser.add_argument("--scale", type=int, default=0, metavar="N",
                        help="only the scale comparison: N a3 submissions with --jobs and "
                        "with a Dask LocalCluster (needs the 'cluster' extra)")
    parser.add_argument("--functions", default="", metavar="NAME,...",
                        help="--scale: grade only these a3 functions")
    parser.add_argument("--layers-only", action="store_true",
                        help="--scale: grade every a3 function except the training task "
                        f"({A3_TRAINING})")
    args = parser.parse_args()
    if args.scale:
        functions = tuple(f for f in args.functions.split(",") if f)
        if args.layers_only:
            from autograder.suites import load_suite
            functions = tuple(f for f in load_suite(A3).functions if f != A3_TRAINING)
        report = scale(args.scale, args.jobs, functions)
        print_scale(report)
        out = KIT / "benchmarks" / "results"
        out.mkdir(parents=True, exist_ok=True)
        name = "autograder_scale_layers.json" if functions else "autograder_scale.json"
        (out / name).write_text(json.dumps(report, indent=2) + "\n")
        return
    load = os.getloadavg()[0]
    batch = throughput(args.conv, args.jobs)
    print_throughput(batch)
    if args.throughput_only:
        return
    rows = compare_with_stock(args.students)
    stock = rows["stock nbgrader autograde"]
    print(f"\nPer notebook, {args.students} notebooks of the a2 subset "
          f"(load average {load:.1f} on {os.cpu_count()} cores). 'whole': the command's wall "
          "time / N;\n'marginal': (T_N - T_1) / (N - 1), the cost of one more notebook "
          "without the start-up:")
    print(f"{'method':32s} {'whole s':>8s} {'speed-up':>9s} {'marginal s':>11s} {'speed-up':>9s}")
    for name, row in rows.items():
        print(f"{name:32s} {row['whole']:8.2f} {stock['whole'] / row['whole']:8.1f}x "
              f"{row['marginal']:11.2f} {stock['marginal'] / row['marginal']:8.1f}x")
    out = KIT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "autograder.json").write_text(json.dumps(
        {"load_average": load, "per_notebook_seconds": rows, "throughput": batch}, indent=2))


if __name__ == "__main__":
    main()
