"""From a submission (notebook or .py) to the code the sandbox runs, as small units.

Which code is taken from a notebook:

* the student's **solution cells**: code cells with nbgrader metadata `solution: true` (and
  not `grade: true`, which marks a manually graded answer), or whose `grade_id` is a solution
  cell's id in the SOURCE notebook; in the student's notebook order, duplicates included (as in
  "Restart and run all", the later definition wins; a note says so);
* the instructor's **setup cells** from the SOURCE notebook
  (`assignments/source/<assignment>/<notebook>.ipynb`), never from the student's copy: code
  cells that are neither solution nor test cells. Only their declarations are kept (imports,
  `def`, `class`, assignments of literal constants, and `if`/`try` blocks made of those), so a
  demo, a plot or a data download in a setup cell costs nothing at grading time. Without a
  source notebook, locked setup cells of the student's copy are used if their nbgrader
  checksum is intact;
* test cells (`grade: true`) are never taken: the hidden suite runs in the trusted parent.

How top-level statements of the student's cells are handled: every top-level statement is
one *unit* and is executed in the sandbox, in order, into one namespace. A unit that raises,
hangs or kills the process is reported and skipped, and loading goes on, so a stray test line
or a training loop left in a solution cell costs only what that statement itself defines.

IPython magics and shell escapes (`%`, `%%`, `!`, `?`) are rewritten by IPython's own input
transformer into calls of `get_ipython()`, which in the sandbox is a stand-in that does
nothing: they are never executed. `%%time`, `%%timeit`, `%%capture` and `%%prun` cells keep
their body as Python; any other cell magic (`%%bash`, `%%writefile`, ...) drops the cell.

A notebook that is not valid JSON, or cells that do not parse, give a clear message and 0
only for what they affect; nothing here raises for a bad submission.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Program", "Submission", "describe_submission", "extract", "clean_source",
           "compute_checksum"]

KEEP_BODY_MAGICS = {"time", "timeit", "capture", "prun"}


@dataclass
class Submission:
    """Where a submission sits: nbgrader's submitted/<student>/<assignment>/<nb>.ipynb or loose."""

    path: Path
    kind: str                      # "notebook" or "python"
    student: str | None            # None for a loose file
    notebook: str                  # file stem (nbgrader's notebook id)
    course_root: Path | None       # nbgrader course directory, when the layout says so


@dataclass
class Program:
    """The student's code as units for the sandbox, plus notes for the report."""

    units: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fatal: str | None = None
    broken: dict[str, str] = field(default_factory=dict)   # name -> why its code could not run

    def add_problems(self, where: str, problems: list[tuple[list[str], str]]) -> None:
        for names, message in problems:
            self.notes.append(f"{where}: {message}; that part was not run")
            for name in names:
                self.broken.setdefault(name, f"{where} has a {message}")


def describe_submission(path: Path, assignment: str) -> Submission:
    path = Path(path)
    kind = "python" if path.suffix == ".py" else "notebook"
    student = course_root = None
    parent = path.parent
    if parent.name == assignment and parent.parent.parent.name:
        student = parent.parent.name
        course_root = parent.parent.parent.parent
    return Submission(path=path, kind=kind, student=student, notebook=path.stem,
                      course_root=course_root)


# ----------------------------------------------------------------------------- nbgrader bits

def _nbgrader(cell: dict) -> dict:
    meta = cell.get("metadata") or {}
    value = meta.get("nbgrader") if isinstance(meta, dict) else None
    return value if isinstance(value, dict) else {}


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def compute_checksum(cell: dict) -> str:
    """nbgrader's `utils.compute_checksum`, without importing nbgrader (slow to import)."""
    nb = _nbgrader(cell)
    grade, solution = bool(nb.get("grade", False)), bool(nb.get("solution", False))
    locked = False if solution else True if grade else bool(nb.get("locked", False))
    m = hashlib.md5()
    for part in (_source(cell), cell.get("cell_type", ""), str(grade), str(solution),
                 str(locked), nb.get("grade_id", "")):
        m.update(str(part).encode("utf-8"))
    if grade:
        m.update(str(float(nb.get("points", 0))).encode("utf-8"))
    return m.hexdigest()


def _role(cell: dict) -> str:
    """'solution', 'test', 'manual', 'setup' (locked or plain code) or 'other'."""
    if cell.get("cell_type") != "code":
        return "other"
    nb = _nbgrader(cell)
    if nb.get("solution") and nb.get("grade"):
        return "manual"
    if nb.get("solution"):
        return "solution"
    if nb.get("grade"):
        return "test"
    return "setup"


MAX_LABEL = 80      # characters of a cell's grade_id kept in unit ids, file names and notes


def _label(cell: dict, index: int) -> str:
    """The cell's grade_id (student-controlled, so shortened), else its position."""
    grade_id = _nbgrader(cell).get("grade_id")
    if not grade_id:
        return f"#{index + 1}"
    label = str(grade_id)
    return label if len(label) <= MAX_LABEL else label[:MAX_LABEL] + "..."


# ----------------------------------------------------------------------------- source cleaning

def clean_source(source: str) -> tuple[str | None, str | None]:
    """(python code or None to skip the cell, note) with magics made inert."""
    lines = source.splitlines()
    note = None
    first = lines[0].strip() if lines else ""
    if first.startswith("%%"):
        magic = first[2:].split(maxsplit=1)[0] if len(first) > 2 else ""
        if magic not in KEEP_BODY_MAGICS:
            return None, f"cell magic %%{magic} is not Python; the cell was skipped"
        source = "\n".join(lines[1:])
        note = f"cell magic %%{magic} removed"
    if any(line.lstrip().startswith(("%", "!", "?")) or line.rstrip().endswith("?")
           for line in source.splitlines()):
        from IPython.core.inputtransformer2 import TransformerManager
        try:
            transformed = TransformerManager().transform_cell(source)
        except Exception:  # noqa: BLE001 - fall back to the raw text, reported as a syntax error
            transformed = source
        if transformed.rstrip("\n") != source.rstrip("\n"):
            source = transformed
            note = note or "IPython magics / shell escapes made inert"
    return source, note


# ----------------------------------------------------------------------------- units

def _is_declarative(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.AsyncFunctionDef
                  | ast.ClassDef | ast.Pass):
        return True
    if isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
        try:
            ast.literal_eval(stmt.value)
            return True
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return False
    if isinstance(stmt, ast.If | ast.Try):
        blocks = [stmt.body, stmt.orelse]
        if isinstance(stmt, ast.Try):
            blocks += [h.body for h in stmt.handlers] + [stmt.finalbody]
        return all(_is_declarative(s) for block in blocks for s in block)
    return False


def _defines(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [stmt.name]
    names = []
    if isinstance(stmt, ast.Import | ast.ImportFrom):
        names = [(a.asname or a.name).split(".")[0] for a in stmt.names if a.name != "*"]
    elif isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        for target in targets:
            names += [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]
    else:
        for node in ast.walk(stmt):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.append(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.append(node.id)
    return sorted(set(names))


_DEF_RE = re.compile(r"^(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)", re.M)


def _statement_lines(code: str) -> set[int]:
    """Line numbers where a top-level statement starts (tokenizer-based, so lines inside a
    multi-line string or bracket do not count). Where the tokenizer gives up (an unclosed
    bracket or string), every later column-0 line counts as a start."""
    starts, settled, fresh, depth = set(), 0, True, 0
    skip = (tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING)
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            if token.type in (tokenize.NEWLINE, tokenize.NL):
                fresh = depth == 0
                if fresh:
                    settled = token.end[0]
            elif token.type not in skip:
                if fresh and token.start[1] == 0:
                    starts.add(token.start[0])
                fresh = False
                if token.type == tokenize.OP and token.string in "([{":
                    depth += 1
                elif token.type == tokenize.OP and token.string in ")]}":
                    depth = max(0, depth - 1)
    except (tokenize.TokenError, SyntaxError):
        for number, line in enumerate(code.splitlines(), start=1):
            if number > settled and line and not line[0].isspace():
                starts.add(number)
    return starts


def _chunks(code: str) -> list[tuple[int, str]]:
    """Split source at top-level statement starts (decorators stay with their def)."""
    starts = _statement_lines(code)
    chunks: list[list] = []
    pending_decorator = False
    for number, line in enumerate(code.splitlines(), start=1):
        if not chunks or number in starts and not pending_decorator:
            chunks.append([number, [line]])
        else:
            chunks[-1][1].append(line)
        if number in starts:
            pending_decorator = line.startswith("@")
    return [(start, "\n".join(lines) + "\n") for start, lines in chunks]


def split_units(code: str, label: str, origin: str, declarative_only: bool = False
                ) -> tuple[list[dict], list[tuple[list[str], str]]]:
    """One unit per top-level statement (statements sharing a line stay together).

    A unit's code starts at its own first line; `line` is where that is in the cell, and the
    sandbox compiles it there, so tracebacks point at the student's line.
    If the code does not parse, it is cut at column-0 lines and every piece that parses is
    still used; returns (units, problems) with problems as (names it would define, message).
    """
    problems: list[tuple[list[str], str]] = []
    try:
        trees = [(1, ast.parse(code))]
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        trees = []
        for start, chunk in _chunks(code):
            try:
                tree = ast.parse(chunk)
                ast.increment_lineno(tree, start - 1)
                trees.append((start, tree))
            except SyntaxError as exc:
                line = (exc.lineno or 1) + start - 1
                problems.append((_DEF_RE.findall(chunk),
                                 f"syntax error on line {line}: {exc.msg}"))
            except (ValueError, MemoryError, RecursionError) as exc:
                problems.append((_DEF_RE.findall(chunk),
                                 f"code that could not be parsed ({type(exc).__name__})"))
    lines = code.splitlines()
    spans: list[list] = []
    for _, tree in trees:
        for stmt in tree.body:
            if declarative_only and not _is_declarative(stmt):
                continue
            decorators = getattr(stmt, "decorator_list", [])
            start = min([stmt.lineno] + [d.lineno for d in decorators])
            end = stmt.end_lineno or stmt.lineno
            if spans and start <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], end)
                spans[-1][2].append(stmt)
            else:
                spans.append([start, end, [stmt]])
    units = []
    for k, (start, end, stmts) in enumerate(spans):
        # No padding: the sandbox moves the statements to `line` (padding each unit with blank
        # lines made the work quadratic in the number of statements).
        body = "\n".join(lines[start - 1:end]) + "\n"
        units.append({"id": f"{origin}:{label}:{k + 1}",
                      "file": "module" if origin == "module" else f"{origin} cell {label}",
                      "code": body, "origin": origin, "cell": label, "line": start,
                      "defines": sorted({n for s in stmts for n in _defines(s)})})
    return units, problems


# ----------------------------------------------------------------------------- notebooks

def _read_notebook(data: bytes) -> dict:
    nb = json.loads(data.decode("utf-8"))
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError("it has no list of cells")
    if int(nb.get("nbformat", 4)) < 4:
        raise ValueError(f"nbformat {nb.get('nbformat')} is too old (need 4)")
    return nb


def _setup_units(source_nb: dict | None, student_nb: dict, program: Program) -> list[dict]:
    units = []
    if source_nb is not None:
        cells = [(i, c) for i, c in enumerate(source_nb["cells"]) if _role(c) == "setup"]
        origin = "setup"
    else:
        cells = []
        for i, cell in enumerate(student_nb["cells"]):
            nb = _nbgrader(cell)
            if _role(cell) == "setup" and nb.get("locked") and nb.get("grade_id"):
                if nb.get("checksum") == compute_checksum(cell):
                    cells.append((i, cell))
                else:
                    program.notes.append(f"setup cell {nb['grade_id']} was edited; not used")
        if cells:
            program.notes.append("no source notebook found: used the locked setup cells of "
                                 "the submission (checksums verified)")
        origin = "setup"
    for i, cell in cells:
        code, _ = clean_source(_source(cell))
        if code is None:
            continue
        cell_units, problems = split_units(code, _label(cell, i), origin, declarative_only=True)
        for _, message in problems:
            program.notes.append(f"instructor setup cell {_label(cell, i)}: {message}")
        units += cell_units
    return units


def _notebook_units(data: bytes, source_nb: dict | None, program: Program) -> list[dict]:
    try:
        nb = _read_notebook(data)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, TypeError) as exc:
        program.fatal = f"the notebook could not be read ({exc}); no code was graded"
        return []
    source_solutions, source_tests = set(), set()
    if source_nb is not None:
        for cell in source_nb["cells"]:
            grade_id = _nbgrader(cell).get("grade_id")
            if _role(cell) == "solution":
                source_solutions.add(grade_id)
            elif _role(cell) in ("test", "setup") and grade_id:
                source_tests.add(grade_id)
    chosen, seen = [], {}
    for i, cell in enumerate(nb["cells"]):
        if not isinstance(cell, dict):
            continue
        grade_id = _nbgrader(cell).get("grade_id")
        role = _role(cell)
        if role == "solution" or (cell.get("cell_type") == "code" and grade_id in
                                  source_solutions and grade_id not in source_tests):
            chosen.append((i, cell))
            seen[grade_id] = seen.get(grade_id, 0) + 1
    if not chosen and not any(_nbgrader(c) for c in nb["cells"] if isinstance(c, dict)):
        # A plain notebook (no nbgrader metadata at all): every code cell is the student's.
        chosen = [(i, c) for i, c in enumerate(nb["cells"])
                  if isinstance(c, dict) and c.get("cell_type") == "code"]
        program.notes.append("the notebook has no nbgrader metadata: all its code cells were used")
    for grade_id, count in sorted((k, v) for k, v in seen.items() if k and v > 1):
        program.notes.append(f"cell {grade_id} appears {count} times; cells run in notebook "
                             "order, so the last definition wins")
    for grade_id in sorted(source_solutions - set(seen)):
        program.notes.append(f"solution cell {grade_id} is missing from the submission")
    units = _setup_units(source_nb, nb, program)
    labels: dict[str, int] = {}
    for i, cell in chosen:
        label = _label(cell, i)
        labels[label] = labels.get(label, 0) + 1
        if labels[label] > 1:
            label = f"{label} (copy {labels[label]})"
        code, note = clean_source(_source(cell))
        if note:
            program.notes.append(f"cell {label}: {note}")
        if code is None:
            continue
        cell_units, problems = split_units(code, label, "student")
        program.add_problems(f"cell {label}", problems)
        units += cell_units
    return units


def load_source_notebook(path: Path | None) -> tuple[dict | None, bytes]:
    if path is None or not Path(path).is_file():
        return None, b""
    data = Path(path).read_bytes()
    try:
        return _read_notebook(data), data
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, TypeError):
        return None, data


def extract(data: bytes, kind: str, source_nb: dict | None = None) -> Program:
    """The program (units + notes) for a submission's bytes."""
    program = Program()
    if kind == "unreadable":
        program.fatal = data.decode(errors="replace") + "; no code was graded"
        return program
    if kind == "python":
        try:
            code = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            program.fatal = f"the file is not UTF-8 text ({exc}); no code was graded"
            return program
        units, problems = split_units(code, "module", "module")
        program.add_problems("the file", problems)
        program.units = units
        return program
    program.units = _notebook_units(data, source_nb, program)
    return program
