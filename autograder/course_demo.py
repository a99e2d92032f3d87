"""The instructor's whole nbgrader cycle on the kit's three assignments, in a scratch course.

    python -m autograder.course_demo [--dir build/demo_course]

Steps, each the real nbgrader CLI, exactly as an instructor runs them:
1. copy nbgrader_config.py and assignments/source/ into the course directory;
2. `nbgrader generate_assignment` for every assignment (the release has no solutions and no
   hidden tests);
3. three sample students (`nbgrader db student import`, with names) and their submissions, each
   with nbgrader's timestamp.txt: `reference` (the source's solutions), `blank` (the release as
   handed out) and `buggy` (the reference with one plausible bug, see BUGS);
4. `nbgrader autograde` (through the kit's trusted runner), `generate_feedback`, `export`;
5. print the gradebook.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat

KIT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = ("a1_linear_classifiers", "a2_fully_connected", "a3_convolutional_nets")
STUDENTS = ("reference", "blank", "buggy")
# Names formgrader shows for them ("Last, First"); the first name says what the submission is.
NAMES = {"reference": ("Reference", "Solution"), "blank": ("Blank", "Release"),
         "buggy": ("Buggy", "Solution")}
# One plausible student bug per assignment: (solution cell grade_id, old text, new text).
BUGS = {
    "a1_linear_classifiers": ("compute_distances_no_loops",
                              "train_sq - 2.0 * (X_test @ X_train.T)",
                              "train_sq + 2.0 * (X_test @ X_train.T)"),
    "a2_fully_connected": ("adagrad", "cache = cache + dw**2", "cache = dw**2"),
    "a3_convolutional_nets": ("conv_backward_naive", "db = dout.sum(axis=(0, 2, 3))",
                              "db = dout.sum(axis=(0, 2, 3)) / N"),
}


def nbgrader(course: Path, *args: str) -> str:
    """Run the nbgrader CLI in `course`; raise with its output if it fails."""
    env = dict(os.environ)
    # nbgrader runs alembic (its gradebook migrations) as a command: it must be on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout + done.stderr


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _solution_code(source: str) -> str:
    """A source cell's code as a student who solved it would write it (markers removed)."""
    return "\n".join(line for line in source.splitlines()
                     if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))


def student_notebook(release: Path, source: Path, student: str, assignment: str):
    """The release notebook as `student` hands it in."""
    notebook = nbformat.read(release, as_version=4)
    if student == "blank":
        return notebook
    solutions = {_grade_id(cell): _solution_code(cell.source)
                 for cell in nbformat.read(source, as_version=4).cells
                 if cell.get("metadata", {}).get("nbgrader", {}).get("solution")}
    for cell in notebook.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            cell.source = solutions[_grade_id(cell)]
    if student == "buggy":
        grade_id, old, new = BUGS[assignment]
        cell = next(c for c in notebook.cells if _grade_id(c) == grade_id)
        if old not in cell.source:
            raise ValueError(f"BUGS[{assignment!r}]: {old!r} is not in solution cell {grade_id}")
        cell.source = cell.source.replace(old, new, 1)
    return notebook


def import_students(course: Path) -> None:
    """Add the sample students, with their names, to the course's gradebook."""
    roster = course / "students.csv"
    with roster.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "first_name", "last_name"])
        writer.writerows([student, *NAMES[student]] for student in STUDENTS)
    nbgrader(course, "db", "student", "import", str(roster))


def timestamp(submitted: datetime) -> str:
    """nbgrader's timestamp.txt format."""
    return submitted.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def build_course(course: Path, assignments=ASSIGNMENTS) -> Path:
    """Steps 1-4; returns the exported grades CSV."""
    if course.exists():
        shutil.rmtree(course)
    (course / "assignments").mkdir(parents=True)
    shutil.copy(KIT / "nbgrader_config.py", course / "nbgrader_config.py")
    import_students(course)
    handed_in = datetime.now(UTC) - timedelta(hours=1)
    for assignment in assignments:
        shutil.copytree(KIT / "assignments" / "source" / assignment,
                        course / "assignments" / "source" / assignment)
        print(f"generate_assignment {assignment}", flush=True)
        nbgrader(course, "generate_assignment", assignment)
        release = course / "assignments" / "release" / assignment / f"{assignment}.ipynb"
        source = course / "assignments" / "source" / assignment / f"{assignment}.ipynb"
        for minutes, student in enumerate(STUDENTS):
            target = course / "submitted" / student / assignment / f"{assignment}.ipynb"
            target.parent.mkdir(parents=True)
            nbformat.write(student_notebook(release, source, student, assignment), target)
            (target.parent / "timestamp.txt").write_text(
                timestamp(handed_in + timedelta(minutes=minutes)))
        print(f"autograde {assignment} ({', '.join(STUDENTS)})", flush=True)
        nbgrader(course, "autograde", assignment)
        nbgrader(course, "generate_feedback", assignment)
    grades = course / "grades.csv"
    nbgrader(course, "export", "--to", str(grades))
    return grades


def read_grades(grades: Path) -> dict[tuple[str, str], tuple[float, float]]:
    """{(assignment, student): (score, max_score)} from nbgrader's exported CSV."""
    with grades.open() as f:
        return {(row["assignment"], row["student_id"]):
                (float(row["score"]), float(row["max_score"])) for row in csv.DictReader(f)}


def print_gradebook(grades: dict) -> None:
    """Scores include only autograded points: free-response answers await formgrader."""
    assignments = sorted({a for a, _ in grades})
    print(f"\n{'student':<10}" + "".join(f"{a:>26}" for a in assignments))
    for student in STUDENTS:
        cells = []
        for assignment in assignments:
            score, max_score = grades[(assignment, student)]
            cells.append(f"{score:>15.1f} / {max_score:<8.1f}")
        print(f"{student:<10}" + "".join(f"{c:>26}" for c in cells))
    print("(max includes the free-response points, graded by hand in formgrader)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=KIT / "build" / "demo_course",
                        help="scratch course directory (replaced); default build/demo_course")
    args = parser.parse_args(argv)
    grades = build_course(args.dir.resolve())
    print_gradebook(read_grades(grades))
    print(f"\nCourse directory: {args.dir}  (feedback in {args.dir / 'feedback'})")


if __name__ == "__main__":
    main()
