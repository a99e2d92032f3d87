"""Command line: `autograder grade|check|gradebook` (also `python -m autograder ...`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from autograder.sandbox import Limits

PLATFORMS = ("gradescope", "prairielearn")      # autograder.exporters.FORMATS

__all__ = ["main", "build_parser", "collect_submissions"]

DESCRIPTION = """\
Grade students' implementations of the course's layers with the hidden test suites.

Each submission (a notebook or a .py file) runs in a sandbox: a separate process with no
network, a read-only file system, memory/CPU/process limits and timeouts. The tests run
outside the sandbox and compare the student's results with the course library, so nothing in
a submission can change its own grade. Every submission gets a JSON file of per-test results;
a batch also gets a CSV gradebook.
"""

EPILOG = """\
examples:
  # grade every collected notebook of an nbgrader course, 2 processes at a time
  autograder grade --assignment a2_fully_connected --jobs 2 submitted/*/a2_fully_connected/*.ipynb

  # a self-study reader (or a student) checks their own notebook and reads the report
  autograder check my_a2_fully_connected.ipynb --assignment a2_fully_connected

  # split a large class over 4 machines (e.g. a Slurm array 1-4), then merge the results
  autograder grade --assignment a2_fully_connected --shard $SLURM_ARRAY_TASK_ID/4 \\
      --out shard$SLURM_ARRAY_TASK_ID submitted/
  autograder gradebook --assignment a2_fully_connected --out all shard1 shard2 shard3 shard4

Re-running `grade` skips submissions whose result is up to date (same file, same source
notebook, same hidden suite); --force grades them again. A submission must be a regular file:
a symbolic link (or one below a linked folder of nbgrader's submitted/) gets a result that
says it was not graded, and linked folders below a given directory are not searched.
nbgrader users: `nbgrader autograde` grades through the same runner when the course uses the
kit's nbgrader_config.py.

hidden suites available: {suites}
"""


def _suites() -> list[str]:
    from autograder.suites import available_suites
    return available_suites()


def _shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N such as 2/4, got {text!r}") from None
    if not (n >= 1 and 1 <= k <= n):
        raise argparse.ArgumentTypeError(f"need 1 <= K <= N in K/N, got {text!r}")
    return k, n


def _add_limits(parser: argparse.ArgumentParser) -> None:
    defaults = Limits()
    group = parser.add_argument_group("sandbox limits")
    group.add_argument("--call-timeout", type=float, default=defaults.call_timeout,
                       metavar="SECONDS", help="wall-clock limit for one call of a student's "
                       "function (default: %(default)s)")
    group.add_argument("--submission-timeout", type=float, default=defaults.submission_timeout,
                       metavar="SECONDS", help="wall-clock budget for a whole submission "
                       "(default: %(default)s)")
    group.add_argument("--memory-mb", type=int, default=defaults.memory_mb, metavar="MB",
                       help="address-space limit of the sandbox (default: %(default)s)")


def _add_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", type=Path, metavar="DIR", default=None,
                        help="nbgrader source directory holding <assignment>/<notebook>.ipynb; "
                        "the instructor's setup cells are taken from there (default: "
                        "./assignments/source, else the kit's own)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autograder", description=DESCRIPTION,
        epilog=EPILOG.format(suites=", ".join(_suites()) or "none"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    grade = commands.add_parser(
        "grade", help="grade a batch of submissions (JSON per submission + CSV gradebook)",
        description="Grade submissions; write one JSON result per submission and a CSV "
        "gradebook. The exit code is 0 whenever the batch ran, whatever the scores.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    grade.add_argument("submissions", nargs="+", type=Path, metavar="SUBMISSION",
                       help="a notebook (nbgrader's submitted/<student>/<assignment>/<nb>.ipynb "
                       "or any .ipynb), a .py module with the assignment's functions, or a "
                       "directory: all notebooks below it (or, if it has none, its .py files)")
    grade.add_argument("--assignment", required=True, metavar="NAME",
                       help="assignment (hidden suite) to grade against")
    grade.add_argument("--jobs", type=int, default=1, metavar="N",
                       help="submissions graded in parallel (default: 1)")
    grade.add_argument("--out", type=Path, default=None, metavar="DIR",
                       help="where the JSON results and gradebook.csv go "
                       "(default: ./autograder-results/<assignment>)")
    grade.add_argument("--json", type=Path, default=None, metavar="FILE",
                       help="also write all results of this batch as one JSON list "
                       "('-' for standard output)")
    grade.add_argument("--shard", type=_shard, default=None, metavar="K/N",
                       help="grade only the K-th of N deterministic parts of the batch "
                       "(K from 1 to N), for spreading a class over machines")
    grade.add_argument("--force", action="store_true",
                       help="grade again even when an up-to-date result exists")
    grade.add_argument("--no-progress", action="store_true", help="no progress bar")
    grade.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="grade on a Dask cluster, one task per submission: the scheduler's "
                       "address (tcp://HOST:8786), or local:N for a cluster of N workers on "
                       "this machine (needs the 'cluster' extra: pip install .[cluster])")
    grade.add_argument("--format", choices=PLATFORMS, default=None, dest="platform",
                       help="also write each result in a platform's results.json format, as "
                       "<out>/<format>/<name>/results.json; --json then writes that format")
    grade.add_argument("--function", action="append", default=[], metavar="NAME",
                       dest="functions", help="grade only this graded function (repeatable); "
                       "each result then holds only these functions and says so (run.only)")
    grade.add_argument("--allow-degraded-sandbox", action="store_true",
                       help="grade for marks even on a system whose sandbox lacks resource "
                       "limits, process groups or the seccomp filter (macOS, Windows); by "
                       "default grading refuses to run there. Only for code you trust: every "
                       "result is then marked degraded")
    _add_source(grade)
    _add_limits(grade)

    check = commands.add_parser(
        "check", help="grade one notebook or .py and print a readable report",
        description="Grade one submission and print, for each function, the points and which "
        "checks failed and why (the hidden inputs are never shown). A self-check: it runs with "
        "the isolation this system allows (on macOS and Windows less than on Linux; the report "
        "says which protections were active) and gives no marks.")
    check.add_argument("submission", type=Path, metavar="NOTEBOOK_OR_PY")
    check.add_argument("--assignment", default=None, metavar="NAME",
                       help="assignment to check against (default: guessed from the file or "
                       "folder name)")
    check.add_argument("--json", type=Path, default=None, metavar="FILE",
                       help="also write the full JSON result ('-' for standard output)")
    check.add_argument("--function", action="append", default=[], metavar="NAME",
                       dest="functions", help="check only this graded function (repeatable)")
    _add_source(check)
    _add_limits(check)

    book = commands.add_parser(
        "gradebook", help="rebuild gradebook.csv from JSON results (e.g. merge shards)",
        description="Collect the JSON results of one assignment from the given directories "
        "into --out (copies) and write --out/gradebook.csv.")
    book.add_argument("results", nargs="*", type=Path, metavar="RESULT_DIR")
    book.add_argument("--assignment", required=True, metavar="NAME")
    book.add_argument("--out", type=Path, required=True, metavar="DIR")
    book.add_argument("--format", choices=("kit", "canvas"), default="kit",
                      help="kit: gradebook.csv with per-function scores; canvas: also "
                      "canvas.csv for Canvas's gradebook import (default: %(default)s)")
    book.add_argument("--roster", type=Path, default=None, metavar="CSV",
                      help="canvas: a gradebook export of the Canvas course, whose Student, "
                      "ID, SIS User ID, SIS Login ID and Section are used (matched on SIS "
                      "Login ID, SIS User ID or ID = the nbgrader student id)")
    book.add_argument("--column", default=None, metavar="TITLE",
                      help="canvas: the assignment column's title, e.g. 'A2 (123456)' to "
                      "match an existing Canvas assignment (default: the assignment name)")
    _add_platform_commands(commands)
    return parser


def _add_platform_commands(commands) -> None:
    """`import`, `gradescope-bundle` and `gradescope-run` (see autograder.exporters)."""
    imp = commands.add_parser(
        "import", help="write `grade` results into an nbgrader course's gradebook",
        description="Run nbgrader's autograde for an assignment using the results of "
        "`autograder grade` (auto scores per grade cell and the test-cell outputs that "
        "feedback shows); a notebook without an up-to-date result is graded now.")
    imp.add_argument("results", type=Path, metavar="RESULT_DIR")
    imp.add_argument("--course", type=Path, default=Path("."), metavar="DIR",
                     help="the nbgrader course directory (default: .)")
    imp.add_argument("--assignment", required=True, metavar="NAME")
    imp.add_argument("--student", action="append", default=None, metavar="ID",
                     help="only this student (repeatable; default: all)")
    bundle = commands.add_parser(
        "gradescope-bundle", help="build a Gradescope autograder.zip for an assignment",
        description="Build the zip Gradescope's programming assignments take: setup.sh "
        "installs the kit, run_autograder grades /autograder/submission into "
        "/autograder/results/results.json.")
    bundle.add_argument("assignment", metavar="ASSIGNMENT")
    bundle.add_argument("-o", "--output", type=Path, default=Path("autograder.zip"),
                        metavar="ZIP")
    bundle.add_argument("--kit", type=Path, default=None, metavar="WHEEL_OR_DIR",
                        help="what setup.sh installs (default: this kit's source tree)")
    _add_source(bundle)
    run = commands.add_parser(
        "gradescope-run", help="(inside Gradescope) grade one submission folder",
        description="Grade the notebook (or .py) in --submission-dir and write Gradescope's "
        "results.json; used by the bundle's run_autograder.")
    run.add_argument("--assignment", required=True, metavar="NAME")
    run.add_argument("--submission-dir", type=Path, required=True, metavar="DIR")
    run.add_argument("--results", type=Path, required=True, metavar="FILE")
    _add_source(run)
    _add_limits(run)


def collect_submissions(paths: list[Path]) -> list[Path]:
    """Files as given; a directory gives its notebooks (searched recursively, checkpoints
    skipped), or its .py files when it holds no notebook at all.

    Below a given directory, symbolic links to directories are not followed (a warning names
    them) and symbolic links to files are listed, so that each gets a result saying that it
    was not graded.
    """
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            found.append(path)
            continue
        files = []
        for folder, subfolders, names in os.walk(path):     # never into linked folders
            here = Path(folder)
            for name in subfolders:
                if (here / name).is_symlink():
                    print(f"autograder: not following the symbolic link {here / name}",
                          file=sys.stderr)
            subfolders[:] = [d for d in subfolders if not _skipped(d)]
            files += [here / n for n in names if not _skipped(n)]
        files = sorted(f for f in files if f.is_symlink() or f.is_file())
        notebooks = [c for c in files if c.suffix == ".ipynb"]
        found += notebooks or [c for c in files if c.suffix == ".py"]
    return list(dict.fromkeys(found))


def _skipped(name: str) -> bool:
    return name.startswith(".") or name in ("__pycache__", ".ipynb_checkpoints")


def _limits(args) -> Limits:
    return Limits(call_timeout=args.call_timeout, submission_timeout=args.submission_timeout,
                  memory_mb=args.memory_mb, load_timeout=max(args.call_timeout, 1.0))


def _write_json(target: Path | None, payload) -> None:
    if target is None:
        return
    text = json.dumps(payload, indent=2) + "\n"
    if str(target) == "-":
        sys.stdout.write(text)
    else:
        from autograder.results import atomic_write
        atomic_write(target, text)


def _guess_assignment(path: Path) -> str | None:
    suites = _suites()
    for candidate in (path.parent.name, path.stem):
        if candidate in suites:
            return candidate
    matches = [s for s in suites if s in path.stem]
    if len(matches) == 1:
        return matches[0]
    return suites[0] if len(suites) == 1 else None


def _cmd_grade(args, parser) -> int:
    from autograder.runner import GradeOptions, default_source_dir, grade_batch
    if args.assignment not in _suites():
        parser.error(f"no hidden suite for {args.assignment!r}; known: {', '.join(_suites())}")
    missing = [str(p) for p in args.submissions if not p.exists()]
    if missing:
        parser.error(f"no such file or directory: {', '.join(missing)}")
    submissions = collect_submissions(args.submissions)
    if not submissions:
        parser.error("no .ipynb or .py submissions found")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    _check_functions(args.functions, args.assignment, parser)
    refusal = _degraded_refusal(args.allow_degraded_sandbox)
    if refusal:
        print(f"autograder grade: {refusal}", file=sys.stderr)
        return 2
    out = args.out or Path("autograder-results") / args.assignment
    options = GradeOptions(assignment=args.assignment,
                           source_dir=args.source or default_source_dir(),
                           out_dir=out, limits=_limits(args), functions=tuple(args.functions),
                           allow_degraded_sandbox=args.allow_degraded_sandbox)
    if args.scheduler:
        summary = _grade_on_cluster(submissions, options, args, parser)
    else:
        summary = grade_batch(submissions, options, jobs=args.jobs, shard=args.shard,
                              force=args.force, progress=not args.no_progress)
    if args.platform:
        _write_platform_results(summary.results, out, args)
    else:
        _write_json(args.json, summary.results)
    stream = sys.stderr if str(args.json) == "-" else sys.stdout
    for result in summary.results:
        print(f"{result['name']:40s} {result['score']:6g} / {result['max_score']:g}", file=stream)
    print(f"{len(summary.graded)} graded, {len(summary.skipped)} up to date (skipped), "
          f"{len(summary.failed)} failed to grade; results in {out}"
          + (f", gradebook {summary.gradebook}" if summary.gradebook else ""), file=stream)
    return 0


def _check_functions(functions: list[str], assignment: str, parser) -> None:
    from autograder.suites import load_suite
    suite = load_suite(assignment)
    unknown = [f for f in functions if f not in suite.functions]
    if unknown:
        parser.error(f"--function {unknown[0]}: not a graded function of {assignment} "
                     f"(known: {', '.join(suite.functions)})")


def _degraded_refusal(allowed: bool) -> str:
    """Why grading for marks will not run on this system (empty if it will)."""
    from autograder.sandbox.system import current
    return "" if allowed else current().refusal()


def _grade_on_cluster(submissions, options, args, parser):
    try:
        from autograder.cluster import grade_batch_on_cluster
    except ImportError as exc:
        parser.error(f"--scheduler needs Dask distributed ({exc}); install the kit with "
                     "pip install '.[cluster]'")
    if args.scheduler.startswith("local:") and not args.scheduler[6:].isdigit():
        parser.error(f"--scheduler must be local:N or an address such as tcp://HOST:8786; "
                     f"got {args.scheduler!r}")
    if args.jobs != 1:
        parser.error("--jobs and --scheduler exclude each other: on a cluster, the workers "
                     "grade in parallel (local:N for N of them)")
    return grade_batch_on_cluster(submissions, options, scheduler=args.scheduler,
                                  shard=args.shard, force=args.force,
                                  progress=not args.no_progress)


def _write_platform_results(batch: list[dict], out: Path, args) -> None:
    from autograder.exporters import platform_results
    from autograder.results import atomic_write
    converted = [platform_results(r, args.platform) for r in batch]
    for result, payload in zip(batch, converted, strict=True):
        atomic_write(out / args.platform / result["name"] / "results.json",
                     json.dumps(payload, indent=2) + "\n")
    _write_json(args.json, converted[0] if len(converted) == 1 else converted)


def _cmd_import(args, parser) -> int:
    from autograder.gradebook_import import import_results
    try:
        report = import_results(args.course, args.assignment, args.results,
                                students=args.student)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"imported {len(report['imported'])}: {', '.join(report['imported']) or '-'}")
    print(f"graded again {len(report['regraded'])} (no up-to-date result): "
          f"{', '.join(report['regraded']) or '-'}")
    if not report["success"]:
        print(report["log"][-4000:], file=sys.stderr)
        return 1
    return 0


def _cmd_gradescope_bundle(args, parser) -> int:
    from autograder.exporters import gradescope_bundle
    from autograder.runner import default_source_dir
    if args.assignment not in _suites():
        parser.error(f"no hidden suite for {args.assignment!r}; known: {', '.join(_suites())}")
    path = gradescope_bundle(args.assignment, args.output,
                             source_dir=args.source or default_source_dir(), kit=args.kit)
    print(f"Gradescope autograder for {args.assignment}: {path}")
    return 0


def _cmd_gradescope_run(args, parser) -> int:
    """Never fails without a results.json: Gradescope shows the student what went wrong."""
    from autograder.exporters import gradescope_results
    from autograder.results import atomic_write
    from autograder.runner import GradeOptions, grade_submission
    found = collect_submissions([args.submission_dir]) if args.submission_dir.is_dir() else []
    from autograder.suites import load_suite
    notebook = load_suite(args.assignment).notebook
    preferred = [p for p in found if p.stem == notebook] or found
    if len(preferred) != 1:
        listing = ", ".join(p.name for p in found) or "nothing"
        payload = {"score": 0.0, "output": f"Expected one notebook (best named {notebook}"
                   f".ipynb) or one .py file in the submission; found {listing}.", "tests": []}
    elif _degraded_refusal(False):
        payload = {"score": 0.0, "output": f"Not graded: {_degraded_refusal(False)}",
                   "tests": []}
    else:
        options = GradeOptions(assignment=args.assignment, source_dir=args.source,
                               limits=_limits(args))
        payload = gradescope_results(grade_submission(preferred[0], options))
    atomic_write(args.results, json.dumps(payload, indent=2) + "\n")
    print(f"score {payload['score']:g}; results in {args.results}")
    return 0


def _cmd_check(args, parser) -> int:
    from autograder.results import format_report
    from autograder.runner import GradeOptions, default_source_dir, grade_submission, warm_up
    if not args.submission.is_file():
        parser.error(f"no such file: {args.submission}")
    assignment = args.assignment or _guess_assignment(args.submission)
    if assignment is None or assignment not in _suites():
        parser.error(f"say which assignment with --assignment (known: {', '.join(_suites())})")
    _check_functions(args.functions, assignment, parser)
    warm_up(assignment)
    options = GradeOptions(assignment=assignment, source_dir=args.source or default_source_dir(),
                           limits=_limits(args), functions=tuple(args.functions),
                           self_check=True)
    result = grade_submission(args.submission, options)
    _write_json(args.json, result)
    stream = sys.stderr if str(args.json) == "-" else sys.stdout
    stream.write(format_report(result))
    return 0


def _cmd_gradebook(args, parser) -> int:
    from autograder.results import read_result, write_gradebook, write_result
    from autograder.suites import load_suite
    try:
        suite = load_suite(args.assignment)
    except ValueError as exc:
        parser.error(str(exc))
    collected = {}
    for directory in [args.out, *args.results]:
        for path in sorted(Path(directory).glob("*.json")):
            result = read_result(path)
            if result is not None and result.get("assignment") == args.assignment:
                collected[result["name"]] = result
    for result in collected.values():
        if not (args.out / f"{result['name']}.json").exists():
            write_result(args.out, result)
    path = write_gradebook(list(collected.values()), args.out / "gradebook.csv",
                           list(suite.functions))
    print(f"{len(collected)} results -> {path}")
    if args.format == "canvas":
        from autograder.exporters import write_canvas_csv
        try:
            canvas, unmatched = write_canvas_csv(list(collected.values()),
                                                 args.out / "canvas.csv", args.assignment,
                                                 column=args.column, roster=args.roster)
        except (OSError, ValueError) as exc:
            parser.error(f"--roster: {exc}")
        print(f"Canvas gradebook import file -> {canvas}")
        if unmatched:
            print(f"not in the roster (left out): {', '.join(unmatched)}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = {"grade": _cmd_grade, "check": _cmd_check, "gradebook": _cmd_gradebook,
               "import": _cmd_import, "gradescope-bundle": _cmd_gradescope_bundle,
               "gradescope-run": _cmd_gradescope_run}
    return command[args.command](args, parser)
