"""Result files: one JSON per submission, written atomically, and the CSV gradebook.

JSON schema (`"schema": "autograder-result/1"`); everything except `run` is the *graded part*
and is identical when the same submission is graded twice with the same suite:

    {
      "schema": "autograder-result/1",
      "name": "alice__a2_fully_connected",       # the file stem in --out
      "assignment": "a2_fully_connected",
      "submission": {"path": ..., "kind": "notebook" | "python", "student": "alice" | null,
                     "notebook": "a2_fully_connected", "sha256": ...},
      "suite_version": "16 hex digits (hash of the suite's files)",
      "key": "hash of submission + source notebook + suite + autograder version (resume)",
      "score": 17.0, "max_score": 24.0,
      "functions": {"affine_forward": {"score": 4.0, "max_score": 4.0, "passed": 3,
                                       "total": 3, "status": "passed" | "partial" | "failed"}},
      "tests": [{"id": "test_affine_relu.py::test_...", "function": "affine_forward",
                 "points": 2.0, "max_points": 2.0, "passed": true, "message": "passed"}],
      "errors": [{"function": "svm_loss" | null, "message": "..."}],
      "notes": ["cell affine_forward: IPython magics made inert", ...],
      "sandbox": {"namespaces": ..., "network": ..., "filesystem": ..., "user": ...,
                  "rlimits": {...},
                  "degraded": false,        # true: no rlimits, process groups or seccomp here
                  "active": ["..."], "inactive": ["no namespaces: ...", ...]},
      "run": {"started": ISO time, "seconds": 1.23, "host": ..., "autograder": "0.1.0",
              "purpose": "grading" | "self-check",
              "restarts": 0, "stdout_bytes": 0, "stderr_bytes": 0}   # excluded from comparisons
    }

Size caps (`bounded`, applied to every result before it is returned or written), because
messages quote what a submission controls (its exception messages, its cell names):

* every test message, error message and note: at most MESSAGE_CHARS = 2,000 characters (the
  middle is cut and marked, so the start and the end of a traceback both stay);
* at most MAX_ITEMS = 50 errors and 50 notes (a last entry says how many more there were);
* the whole result: at most MAX_RESULT_BYTES = 1,000,000 bytes of JSON; a bigger one has its
  messages cut further (to 200, then 40 characters) and a note saying so.

A submission the grader could not handle still gets a result ("internal error"): score 0, the
same `key` as a graded one (so a re-run skips it) and an error that says to grade it again
with --force.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path

__all__ = ["SCHEMA", "atomic_write", "write_result", "read_result", "graded_part",
           "write_gradebook", "format_report", "sandbox_lines", "result_names", "clip", "bounded",
           "MESSAGE_CHARS", "MAX_ITEMS", "MAX_RESULT_BYTES"]

SCHEMA = "autograder-result/1"
MESSAGE_CHARS = 2_000
MAX_ITEMS = 50
MAX_RESULT_BYTES = 1_000_000
_SHORTENED = "this result was larger than the cap of"


def clip(text: str, limit: int = MESSAGE_CHARS) -> str:
    """`text` if it has at most `limit` characters, else its start and end with a marker."""
    text = str(text)
    if len(text) <= limit:
        return text
    marker = f" [... {len(text) - limit} characters cut ...] "
    keep = max(limit - len(marker), 2)
    return text[:keep - keep // 3] + marker + text[len(text) - keep // 3:]


def _capped_list(items: list, what: str) -> list:
    if len(items) <= MAX_ITEMS:
        return items
    more = f"... and {len(items) - MAX_ITEMS + 1} more {what} (not shown)"
    last = {"function": None, "message": more} if isinstance(items[0], dict) else more
    return items[:MAX_ITEMS - 1] + [last]


def _with_messages_cut(result: dict, limit: int) -> dict:
    result = dict(result)
    result["tests"] = [dict(t, message=clip(t["message"], limit)) for t in result["tests"]]
    result["errors"] = [dict(e, message=clip(e["message"], limit)) for e in result["errors"]]
    result["notes"] = [clip(n, limit) for n in result["notes"]]
    return result


def bounded(result: dict) -> dict:
    """`result` within the size caps of the module docstring (unchanged if it already is)."""
    result = dict(result, errors=_capped_list(list(result.get("errors", [])), "errors"),
                  notes=_capped_list(list(result.get("notes", [])), "notes"),
                  tests=list(result.get("tests", [])))
    result = _with_messages_cut(result, MESSAGE_CHARS)
    for limit in (200, 40):
        if len(json.dumps(result, allow_nan=False).encode()) <= MAX_RESULT_BYTES:
            break
        result = _with_messages_cut(result, limit)
        result["notes"] = [n for n in result["notes"] if not n.startswith(_SHORTENED)][
            :MAX_ITEMS - 1] + [f"{_SHORTENED} {MAX_RESULT_BYTES:,} bytes: its messages were cut "
                               f"to {limit} characters"]
    return result


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to `path` so that a reader (or a crash) never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def write_result(out_dir: Path, result: dict) -> Path:
    path = Path(out_dir) / f"{result['name']}.json"
    atomic_write(path, json.dumps(bounded(result), indent=2, allow_nan=False) + "\n")
    return path


def read_result(path: Path) -> dict | None:
    """A result file, or None if it is missing or unreadable (it will be graded again)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == SCHEMA else None


def graded_part(result: dict) -> dict:
    """The result without its `run` block: what must be identical on a re-grade."""
    return {k: v for k, v in result.items() if k != "run"}


def result_names(paths: list[Path], describe) -> dict[Path, str]:
    """A file stem per submission: `<student>__<notebook>` in nbgrader's layout, else the file
    stem; stems that collide in the batch get a short hash of their path."""
    names = {}
    for path in paths:
        sub = describe(path)
        names[path] = f"{sub.student}__{sub.notebook}" if sub.student else path.stem
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    for path, name in names.items():
        if counts[name] > 1:
            digest = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:8]
            names[path] = f"{name}__{digest}"
    return names


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value):
    """A CSV cell that a spreadsheet shows as text: `'=1+1`, never the formula `=1+1`.

    Names and paths come from students; numbers stay numbers.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def write_gradebook(results: list[dict], path: Path, functions: list[str]) -> Path:
    """CSV: one row per submission, sorted by name; per-function scores as columns.

    Text cells that a spreadsheet would run as a formula are escaped (see `_cell`).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")     # RFC 4180; quotes any CR or LF
    writer.writerow(["name", "student", "notebook", "score", "max_score", "percent",
                     *functions, "errors", "path"])
    for result in sorted(results, key=lambda r: r["name"]):
        sub = result.get("submission", {})
        max_score = result.get("max_score") or 0
        percent = round(100 * result.get("score", 0) / max_score, 2) if max_score else 0.0
        per_function = [result.get("functions", {}).get(f, {}).get("score", "") for f in functions]
        writer.writerow([_cell(v) for v in (
            result["name"], sub.get("student") or "", sub.get("notebook", ""),
            result.get("score", 0), max_score, percent, *per_function,
            len(result.get("errors", [])), sub.get("path", ""))])
    atomic_write(path, buffer.getvalue())
    return path


def format_report(result: dict) -> str:
    """The readable report of `autograder check`: per function, points and failed checks."""
    lines = [f"Assignment {result['assignment']}: {result['submission']['path']}",
             f"Score: {result['score']:g} / {result['max_score']:g}", ""]
    function_errors: dict[str | None, list[str]] = {}
    for error in result.get("errors", []):
        function_errors.setdefault(error.get("function"), []).append(error["message"])
    for message in function_errors.get(None, []):
        lines.append(f"! {message}")
    for name, summary in result.get("functions", {}).items():
        mark = {"passed": "ok  ", "partial": "part", "failed": "FAIL"}.get(summary["status"], "")
        lines.append(f"[{mark}] {name}: {summary['score']:g} / {summary['max_score']:g} points "
                     f"({summary['passed']} of {summary['total']} checks passed)")
        shown = set()
        for test in result.get("tests", []):
            if test["function"] != name or test["passed"] or test["message"] in shown:
                continue
            shown.add(test["message"])
            check = test["id"].split("::")[-1].removeprefix("test_").replace("_", " ")
            lines.append(f"    - {check}: {test['message']}")
    notes = result.get("notes", [])
    if notes:
        lines += ["", "Notes:"] + [f"  - {note}" for note in notes]
    return "\n".join(lines + sandbox_lines(result)) + "\n"


def sandbox_lines(result: dict) -> list[str]:
    """What protected this run and what did not (from the result's `sandbox` field), and,
    for a self-check, that marks come only from the instructor's grading."""
    sandbox = result.get("sandbox") or {}
    lines = []
    if sandbox.get("active") or sandbox.get("inactive"):
        title = ("Sandbox on this system: DEGRADED (not the full sandbox of grading for marks)"
                 if sandbox.get("degraded") else "Sandbox on this system:")
        lines += ["", title]
        lines += [f"  active:     {item}" for item in sandbox.get("active") or []]
        lines += [f"  not active: {item}" for item in sandbox.get("inactive") or []]
    if (result.get("run") or {}).get("purpose") == "self-check":
        lines += ["", "This check is feedback only: marks are given only by the instructor's "
                  "grading."]
    return lines
