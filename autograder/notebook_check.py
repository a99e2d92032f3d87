"""`from autograder import check`: a student checks their work from inside the notebook.

    check("conv_forward_naive")     # one function
    check()                         # every graded function of the assignment

What is graded is the kernel's current definitions: the imports, functions, classes and
literal constants (`EPS = 1e-5`) of the cells run so far (IPython's input history; a
later definition replaces an earlier one), written to a scratch .py. So nothing needs
saving, and a cell that trains a model for minutes is not run again.
`check(notebook="my_a3.ipynb")` grades a saved file instead.
The hidden suite then runs in a separate process, `python -m autograder check --json`,
exactly as in a terminal (same sandbox, same report); the cell shows progress while it runs
and the report as HTML when it is done. The check is only feedback: grades for marks come
from the instructor's run.

Instructors switch it off or limit it per assignment in the course's nbgrader_config.py
(looked up from the notebook's folder upwards):

    c.NotebookCheck.enabled = True
    c.NotebookCheck.disabled_assignments = ["a1_linear_classifiers"]
    c.NotebookCheck.functions = {"a3_convolutional_nets": ["conv_forward_naive"]}
    c.NotebookCheck.timeout = 600

Off Linux (macOS, Windows), in a hosted notebook or in a container without namespaces the
sandbox runs with the isolation the system allows (`autograder.sandbox.system`): the report
lists the protections that were active and those that were not, and the result is marked
`sandbox.degraded` when it lacked one that grading for marks requires.
"""

from __future__ import annotations

import ast
import html
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["check", "CheckReport", "CheckSettings", "definitions_source", "load_settings"]

_KEPT = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclass
class CheckSettings:
    """What the course allows (from nbgrader_config.py's NotebookCheck section)."""

    enabled: bool = True
    disabled_assignments: list[str] = field(default_factory=list)
    functions: dict[str, list[str]] = field(default_factory=dict)
    timeout: float = 600.0
    source: str = "defaults"


def load_settings(start: Path) -> CheckSettings:
    """NotebookCheck settings of the first nbgrader_config.py in `start` or above it."""
    for folder in [start, *start.parents]:
        config_file = folder / "nbgrader_config.py"
        if config_file.is_file():
            from traitlets.config.loader import PyFileConfigLoader
            section = PyFileConfigLoader(config_file.name, path=str(folder)).load_config()
            section = section.get("NotebookCheck", {})
            return CheckSettings(enabled=bool(section.get("enabled", True)),
                                 disabled_assignments=list(section.get(
                                     "disabled_assignments", [])),
                                 functions={k: list(v) for k, v in
                                            dict(section.get("functions", {})).items()},
                                 timeout=float(section.get("timeout", 600.0)),
                                 source=str(config_file))
    return CheckSettings()


def definitions_source(cells: list[str]) -> str:
    """The imports, functions, classes and literal constants of `cells` (code run in that
    order) as a module;
    for a name defined twice the later definition is kept, at its later place. Cells that do
    not parse (magics) contribute what parses after IPython's own transformation."""
    kept: dict[str, str] = {}
    for cell in cells:
        code = _transformed(cell)
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for node in tree.body:
            if not (isinstance(node, _KEPT) or _is_constant(node)):
                continue
            text = ast.get_source_segment(code, node, padded=False) or ""
            if node.__dict__.get("decorator_list"):
                start = min(d.lineno for d in node.decorator_list)
                text = "\n".join(code.splitlines()[start - 1:node.end_lineno])
            key = (f"def:{node.name}" if hasattr(node, "name") else
                   f"set:{ast.unparse(node.targets)}" if isinstance(node, ast.Assign) else
                   f"import:{text}")
            kept.pop(key, None)
            kept[key] = text
    return "\n\n".join(kept.values()) + "\n"


def _is_constant(node: ast.stmt) -> bool:
    """`EPS = 1e-5`, `SIZES = (3, 4)`: a module constant a function may use."""
    if not (isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets)):
        return False
    try:
        ast.literal_eval(node.value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _transformed(cell: str) -> str:
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:
        return cell
    return TransformerManager().transform_cell(cell)


class CheckReport:
    """The outcome of `check`: `result` (the JSON result, or None), `text` (the report)."""

    def __init__(self, result: dict | None, text: str, assignment: str | None,
                 seconds: float = 0.0):
        self.result, self.text, self.assignment, self.seconds = result, text, assignment, seconds

    @property
    def score(self) -> float | None:
        return None if self.result is None else self.result["score"]

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        if self.result is None:
            return f"<div class='autograder-check'><pre>{html.escape(self.text)}</pre></div>"
        score, maximum = self.result["score"], self.result["max_score"]
        colour = "#2e7d32" if maximum and score >= maximum else "#b26a00" if score else "#c62828"
        sandbox = self.result.get("sandbox") or {}
        isolation = sandbox.get("namespaces") or "unknown"
        missing = "".join(f"<li>{html.escape(str(item))}</li>"
                          for item in sandbox.get("inactive") or [])
        protections = (f"<div style='color:#b26a00'><b>Not active on this system</b> "
                       f"(the report below lists what was):<ul>{missing}</ul></div>"
                       if missing else "")
        return (f"<div class='autograder-check'><b style='color:{colour}'>"
                f"{html.escape(self.assignment or '')}: {score:g} / {maximum:g} points</b> "
                f"<small>(checked in {self.seconds:.1f} s; sandbox: "
                f"{html.escape(str(isolation))}; feedback only: marks are given only by "
                f"the instructor's grading)</small>{protections}"
                f"<pre style='white-space:pre-wrap'>{html.escape(self.text)}</pre></div>")


def _history() -> list[str]:
    try:
        from IPython import get_ipython
    except ImportError:
        return []
    shell = get_ipython()
    return list(shell.user_ns.get("In", [])[1:]) if shell is not None else []


def _guess_assignment(names: list[str]) -> str | None:
    from autograder.suites import available_suites
    suites = available_suites()
    for name in names:
        for suite in suites:
            if suite in name:
                return suite
    return None


def check(function: str | None = None, *, assignment: str | None = None,
          notebook: str | os.PathLike | None = None, display: bool = True) -> CheckReport:
    """Grade the current definitions (or `notebook`) with the hidden suite and show the report.

    `function`: one graded function (default: all). `assignment`: the hidden suite (default:
    guessed from the notebook's name or folder, e.g. a3_convolutional_nets).
    """
    from autograder.suites import available_suites, load_suite
    here = Path(notebook).resolve().parent if notebook else Path.cwd()
    session = os.environ.get("JPY_SESSION_NAME", "")
    assignment = assignment or _guess_assignment(
        [str(notebook or ""), session, Path.cwd().name, str(Path.cwd())])
    if assignment not in available_suites():
        raise ValueError(f"assignment must be one of {', '.join(available_suites())}; "
                         f"got {assignment!r} (pass check(..., assignment=NAME))")
    settings = load_settings(here)
    refusal = _refusal(settings, assignment, function, list(load_suite(assignment).functions))
    if refusal:
        return _show(CheckReport(None, refusal, assignment), display)
    with tempfile.TemporaryDirectory(prefix="autograder-check-") as scratch:
        if notebook is not None:
            target = Path(notebook)
            if not target.is_file():
                raise ValueError(f"notebook must be a saved .ipynb or .py file; {target} "
                                 "does not exist")
        else:
            target = Path(scratch) / f"{assignment}.py"
            target.write_text(definitions_source(_history()), encoding="utf-8")
        report = _run(target, assignment, function, Path(scratch) / "result.json", settings,
                      display)
    return _show(report, display)


def _refusal(settings: CheckSettings, assignment: str, function: str | None,
             functions: list[str]) -> str | None:
    if not settings.enabled or assignment in settings.disabled_assignments:
        return (f"Checking {assignment} from the notebook is switched off by the course "
                f"({settings.source}).")
    if function is not None and function not in functions:
        return (f"function must be a graded function of {assignment} ({', '.join(functions)})"
                f"; got {function!r}")
    allowed = settings.functions.get(assignment)
    if allowed is not None and (function is None or function not in allowed):
        return (f"The course allows checking only these functions of {assignment} from the "
                f"notebook: {', '.join(allowed)} (call check(\"{allowed[0]}\")).")
    return None


def _run(target: Path, assignment: str, function: str | None, json_path: Path,
         settings: CheckSettings, display: bool) -> CheckReport:
    command = [sys.executable, "-m", "autograder", "check", str(target), "--assignment",
               assignment, "--json", str(json_path)]
    if function:
        command += ["--function", function]
    handle = _progress(display, f"Checking {function or 'all functions'} of {assignment}...")
    clock = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, stdin=subprocess.DEVNULL)
    while True:
        try:
            out, err = process.communicate(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            seconds = time.monotonic() - clock
            if seconds > settings.timeout:
                process.kill()
                out, err = process.communicate()
                return CheckReport(None, f"The check took longer than {settings.timeout:g} s "
                                   "and was stopped.", assignment, seconds)
            _update(handle, f"Checking {function or 'all functions'} of {assignment}... "
                    f"{seconds:.0f} s")
    seconds = time.monotonic() - clock
    _update(handle, "")
    if process.returncode != 0 or not json_path.is_file():
        return CheckReport(None, f"The check could not run:\n{err[-2000:]}", assignment,
                           seconds)
    return CheckReport(json.loads(json_path.read_text()), out, assignment, seconds)


def _progress(display: bool, text: str):
    if not display:
        return None
    try:
        from IPython.display import HTML
        from IPython.display import display as show
    except ImportError:
        return None
    return show(HTML(f"<i>{html.escape(text)}</i>"), display_id=True)


def _update(handle, text: str) -> None:
    if handle is not None:
        from IPython.display import HTML
        handle.update(HTML(f"<i>{html.escape(text)}</i>" if text else ""))


def _show(report: CheckReport, display: bool) -> CheckReport:
    if display:
        try:
            from IPython import get_ipython
            from IPython.display import display as show
        except ImportError:
            get_ipython = None
        if get_ipython is not None and get_ipython() is not None:
            show(report)
            return None  # type: ignore[return-value] - the cell shows it once, not twice
        print(report.text)
    return report
