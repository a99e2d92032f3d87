"""Grade one submission, or a batch of them in parallel, resumably.

One submission (`grade_submission`; in a batch always in a worker process):

    read the file (a regular file inside its folder, never through a symbolic link) ->
    extract the code -> `autograder.grading.Grading`: static check, the code into a sandbox,
    the hidden suite run by pytest in this (trusted) process -> the JSON result.

A batch (`grade_batch`): the Numba cache is warmed once (the suite's `warm()`), then
`autograder.pool.WorkerPool` runs spawned worker processes (`GradingWorker`: fresh
interpreters, since Numba and OpenMP are not fork-safe) that grade one submission at a time
and write each result atomically as soon as it is done, so a crash or a kill loses nothing
already written. A worker that dies or overruns its submission's time is replaced and only
that submission is charged (two attempts, then an internal-error result that says why). A
re-run skips every submission whose result has the same key (content hash of the submission,
its source notebook, the suite and the autograder version) unless `force`; `shard=(k, n)`
keeps a deterministic 1/n of the batch. `worker_pool` is the same pool for one-at-a-time
callers (the nbgrader bridge).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import platform
import stat
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from autograder import extraction, results
from autograder.pool import WorkerPool
from autograder.sandbox import Limits
from autograder.version import __version__

__all__ = ["GradeOptions", "grade_submission", "grade_notebook_data", "grade_batch",
           "BatchSummary", "submission_key", "default_source_dir", "shard_of", "warm_up",
           "read_submission", "Refused", "Job", "GradingWorker", "worker_pool",
           "SuiteChanged"]


KIT_ROOT = Path(__file__).resolve().parents[1]
MAX_SUBMISSION_BYTES = 64 * 1024 * 1024      # a notebook bigger than this is not graded


@dataclass
class GradeOptions:
    """Everything a worker needs to grade submissions of one assignment."""

    assignment: str
    source_dir: Path | None = None          # assignments/source (setup cells come from there)
    out_dir: Path | None = None             # where result JSON files go (None: not written)
    limits: Limits = field(default_factory=Limits)
    # A grading worker gets limits.submission_timeout + worker_margin seconds per submission
    # (the sandbox's budget plus the trusted side's work: pytest and the oracle); a worker
    # still busy after that is killed and replaced.
    worker_margin: float = 60.0
    # Grade only these graded functions (a self-check of one function, or a test that needs
    # a few); empty: all. A partial result says so (`run.only`) and has a key of its own.
    functions: tuple[str, ...] = ()
    # A self-check (`autograder check`, `check()` in a notebook) runs in whatever sandbox
    # the system allows; grading for marks refuses a degraded one (no resource limits,
    # process groups or seccomp: macOS, Windows) unless the instructor opts in.
    self_check: bool = False
    allow_degraded_sandbox: bool = False

    @property
    def degraded_ok(self) -> bool:
        return self.self_check or self.allow_degraded_sandbox


def degraded_here() -> bool:
    """Whether this system's sandbox is degraded (a degraded result has a key of its own,
    so grading on a full sandbox later never skips it as up to date)."""
    from autograder.sandbox.system import current
    return current().degraded


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


def submission_key(data: bytes, source_bytes: bytes, suite_version: str,
                   functions: tuple[str, ...] = (), degraded: bool = False) -> str:
    digest = hashlib.sha256()
    for part in (hashlib.sha256(data).hexdigest(), hashlib.sha256(source_bytes).hexdigest(),
                 suite_version, __version__, *(("only", *functions) if functions else ()),
                 *(("degraded sandbox",) if degraded else ())):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def shard_of(name: str, shards: int) -> int:
    """Shard (1-based) of a result name: stable when students are added or removed."""
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % shards + 1


# ----------------------------------------------------------------------------- reading a file

class Refused(Exception):
    """The submission is not a regular file inside its folder (its message says why)."""


def submission_root(path: Path, assignment: str) -> Path:
    """The folder a submission must stay inside: nbgrader's submitted/ for
    submitted/<student>/<assignment>/<notebook>.ipynb, else the file's own folder."""
    path = Path(path)
    if extraction.describe_submission(path, assignment).course_root is not None:
        return path.parents[2]
    return path.parent


def read_submission(path: Path, root: Path) -> bytes:
    """The bytes of `path`, opened from `root` one component at a time without following a
    symbolic link (O_NOFOLLOW), and only if it is a regular file of at most 64 MB.

    Raises Refused (a symbolic link, not a regular file, not inside `root`) or OSError.
    """
    path, root = Path(path), Path(root)
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        raise Refused(f"{path} is not inside the folder {root}") from None
    if not parts or ".." in parts:
        raise Refused(f"{path} is not inside the folder {root}")
    if not _NO_FOLLOW:
        return _read_checked(path, root, parts)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        here = root
        for i, part in enumerate(parts):
            here = here / part
            last = i == len(parts) - 1
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | (
                os.O_NONBLOCK if last else os.O_DIRECTORY)   # a FIFO must not block us
            try:
                inner = os.open(part, flags, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(here):
                    raise Refused(f"{here} is a symbolic link; submissions must be regular "
                                  "files") from None
                raise
            os.close(fd)
            fd = inner
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Refused(f"{path} is not a regular file; submissions must be regular files")
        if info.st_size > MAX_SUBMISSION_BYTES:
            raise OSError(0, f"it is larger than {MAX_SUBMISSION_BYTES // 2 ** 20} MB")
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_SUBMISSION_BYTES:
                raise OSError(0, f"it is larger than {MAX_SUBMISSION_BYTES // 2 ** 20} MB")
        return b"".join(chunks)
    finally:
        os.close(fd)


# Windows has neither O_NOFOLLOW nor open relative to a directory descriptor.
_NO_FOLLOW = all(hasattr(os, flag) for flag in ("O_NOFOLLOW", "O_DIRECTORY", "O_CLOEXEC")) \
    and os.open in os.supports_dir_fd


def _read_checked(path: Path, root: Path, parts: tuple[str, ...]) -> bytes:
    """`read_submission` where files cannot be opened without following links (Windows):
    the same refusals, checked before reading (a self-check there, never grading for marks)."""
    here = root
    for part in parts:
        here = here / part
        if os.path.islink(here):
            raise Refused(f"{here} is a symbolic link; submissions must be regular files")
    if not os.path.isfile(path):
        raise Refused(f"{path} is not a regular file; submissions must be regular files")
    if os.path.getsize(path) > MAX_SUBMISSION_BYTES:
        raise OSError(0, f"it is larger than {MAX_SUBMISSION_BYTES // 2 ** 20} MB")
    with open(path, "rb") as f:
        data = f.read(MAX_SUBMISSION_BYTES + 1)
    if len(data) > MAX_SUBMISSION_BYTES:
        raise OSError(0, f"it is larger than {MAX_SUBMISSION_BYTES // 2 ** 20} MB")
    return data


def load_submission(path: Path, assignment: str) -> tuple[bytes, str | None]:
    """(the file's bytes, None), or (a stand-in to hash, why it cannot be graded)."""
    try:
        return read_submission(path, submission_root(path, assignment)), None
    except Refused as refusal:
        why = str(refusal)
    except OSError as exc:
        why = f"the file could not be read ({exc.strerror or exc})"
    return f"not graded: {why}".encode(), why


# ----------------------------------------------------------------------------- sandboxes

class Sandboxes:
    """Where a grading gets its sandbox: a new one, or in a worker (`spare=True`) the one
    started for it (interpreter, numpy and the instructor's setup cells loaded) while the
    previous submission was graded, so that start-up costs nothing on the critical path."""

    def __init__(self, spare: bool = False):
        self.spare = spare
        self._ready: tuple[str, object] | None = None

    @staticmethod
    def _key(options: GradeOptions, policy, setup: list[dict]) -> str:
        return json.dumps([options.assignment, policy.as_config(), options.limits.as_dict(),
                           options.degraded_ok, [u["code"] for u in setup]], sort_keys=True)

    @staticmethod
    def _new(options: GradeOptions, policy):
        from autograder.sandbox import Sandbox
        return Sandbox(assignment=options.assignment, policy=policy.as_config(),
                       limits=options.limits, degraded_ok=options.degraded_ok)

    def take(self, options: GradeOptions, policy, setup: list[dict]):
        """The spare started for exactly this configuration, or a new sandbox."""
        if self._ready is not None:
            (key, spare), self._ready = self._ready, None
            if key == self._key(options, policy, setup):
                spare.claim()
                return spare
            spare.close()
        return self._new(options, policy)

    def prepare(self, options: GradeOptions, policy, setup: list[dict]) -> None:
        """Start the next submission's sandbox now (workers only)."""
        if self.spare and self._ready is None:
            spare = self._new(options, policy)
            spare.prestart(setup)
            self._ready = (self._key(options, policy, setup), spare)

    def close(self) -> None:
        if self._ready is not None:
            self._ready[1].close()
            self._ready = None


# ----------------------------------------------------------------------------- one submission

def check_selection(functions: tuple[str, ...], suite) -> None:
    """Every name in `functions` is a graded function of the suite (else a clear error)."""
    unknown = [f for f in functions if f not in suite.functions]
    if unknown:
        raise ValueError(f"functions: {', '.join(map(repr, unknown))} is not a graded function "
                         f"of {suite.name}; expected some of {', '.join(suite.functions)}")


def grade_notebook_data(data: bytes, *, kind: str, options: GradeOptions, name: str,
                        path: str, student: str | None, notebook: str,
                        source_path: Path | None = None,
                        fatal: str | None = None, suite=None,
                        sandboxes: Sandboxes | None = None) -> dict:
    """Grade a submission given as bytes; `fatal`: why it cannot be graded at all (then every
    test fails with that reason). `suite` and `sandboxes` come from a worker."""
    from autograder.forbidden import Policy
    from autograder.grading import Grading
    from autograder.suites import load_suite

    started, clock = datetime.now(UTC), time.monotonic()
    suite = suite or load_suite(options.assignment)
    check_selection(options.functions, suite)
    if source_path is None:
        source_path = find_source_notebook(options.source_dir, options.assignment, notebook,
                                           suite.notebook)
    source_nb, source_bytes = extraction.load_source_notebook(source_path)
    policy = Policy(suite.forbidden, suite.allowed)
    program = None if fatal else extraction.extract(data, kind, source_nb)
    notes = list(program.notes) if program else []
    if source_path is None and kind == "notebook" and not fatal:
        notes.append("no source notebook was found; instructor setup cells were not used")
    fatal = fatal or program.fatal
    if fatal:
        grading = Grading(suite, policy, fatal=fatal, notes=notes, only=options.functions)
        grading.run()
    else:
        setup = [u for u in program.units if u["origin"] == "setup"]
        sandboxes = sandboxes or Sandboxes()
        grading = Grading(suite, policy, sandboxes.take(options, policy, setup),
                          notes=notes, only=options.functions)
        try:
            grading.load(program)
            sandboxes.prepare(options, policy, setup)
            grading.run()
        finally:
            grading.finish()
    return grading.result(
        name=name, key=submission_key(data, source_bytes, suite.version, options.functions,
                                      degraded_here()),
        submission={"path": str(path), "kind": kind, "student": student, "notebook": notebook,
                    "sha256": hashlib.sha256(data).hexdigest()},
        run={"started": started.isoformat(timespec="seconds"),
             "seconds": round(time.monotonic() - clock, 3), "host": platform.node(),
             "autograder": __version__, "purpose": "self-check" if options.self_check else
             "grading",
             **({"only": list(options.functions)} if options.functions else {})})


def grade_submission(path: Path, options: GradeOptions, name: str | None = None, *,
                     suite=None, sandboxes: Sandboxes | None = None) -> dict:
    """Grade one file (notebook or .py) in this process; write its JSON if out_dir is set."""
    path = Path(path)
    sub = extraction.describe_submission(path, options.assignment)
    name = name or (f"{sub.student}__{sub.notebook}" if sub.student else path.stem)
    data, why = load_submission(path, options.assignment)
    result = grade_notebook_data(data, kind=sub.kind, options=options, name=name, path=str(path),
                                 student=sub.student, notebook=sub.notebook,
                                 fatal=f"{why}; no code was graded" if why else None,
                                 suite=suite, sandboxes=sandboxes)
    if options.out_dir is not None:
        results.write_result(options.out_dir, result)
    return result


# ----------------------------------------------------------------------------- workers

def warm_up(assignment: str) -> None:
    """Import the oracle and run the suite's warm() so Numba's cache is filled once."""
    from autograder.suites import load_suite
    load_suite(assignment).warm()


class SuiteChanged(Exception):
    """The hidden suite's files changed since this worker loaded it."""


@dataclass(frozen=True)
class Job:
    """One submission for a GradingWorker: the file at `path`, which the worker reads itself,
    or notebook bytes (`data`, from nbgrader) and where they came from. `refused`: why the
    caller would not let it be graded (the result then says so)."""

    options: GradeOptions
    name: str
    path: str
    data: bytes | None = None
    refused: str | None = None
    student: str | None = None
    notebook: str | None = None
    source_path: str | None = None


class GradingWorker:
    """What a grading process keeps between submissions: its suite (loaded and warmed once,
    pinned to one version) and its spare sandbox. Made in each worker by `WorkerPool`."""

    def __init__(self, assignment: str, suite_version: str | None = None):
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        import pytest  # noqa: F401 - imported once per worker, not per submission

        from autograder.suites import load_suite
        self.suite = load_suite(assignment)
        self.suite.warm()
        if suite_version is not None and self.suite.version != suite_version:
            raise SuiteChanged(f"the hidden suite {assignment} is at version "
                               f"{self.suite.version}, not {suite_version}")
        self.sandboxes = Sandboxes(spare=True)

    def grade(self, job: Job) -> dict:
        from autograder.suites import load_suite
        if load_suite(self.suite.name).version != self.suite.version:
            # Its test files may already be imported here: never stamp old code as new.
            raise SuiteChanged(f"the hidden suite {self.suite.name} was edited while grading "
                               f"(this worker has version {self.suite.version})")
        if job.data is None:
            return grade_submission(Path(job.path), job.options, job.name, suite=self.suite,
                                    sandboxes=self.sandboxes)
        result = grade_notebook_data(
            job.data, kind="notebook", options=job.options, name=job.name, path=job.path,
            student=job.student, notebook=job.notebook,
            source_path=Path(job.source_path) if job.source_path else None,
            fatal=f"{job.refused}; no code was graded" if job.refused else None,
            suite=self.suite, sandboxes=self.sandboxes)
        if job.options.out_dir is not None:
            results.write_result(job.options.out_dir, result)
        return result

    def close(self) -> None:
        self.sandboxes.close()


def worker_pool(assignment: str, *, size: int, options: GradeOptions,
                suite_version: str | None = None) -> WorkerPool:
    """`size` spawned GradingWorkers for `assignment`; each submission may take
    options.limits.submission_timeout + options.worker_margin seconds."""
    return WorkerPool(GradingWorker, (assignment, suite_version), size=size,
                      job_timeout=options.limits.submission_timeout + options.worker_margin)


# ----------------------------------------------------------------------------- a batch

@dataclass
class BatchSummary:
    graded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    results: list[dict] = field(default_factory=list)
    gradebook: Path | None = None
    seconds: float = 0.0


def internal_error_result(path: Path, name: str, options: GradeOptions, suite, message: str,
                          detail: str = "") -> dict:
    """A result for a submission the grader itself could not handle (never silently lost).

    It has the submission's real key, so a re-run skips it; --force grades it again.
    """
    sub = extraction.describe_submission(path, options.assignment)
    data, _ = load_submission(path, options.assignment)
    errors = [{"function": None, "message": f"the grader failed on this submission "
                                            f"({message}); grade it again with --force"}]
    if detail:
        errors.append({"function": None, "message": f"grader traceback: {detail}"})
    return results.bounded({
        "schema": results.SCHEMA, "name": name, "assignment": suite.name,
        "submission": {"path": str(path), "kind": sub.kind, "student": sub.student,
                       "notebook": sub.notebook, "sha256": hashlib.sha256(data).hexdigest()},
        "suite_version": suite.version, "key": result_key(path, options, suite),
        "score": 0.0, "max_score": 0.0, "functions": {}, "tests": [], "errors": errors,
        "notes": [], "sandbox": {}, "run": {"autograder": __version__}})


def submission_inputs(path: Path, options: GradeOptions, suite):
    """(the submission's bytes, its description, its source notebook or None), and the result
    key they give: the same for local and cluster grading."""
    data, _ = load_submission(path, options.assignment)
    sub = extraction.describe_submission(path, options.assignment)
    source = find_source_notebook(options.source_dir, options.assignment, sub.notebook,
                                  suite.notebook)
    source_bytes = source.read_bytes() if source else b""
    key = submission_key(data, source_bytes, suite.version, options.functions, degraded_here())
    return data, sub, source, key


def result_key(path: Path, options: GradeOptions, suite) -> str:
    """The key a result for `path` gets (resume-by-key compares it)."""
    return submission_inputs(path, options, suite)[3]


def plan_batch(paths: list[Path], options: GradeOptions, suite, *,
               shard: tuple[int, int] | None, force: bool,
               summary: BatchSummary) -> tuple[dict[Path, str], list[Path]]:
    """Names every submission, keeps shard k of n, and puts those whose result in out_dir is
    up to date (same key) into `summary` as skipped (resume). Returns (names, paths to grade)."""
    check_selection(options.functions, suite)
    paths = [Path(p) for p in paths]
    names = results.result_names(
        paths, lambda p: extraction.describe_submission(p, options.assignment))
    if shard is not None:
        k, n = shard
        paths = [p for p in paths if shard_of(names[p], n) == k]
    todo = []
    for path in paths:
        existing = results.read_result(Path(options.out_dir) / f"{names[path]}.json") \
            if options.out_dir else None
        if (existing and not force
                and existing.get("key") == result_key(path, options, suite)):
            summary.skipped.append(names[path])
            summary.results.append(existing)
        else:
            todo.append(path)
    return names, todo


def finish_batch(options: GradeOptions, suite, summary: BatchSummary, *, gradebook: bool,
                 started: float) -> BatchSummary:
    """Writes the gradebook of everything in out_dir (when asked), sorts the results by name
    and records the batch's seconds since `started` (time.monotonic)."""
    if options.out_dir is not None and gradebook:
        everything = [r for r in (results.read_result(p) for p in
                                  sorted(Path(options.out_dir).glob("*.json")))
                      if r is not None and r.get("assignment") == options.assignment]
        summary.gradebook = results.write_gradebook(
            everything, Path(options.out_dir) / "gradebook.csv", list(suite.functions))
    summary.results.sort(key=lambda r: r["name"])
    summary.seconds = round(time.monotonic() - started, 3)
    return summary


def grade_batch(paths: list[Path], options: GradeOptions, *, jobs: int = 1,
                shard: tuple[int, int] | None = None, force: bool = False,
                progress: bool = True, gradebook: bool = True) -> BatchSummary:
    """Grade many submissions with `jobs` worker processes; see the module docstring."""
    from autograder.suites import load_suite
    started = time.monotonic()
    suite = load_suite(options.assignment)
    summary = BatchSummary()
    names, todo = plan_batch(paths, options, suite, shard=shard, force=force, summary=summary)
    if todo:
        warm_up(options.assignment)     # fills Numba's cache before workers race to write it
        _grade_in_workers(todo, names, options, suite, jobs, progress, summary)
    return finish_batch(options, suite, summary, gradebook=gradebook, started=started)


def _grade_in_workers(todo: list[Path], names: dict, options: GradeOptions, suite, jobs: int,
                      progress: bool, summary: BatchSummary) -> None:
    from tqdm import tqdm
    work = [Job(options=options, name=names[p], path=str(p)) for p in todo]
    bar = tqdm(total=len(work), desc=f"grading {options.assignment}", unit="submission",
               disable=not progress, mininterval=0.5)
    try:
        with worker_pool(options.assignment, size=jobs, options=options,
                         suite_version=suite.version) as pool:
            for job, outcome in pool.run(work):
                bar.update(1)
                if outcome.ok:
                    summary.graded.append(job.name)
                    summary.results.append(outcome.value)
                    continue
                summary.failed[job.name] = outcome.error
                result = internal_error_result(Path(job.path), job.name, options, suite,
                                               outcome.error, outcome.detail)
                summary.results.append(result)
                if options.out_dir is not None:
                    results.write_result(options.out_dir, result)
    finally:
        bar.close()
