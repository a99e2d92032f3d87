"""Grade one submission, or a batch of them in parallel, resumably.

One submission (`grade_submission`, always in a worker process, never in the caller's):

    extract the code -> static check for forbidden imports -> start the sandbox and load the
    code -> run the hidden suite with pytest in this (trusted) process, calling the student's
    functions through the sandbox -> assemble the JSON result.

A batch (`grade_batch`): the Numba cache is warmed once (the suite's `warm()`), then a pool of
spawned worker processes (fresh interpreters: Numba and OpenMP are not fork-safe) grades
independent submissions; each worker writes its result atomically as soon as it is done, so a
crash or a kill loses nothing already written. A re-run skips every submission whose result
has the same key (content hash of the submission, its source notebook, the suite and the
autograder version) unless `force`; `shard=(k, n)` keeps a deterministic 1/n of the batch.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing
import multiprocessing.util
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from autograder import extraction, results
from autograder.forbidden import matches
from autograder.sandbox import Limits
from autograder.version import __version__

__all__ = ["GradeOptions", "grade_submission", "grade_notebook_data", "grade_batch",
           "BatchSummary", "submission_key", "default_source_dir", "shard_of", "warm_up"]


KIT_ROOT = Path(__file__).resolve().parents[1]
MAX_SUBMISSION_BYTES = 64 * 1024 * 1024      # a notebook bigger than this is not graded


@dataclass
class GradeOptions:
    """Everything a worker needs to grade submissions of one assignment."""

    assignment: str
    source_dir: Path | None = None          # assignments/source (setup cells come from there)
    out_dir: Path | None = None             # where result JSON files go (None: not written)
    limits: Limits = field(default_factory=Limits)
    hide: list[str] = field(default_factory=list)   # extra paths the sandbox must not see


def default_source_dir() -> Path | None:
    """./assignments/source, else the kit's own assignments/source."""
    for base in (Path.cwd(), KIT_ROOT):
        candidate = base / "assignments" / "source"
        if candidate.is_dir():
            return candidate
    return None


def find_source_notebook(source_dir: Path | None, assignment: str, notebook: str,
                         default: str) -> Path | None:
    if source_dir is None:
        return None
    for stem in dict.fromkeys((notebook, default)):
        candidate = Path(source_dir) / assignment / f"{stem}.ipynb"
        if candidate.is_file():
            return candidate
    return None


def submission_key(data: bytes, source_bytes: bytes, suite_version: str) -> str:
    digest = hashlib.sha256()
    for part in (hashlib.sha256(data).hexdigest(), hashlib.sha256(source_bytes).hexdigest(),
                 suite_version, __version__):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def shard_of(name: str, shards: int) -> int:
    """Shard (1-based) of a result name: stable when students are added or removed."""
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % shards + 1


# ----------------------------------------------------------------------------- one submission

_REFERENCE_CACHE: dict[str, set] = {}


def _reference(policy) -> set:
    from autograder.forbidden import reference_names
    key = json.dumps(policy.as_config(), sort_keys=True)
    if key not in _REFERENCE_CACHE:
        _REFERENCE_CACHE[key] = reference_names(policy)
    return _REFERENCE_CACHE[key]


def _unit_failure_text(reply: dict, unit: dict) -> str:
    error = reply.get("error") or {}
    place = "your module" if unit["origin"] == "module" else (
        f"cell {unit['cell']}" if unit["origin"] == "student" else
        f"instructor setup cell {unit['cell']}")
    if reply.get("failure"):
        return f"the code at line {unit['line']} of {place} {error.get('message', 'failed')}"
    line = (error.get("where") or {}).get("line", unit["line"])
    message = f": {error['message']}" if error.get("message") else ""
    return f"line {line} of {place} raised {error.get('type', 'an error')}{message}"


def _missing_text(name: str, program, units: list[dict], loaded: dict) -> str:
    if name in program.broken:
        return f"could not be loaded: {program.broken[name]}"
    for unit in units:
        reply = loaded.get(unit["id"], {})
        if name in unit["defines"] and not reply.get("ok", True):
            return "could not be defined: " + _unit_failure_text(reply, unit)
    if not any(u["origin"] != "setup" for u in units):
        return "is not defined (no code of yours was found in the submission)"
    return "is not defined in your submission"


def _forbidden_text(reasons: list[str], policy, assignment: str) -> str:
    """e.g. 'uses course_lib.affine_forward, which is not allowed in a2 (it is the ...)'."""
    names = [w.strip(",;") for r in reasons for w in r.split() if policy.hit(w.strip(",;"))
             or matches(w.strip(",;"), policy.forbidden)]
    why = policy.reason(names[-1]) if names else "not allowed"
    return f"{'; '.join(reasons)}, which is not allowed in {assignment} ({why})"


_HOW = {"import": "imports", "importlib.import_module": "imports", "call": "calls"}


def _pytest_args(suite, ini: str) -> list[str]:
    # No conftest.py and no assertion rewriting: a suite is plain test files, and messages
    # come from the checks only (pytest's assertion introspection would print hidden values).
    return [str(suite.directory), "-p", "autograder.plugin", "-p", "no:cacheprovider",
            "-p", "no:terminal", "-p", "no:unraisableexception", "-p", "no:threadexception",
            "-p", "no:faulthandler", "--assert=plain", "--noconftest",
            "--continue-on-collection-errors", "-c", ini, "--rootdir",
            str(suite.directory), "-W", "ignore"]


def _run_suite(suite, session) -> int:
    import pytest

    from autograder import plugin
    with tempfile.TemporaryDirectory(prefix="autograder-pytest-") as tmp:
        ini = os.path.join(tmp, "pytest.ini")
        with open(ini, "w") as f:
            f.write("[pytest]\n")
        plugin.CURRENT = session
        try:
            return int(pytest.main(_pytest_args(suite, ini)))
        finally:
            plugin.CURRENT = None


def _hide_list(options: GradeOptions, sub, suite) -> list[str]:
    """What the sandbox must not see: hidden suites, sources and solutions, other students'
    files and results. (Paths the interpreter needs are dropped by the sandbox itself.)"""
    from autograder.suites import SUITES_DIR
    hide = [str(suite.directory.parent), str(SUITES_DIR), *options.hide]
    # The kit's own tests and assignment sources hold reference solutions.
    hide += [str(KIT_ROOT / d) for d in ("tests", "assignments", "autograder-results")
             if (KIT_ROOT / d).is_dir()]
    if options.source_dir:
        hide.append(str(Path(options.source_dir).resolve()))
    if options.out_dir:
        hide.append(str(Path(options.out_dir).resolve()))
    if sub.course_root is not None:
        root = Path(sub.course_root).resolve()
        hide += [str(root / d) for d in ("submitted", "autograded", "feedback", "release",
                                         "source")]
        hide.append(str(root / "gradebook.db"))
    else:
        hide.append(str(Path(sub.path).resolve().parent))
    return sorted(set(hide))


# A batch worker starts the sandbox of its next submission (interpreter, numpy and the
# instructor's setup cells loaded) while it grades the current one: that start-up then costs
# nothing on the critical path. Only workers do this (`_worker_init`), never `check`.
_BATCH_WORKER = False
_SPARE: tuple[str, object] | None = None


def _sandbox_key(options: GradeOptions, policy, hide: list[str], setup: list[dict]) -> str:
    return json.dumps([options.assignment, policy.as_config(), options.limits.as_dict(), hide,
                       [u["code"] for u in setup]], sort_keys=True)


def _new_sandbox(options: GradeOptions, policy, hide: list[str]):
    from autograder.sandbox import Sandbox
    return Sandbox(assignment=options.assignment, policy=policy.as_config(),
                   limits=options.limits, hide=hide)


def _take_sandbox(options: GradeOptions, policy, hide: list[str], setup: list[dict]):
    """The spare prepared for exactly this configuration, or a new sandbox."""
    global _SPARE
    if _SPARE is not None:
        (key, spare), _SPARE = _SPARE, None
        if key == _sandbox_key(options, policy, hide, setup):
            spare.claim()
            return spare
        spare.close()
    return _new_sandbox(options, policy, hide)


def _prepare_spare(options: GradeOptions, policy, hide: list[str], setup: list[dict]) -> None:
    global _SPARE
    if _BATCH_WORKER and _SPARE is None:
        spare = _new_sandbox(options, policy, hide)
        spare.prestart(setup)
        _SPARE = (_sandbox_key(options, policy, hide, setup), spare)


def _close_spare() -> None:
    global _SPARE
    if _SPARE is not None:
        _SPARE[1].close()
        _SPARE = None


def _unavailable(functions, static, kinds, program, loaded, policy, assignment) -> dict:
    """Functions that cannot be graded at all, with the reason (shown for each test)."""
    unavailable = {}
    for f in functions:
        if static.get(f):
            unavailable[f] = _forbidden_text(static[f], policy, assignment)
        elif kinds[f] == "missing":
            unavailable[f] = _missing_text(f, program, program.units, loaded)
        elif kinds[f] == "forbidden":
            unavailable[f] = _forbidden_text([f"is the library's {f}"], policy, assignment)
        elif kinds[f] not in ("function", "class"):
            unavailable[f] = f"is {kinds[f]}, not a function"
    return unavailable


def _note_events(events, functions, unavailable, notes, policy, assignment) -> None:
    """Forbidden things the sandbox saw: while a function ran, that function gets 0."""
    for event in events:
        context = event["context"]
        if context.startswith("call:") and context.removeprefix("call:") in functions:
            how = _HOW.get(event["how"], "uses")
            unavailable[context.removeprefix("call:")] = _forbidden_text(
                [f"{how} {event['what']}"], policy, assignment)
        elif not context.startswith("call:"):
            notes.append(f"{event['what']} was used while loading ({event['how']}); "
                         f"it is not allowed in {assignment}")


def grade_notebook_data(data: bytes, *, kind: str, options: GradeOptions, name: str,
                        path: str, student: str | None, notebook: str,
                        course_root: Path | None = None, source_path: Path | None = None
                        ) -> dict:
    """Grade a submission given as bytes (the nbgrader bridge passes a notebook in memory)."""
    from autograder.forbidden import Policy, static_violations
    from autograder.plugin import GradingSession, StudentProxy
    from autograder.sandbox import SandboxFailure
    from autograder.suites import load_suite

    started, clock = datetime.now(UTC), time.monotonic()
    suite = load_suite(options.assignment)
    functions = list(suite.functions)
    if source_path is None:
        source_path = find_source_notebook(options.source_dir, options.assignment, notebook,
                                           suite.notebook)
    source_nb, source_bytes = extraction.load_source_notebook(source_path)
    program = extraction.extract(data, kind, source_nb)
    policy = Policy(suite.forbidden, suite.allowed)
    sub = extraction.Submission(path=Path(path), kind=kind, student=student, notebook=notebook,
                                course_root=course_root)
    unavailable: dict[str, str] = {}
    errors: list[dict] = []
    notes = list(program.notes)
    if source_path is None and kind == "notebook":
        notes.append("no source notebook was found; instructor setup cells were not used")
    session = None
    sandbox_info: dict = {}
    run_info: dict = {}
    if program.fatal:
        unavailable = {f: f"could not be graded: {program.fatal}" for f in functions}
        errors.append({"function": None, "message": program.fatal})
        session = GradingSession(proxy=StudentProxy(None, suite.functions, unavailable),
                                 functions=functions)
        _run_suite(suite, session)
    else:
        static = static_violations(program.units, functions, policy, _reference(policy))
        setup = [u for u in program.units if u["origin"] == "setup"]
        with _take_sandbox(options, policy, _hide_list(options, sub, suite), setup) as sandbox:
            loaded = sandbox.load(program.units)
            _prepare_spare(options, policy, _hide_list(options, sub, suite), setup)
            try:
                kinds = sandbox.inspect(functions)
            except SandboxFailure as failure:
                kinds = {f: "missing" for f in functions}
                errors.append({"function": None, "message": f"the sandbox failed after loading "
                                                            f"your code: {failure.message}"})
            unavailable = _unavailable(functions, static, kinds, program, loaded, policy,
                                       options.assignment)
            for unit in program.units:
                reply = loaded.get(unit["id"], {})
                if not reply.get("ok", True) and not set(unit["defines"]) & set(functions):
                    notes.append(_unit_failure_text(reply, unit) + " (skipped)")
            session = GradingSession(proxy=StudentProxy(sandbox, suite.functions, unavailable),
                                     functions=functions)
            _run_suite(suite, session)
            sandbox.close()
            sandbox_info = {k: sandbox.isolation.get(k) for k in
                            ("namespaces", "network", "filesystem", "user", "rlimits")}
            run_info = {"restarts": sandbox.restarts, "stdout_bytes": sandbox.stdout_bytes,
                        "stderr_bytes": sandbox.stderr_bytes}
            _note_events(sandbox.events, functions, unavailable, notes, policy,
                         options.assignment)
    return _assemble(name=name, sub=sub, suite=suite, data=data, source_bytes=source_bytes,
                     session=session, unavailable=unavailable, errors=errors, notes=notes,
                     sandbox_info=sandbox_info, run_info=dict(
                         run_info, started=started.isoformat(timespec="seconds"),
                         seconds=round(time.monotonic() - clock, 3), host=platform.node(),
                         autograder=__version__))


def _assemble(*, name, sub, suite, data, source_bytes, session, unavailable, errors, notes,
              sandbox_info, run_info) -> dict:
    tests = []
    for problem in session.collection_errors:
        errors.append({"function": None, "message": f"the hidden suite could not be loaded: "
                                                    f"{problem}"})
    for node in session.order:
        record = session.records[node]
        passed = record["passed"]
        message = record["message"]
        function = record["function"]
        if function in unavailable:
            # Missing, forbidden (also when found while it ran): that is the reason, always.
            passed, message = False, f"{function} {unavailable[function]}"
        if record.get("internal"):
            errors.append({"function": function, "message": f"internal error in {node}: "
                                                            f"{record['internal']}"})
        tests.append({"id": node, "function": function,
                      "points": record["max_points"] if passed else 0.0,
                      "max_points": record["max_points"], "passed": passed, "message": message})
    functions = {}
    # Every test counts under its function, also one the suite forgot to list in FUNCTIONS.
    for f in dict.fromkeys([*suite.functions, *(t["function"] for t in tests)]):
        mine = [t for t in tests if t["function"] == f]
        score = sum(t["points"] for t in mine)
        maximum = sum(t["max_points"] for t in mine)
        passed = sum(t["passed"] for t in mine)
        functions[f] = {"score": score, "max_score": maximum, "passed": passed,
                        "total": len(mine),
                        "status": "passed" if mine and passed == len(mine) else
                        "partial" if passed else "failed"}
        if f in unavailable:
            errors.append({"function": f, "message": f"{f} {unavailable[f]}"})
    return {
        "schema": results.SCHEMA,
        "name": name,
        "assignment": suite.name,
        "submission": {"path": str(sub.path), "kind": sub.kind, "student": sub.student,
                       "notebook": sub.notebook, "sha256": hashlib.sha256(data).hexdigest()},
        "suite_version": suite.version,
        "key": submission_key(data, source_bytes, suite.version),
        "score": sum(t["points"] for t in tests),
        "max_score": sum(t["max_points"] for t in tests),
        "functions": functions,
        "tests": tests,
        "errors": errors,
        "notes": list(dict.fromkeys(notes)),
        "sandbox": sandbox_info,
        "run": run_info,
    }


def grade_submission(path: Path, options: GradeOptions, name: str | None = None) -> dict:
    """Grade one file (notebook or .py) in this process; write its JSON if out_dir is set."""
    path = Path(path)
    sub = extraction.describe_submission(path, options.assignment)
    name = name or (f"{sub.student}__{sub.notebook}" if sub.student else path.stem)
    try:
        if path.stat().st_size > MAX_SUBMISSION_BYTES:
            raise OSError(0, f"it is larger than {MAX_SUBMISSION_BYTES // 2 ** 20} MB")
        data, kind = path.read_bytes(), sub.kind
    except OSError as exc:
        data, kind = f"the file could not be read ({exc.strerror})".encode(), "unreadable"
    result = grade_notebook_data(data, kind=kind, options=options, name=name, path=str(path),
                                 student=sub.student, notebook=sub.notebook,
                                 course_root=sub.course_root)
    if options.out_dir is not None:
        results.write_result(options.out_dir, result)
    return result


# ----------------------------------------------------------------------------- workers

def warm_up(assignment: str) -> None:
    """Import the oracle and run the suite's warm() so Numba's cache is filled once."""
    from autograder.suites import load_suite
    load_suite(assignment).warm()


def _worker_init(assignment: str) -> None:
    global _BATCH_WORKER
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import pytest  # noqa: F401 - imported once per worker, not per submission
    warm_up(assignment)
    _BATCH_WORKER = True
    multiprocessing.util.Finalize(None, _close_spare, exitpriority=10)


def _worker_grade(path: str, options: GradeOptions, name: str) -> dict:
    try:
        result = grade_submission(Path(path), options, name)
    except Exception as exc:  # noqa: BLE001 - one broken submission must not stop the batch
        import traceback
        return {"name": name, "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc()[-3000:]}
    return {"name": name, "score": result["score"], "max_score": result["max_score"]}


@dataclass
class BatchSummary:
    graded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    results: list[dict] = field(default_factory=list)
    gradebook: Path | None = None
    seconds: float = 0.0


def _internal_error_result(path: Path, name: str, options: GradeOptions, message: str) -> dict:
    """A result for a submission the grader itself could not handle (never silently lost)."""
    from autograder.suites import load_suite
    suite = load_suite(options.assignment)
    sub = extraction.describe_submission(path, options.assignment)
    try:
        data = path.read_bytes()
    except OSError:
        data = b""
    return {"schema": results.SCHEMA, "name": name, "assignment": suite.name,
            "submission": {"path": str(path), "kind": sub.kind, "student": sub.student,
                           "notebook": sub.notebook, "sha256": hashlib.sha256(data).hexdigest()},
            "suite_version": suite.version, "key": None, "score": 0.0, "max_score": 0.0,
            "functions": {}, "tests": [],
            "errors": [{"function": None, "message": f"the grader failed on this submission "
                                                     f"({message}); grade it again with --force"}],
            "notes": [], "sandbox": {}, "run": {"autograder": __version__}}


def grade_batch(paths: list[Path], options: GradeOptions, *, jobs: int = 1,
                shard: tuple[int, int] | None = None, force: bool = False,
                progress: bool = True, gradebook: bool = True) -> BatchSummary:
    """Grade many submissions with `jobs` worker processes; see the module docstring."""
    from autograder.suites import load_suite
    clock = time.monotonic()
    suite = load_suite(options.assignment)
    paths = [Path(p) for p in paths]
    names = results.result_names(
        paths, lambda p: extraction.describe_submission(p, options.assignment))
    if shard is not None:
        k, n = shard
        paths = [p for p in paths if shard_of(names[p], n) == k]
    summary = BatchSummary()
    todo = []
    for path in paths:
        existing = results.read_result(Path(options.out_dir) / f"{names[path]}.json") \
            if options.out_dir else None
        if existing and not force and existing.get("key") == _key_for(path, options, suite):
            summary.skipped.append(names[path])
            summary.results.append(existing)
        else:
            todo.append(path)
    if todo:
        warm_up(options.assignment)     # fills Numba's cache before workers race to write it
        _run_pool(todo, names, options, jobs, progress, summary)
    if options.out_dir is not None:
        for path in todo:
            result = results.read_result(Path(options.out_dir) / f"{names[path]}.json")
            if result is not None:
                summary.results.append(result)
        if gradebook:
            everything = [r for r in (results.read_result(p) for p in
                                      sorted(Path(options.out_dir).glob("*.json")))
                          if r is not None and r.get("assignment") == options.assignment]
            summary.gradebook = results.write_gradebook(
                everything, Path(options.out_dir) / "gradebook.csv", list(suite.functions))
    summary.results.sort(key=lambda r: r["name"])
    summary.seconds = round(time.monotonic() - clock, 3)
    return summary


def _key_for(path: Path, options: GradeOptions, suite) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    sub = extraction.describe_submission(path, options.assignment)
    source = find_source_notebook(options.source_dir, options.assignment, sub.notebook,
                                  suite.notebook)
    source_bytes = source.read_bytes() if source else b""
    return submission_key(data, source_bytes, suite.version)


def _run_pool(todo, names, options, jobs, progress, summary) -> None:
    from tqdm import tqdm
    context = multiprocessing.get_context("spawn")
    attempts = {p: 0 for p in todo}
    remaining = list(todo)
    bar = tqdm(total=len(todo), desc=f"grading {options.assignment}", unit="submission",
               disable=not progress, mininterval=0.5)
    try:
        while remaining:
            broken = False
            with cf.ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=context,
                                        initializer=_worker_init,
                                        initargs=(options.assignment,)) as pool:
                futures = {pool.submit(_worker_grade, str(p), options, names[p]): p
                           for p in remaining}
                for future in cf.as_completed(futures):
                    path = futures[future]
                    try:
                        outcome = future.result()
                    except cf.process.BrokenProcessPool:
                        broken = True
                        continue
                    remaining.remove(path)
                    bar.update(1)
                    if "error" in outcome:
                        summary.failed[names[path]] = outcome["error"]
                        if options.out_dir is not None:
                            results.write_result(options.out_dir, _internal_error_result(
                                path, names[path], options, outcome["error"]))
                    else:
                        summary.graded.append(names[path])
            if broken:
                # A worker died (not a student's sandbox: those are separate processes).
                for path in list(remaining):
                    attempts[path] += 1
                    if attempts[path] >= 2:
                        remaining.remove(path)
                        bar.update(1)
                        summary.failed[names[path]] = "the grading worker died twice"
                        if options.out_dir is not None:
                            results.write_result(options.out_dir, _internal_error_result(
                                path, names[path], options, "the grading worker died twice"))
    finally:
        bar.close()

