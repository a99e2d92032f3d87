"""Results in the formats of the platforms courses grade on: Gradescope, PrairieLearn, Canvas.

* `gradescope_results(result)`   - Gradescope's /autograder/results/results.json: `score`,
  `execution_time`, `output`, and per test `name`, `score`, `max_score`, `status`, `output`,
  `visibility` (Gradescope autograder specification, "Output format").
* `prairielearn_results(result)` - PrairieLearn's external-grader results.json: `gradable`,
  `score` in [0, 1], `message`, and per test `name`, `points`, `max_points`, `message`; kept
  under PRAIRIELEARN_MAX_BYTES (PrairieLearn does not accept larger result files) by
  shortening messages.
* `write_canvas_csv(results, path, assignment)` - a CSV for Canvas's gradebook import:
  `Student, ID, SIS User ID, SIS Login ID, Section` then one column for the assignment, a
  `Points Possible` row first. Canvas matches rows to students by ID, SIS User ID or SIS Login
  ID; without a roster the nbgrader student id goes into `SIS Login ID`; with `roster` (a
  gradebook export downloaded from the same Canvas course) the identity columns are taken from
  it, matched on SIS Login ID, SIS User ID or ID.
* `gradescope_bundle(assignment, out)` - the autograder.zip Gradescope builds its image from.

Messages are the suites' messages, which never show hidden test code or inputs.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

from autograder import results
from autograder.results import _cell as spreadsheet_text  # the kit's one formula escape

__all__ = ["gradescope_results", "prairielearn_results", "write_canvas_csv",
           "gradescope_bundle", "platform_results", "FORMATS", "PRAIRIELEARN_MAX_BYTES",
           "CANVAS_IDENTITY"]

FORMATS = ("gradescope", "prairielearn")
PRAIRIELEARN_MAX_BYTES = 1_000_000
CANVAS_IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
GRADESCOPE_VISIBILITY = ("visible", "hidden", "after_due_date", "after_published")


def _test_name(test: dict) -> str:
    check = test["id"].split("::")[-1].removeprefix("test_").replace("_", " ")
    return f"{test['function']}: {check}"


def _general_output(result: dict) -> str:
    """The errors that belong to no single test, and the notes, as plain text."""
    lines = [f"Score: {result['score']:g} / {result['max_score']:g}"]
    lines += [f"! {e['message']}" for e in result.get("errors", []) if e.get("function") is None]
    lines += [f"note: {n}" for n in result.get("notes", [])]
    return "\n".join(lines)


def gradescope_results(result: dict, *, visibility: str = "visible") -> dict:
    """Gradescope's results.json for one result; `visibility` of the tests and the whole."""
    if visibility not in GRADESCOPE_VISIBILITY:
        raise ValueError(f"visibility must be one of {', '.join(GRADESCOPE_VISIBILITY)}; "
                         f"got {visibility!r}")
    return {
        "score": float(result["score"]),
        "execution_time": float(result.get("run", {}).get("seconds", 0.0)),
        "output": _general_output(result),
        "visibility": visibility,
        "stdout_visibility": "hidden",
        "tests": [{"name": _test_name(t), "score": float(t["points"]),
                   "max_score": float(t["max_points"]),
                   "status": "passed" if t["passed"] else "failed",
                   "output": t["message"], "visibility": visibility}
                  for t in result.get("tests", [])],
        "extra_data": {"assignment": result["assignment"],
                       "suite_version": result.get("suite_version"),
                       "key": result.get("key")},
    }


def prairielearn_results(result: dict) -> dict:
    """PrairieLearn's results.json for one result, at most PRAIRIELEARN_MAX_BYTES of JSON."""
    max_score = float(result.get("max_score") or 0.0)
    payload = {
        "gradable": True,
        "score": round(float(result["score"]) / max_score, 6) if max_score else 0.0,
        "message": _general_output(result),
        "tests": [{"name": _test_name(t), "points": float(t["points"]),
                   "max_points": float(t["max_points"]), "message": t["message"]}
                  for t in result.get("tests", [])],
    }
    for limit in (results.MESSAGE_CHARS, 200, 40, 0):
        if len(json.dumps(payload).encode()) <= PRAIRIELEARN_MAX_BYTES:
            break
        payload["message"] = results.clip(payload["message"], max(limit, 40))
        payload["tests"] = [dict(t, message=results.clip(t["message"], limit) if limit else "")
                            for t in payload["tests"]]
    return payload


def platform_results(result: dict, platform: str) -> dict:
    """`result` in `platform`'s format (one of FORMATS)."""
    if platform == "gradescope":
        return gradescope_results(result)
    if platform == "prairielearn":
        return prairielearn_results(result)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {platform!r}")


# ----------------------------------------------------------------------------- Canvas

def _read_roster(roster: Path) -> dict[str, dict]:
    """Canvas gradebook export -> {any of SIS Login ID, SIS User ID, ID: identity columns}."""
    with open(roster, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    if not rows or not set(CANVAS_IDENTITY[1:4]) & set(rows[0]):
        got = ", ".join(rows[0]) if rows else "no rows"
        raise ValueError(f"roster {roster} should be a Canvas gradebook export with the "
                         f"columns {', '.join(CANVAS_IDENTITY)}; got {got}")
    people = {}
    for row in rows:
        if row.get("Student", "").strip() in ("Points Possible", "") and not row.get("ID"):
            continue
        identity = {column: (row.get(column) or "").strip() for column in CANVAS_IDENTITY}
        for column in ("SIS Login ID", "SIS User ID", "ID"):
            if identity[column]:
                people.setdefault(identity[column], identity)
    return people


def write_canvas_csv(result_list: list[dict], path: Path, assignment: str, *,
                     column: str | None = None, roster: Path | None = None) -> tuple[Path, list]:
    """The Canvas import CSV for one assignment; returns (path, students not in the roster).

    `column`: the assignment column's title (default: the assignment name; Canvas matches an
    existing assignment by "Name (ID)", or creates one). Text cells are escaped against
    spreadsheet formulas as in the kit's own gradebook.
    """
    people = _read_roster(roster) if roster is not None else None
    column = column or assignment
    by_student: dict[str, dict] = {}
    for result in sorted(result_list, key=lambda r: r["name"]):
        student = (result.get("submission") or {}).get("student") or result["name"]
        best = by_student.get(student)
        if best is None or result["score"] > best["score"]:
            by_student[student] = result
    possible = max([float(r.get("max_score") or 0) for r in result_list] or [0.0])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([*CANVAS_IDENTITY, column])
    writer.writerow(["Points Possible", "", "", "", "", f"{possible:g}"])
    unmatched = []
    for student, result in sorted(by_student.items()):
        if people is None:
            identity = {"Student": student, "ID": "", "SIS User ID": "", "SIS Login ID": student,
                        "Section": ""}
        elif student in people:
            identity = people[student]
        else:
            unmatched.append(student)
            continue
        writer.writerow([spreadsheet_text(identity[c]) for c in CANVAS_IDENTITY]
                        + [f"{float(result['score']):g}"])
    results.atomic_write(Path(path), buffer.getvalue())
    return Path(path), unmatched


# ----------------------------------------------------------------------------- Gradescope zip

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once to build the autograder image (Ubuntu, as root).
set -euo pipefail
apt-get update -qq
apt-get install -y -qq python3 python3-venv python3-pip > /dev/null
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install --quiet --upgrade pip
/autograder/venv/bin/pip install --quiet /autograder/source/{wheel_or_kit}
# Fill the Numba cache once, in the image, so that grading does not compile.
/autograder/venv/bin/python -c "from autograder.runner import warm_up; warm_up('{assignment}')"
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for each submission: grade /autograder/submission with the kit's
# sandboxed runner, write Gradescope's results.json. AUTOGRADER_ROOT replaces /autograder
# (the kit's tests run this script against a scratch folder).
set -uo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}}"
mkdir -p "$ROOT/results"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
"$PYTHON" -m autograder gradescope-run --assignment {assignment} \\
    --submission-dir "$ROOT/submission" --results "$ROOT/results/results.json" \\
    --source "$ROOT/source/source" {limits}
"""


def gradescope_bundle(assignment: str, out: Path, *, source_dir: Path | None,
                      kit: Path | None = None, limits: str = "") -> Path:
    """autograder.zip for `assignment`: setup.sh, run_autograder, the source notebook(s)
    (for the instructor's setup cells) and the kit to install (`kit`: a wheel or sdist, or
    the kit's source tree, without .git, build/ or results)."""
    from autograder.suites import load_suite
    load_suite(assignment)                          # a clear error for an unknown assignment
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    kit = Path(kit) if kit is not None else Path(__file__).resolve().parents[1]
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
        target = kit.name if kit.is_file() else "kit"
        _write_script(bundle, "setup.sh",
                      SETUP_SH.format(wheel_or_kit=target, assignment=assignment))
        _write_script(bundle, "run_autograder",
                      RUN_AUTOGRADER.format(assignment=assignment, limits=limits))
        if kit.is_file():
            bundle.write(kit, kit.name)
        else:
            for path in sorted(_kit_files(kit)):
                bundle.write(path, f"kit/{path.relative_to(kit).as_posix()}")
        if source_dir is not None and (Path(source_dir) / assignment).is_dir():
            for path in sorted((Path(source_dir) / assignment).glob("*.ipynb")):
                bundle.write(path, f"source/{assignment}/{path.name}")
    return out


def _write_script(bundle: zipfile.ZipFile, name: str, text: str) -> None:
    info = zipfile.ZipInfo(name)
    info.external_attr = 0o100755 << 16            # executable, as Gradescope needs
    info.compress_type = zipfile.ZIP_DEFLATED
    bundle.writestr(info, text)


def _kit_files(kit: Path):
    """What `pip install` needs from the kit's tree: pyproject, README and the packages."""
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (kit / name).is_file():
            yield kit / name
    for package in ("course_lib", "autograder"):
        for path in (kit / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                yield path
