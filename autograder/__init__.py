"""The kit's trusted autograder: hidden pytest suites grade student code run in a sandbox.

Parts, in the order a submission meets them:

* `extraction`  - notebook or .py -> the student's code as small units (plus the instructor's
                  setup from the SOURCE notebook); `forbidden` - which imports an assignment
                  forbids, and a static check of the code for them.
* `sandbox/`    - the sandboxed child that runs those units and answers calls: `channel`
                  (framed messages with deadlines), `process` (the child process, started
                  under namespaces), `system` (what this OS offers: off Linux, a degraded
                  sandbox for self-checks only), the `Sandbox` (load, replay, call); inside
                  the child `lockdown` (allow-list root, no capabilities, locked mounts, seccomp),
                  `guard` (forbidden imports and calls) and `child` (the server). The wire
                  format is `protocol` (JSON + raw array bytes, never pickle).
* `suites/`     - hidden pytest suites, one folder per assignment; `plugin` gives them the
                  `student` fixture (`student.f(...)`, `student.build(...)`) and the
                  `points`/`function` markers, `checks` the comparisons they use.
* `grading`     - one submission's `Grading`: its sandbox, the verdicts on each function, the
                  pytest run (the object is a pytest plugin), the result.
* `runner`      - reads a submission (regular files only, no symlinks), grades it, and grades
                  batches through `pool` (spawned workers; a dead or stalled worker costs only
                  the submission it held), resumably; `results` writes bounded JSON and the CSV.
* `nbgrader_bridge` - the preprocessor that makes `nbgrader autograde` grade through the runner.
* `cli`         - `python -m autograder grade|check|gradebook|import|gradescope-bundle`.
* `cluster`     - grading on a Dask cluster (`grade --scheduler`); `exporters` - Gradescope,
                  PrairieLearn, Canvas formats and the Gradescope bundle; `gradebook_import` -
                  CLI results into nbgrader's gradebook; `notebook_check` - `check()` in a
                  student's notebook.

This package's import is kept light: the sandbox child imports it too.
"""

from autograder.version import __version__

__all__ = ["__version__", "check"]


def check(function: str | None = None, **options):
    """Check your work from inside the notebook: `check("conv_forward_naive")` or `check()`
    (see `autograder.notebook_check.check`; imported on first use to keep this light)."""
    from autograder.notebook_check import check as notebook_check
    return notebook_check(function, **options)
