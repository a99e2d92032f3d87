"""The kit's trusted autograder: hidden pytest suites grade student code run in a sandbox.

Parts, in the order a submission meets them:

* `extraction`  - notebook or .py -> the student's code as small units (plus the instructor's
                  setup from the SOURCE notebook); `forbidden` - which imports an assignment
                  forbids, and a static check of the code for them.
* `sandbox`     - the child process that runs those units and answers calls (`sandbox.child`),
                  with the wire format in `protocol` (JSON + raw array bytes, never pickle).
* `suites/`     - hidden pytest suites, one folder per assignment; `plugin` gives them the
                  `student` fixture and the `points`/`function` markers, `checks` the
                  comparisons they use.
* `runner`      - grades one submission (sandbox + pytest in the trusted parent) and whole
                  batches (process pool, resume, shards); `results` writes JSON and the CSV.
* `nbgrader_bridge` - the preprocessor that makes `nbgrader autograde` grade through the runner.
* `cli`         - `python -m autograder grade|check|gradebook`.

This package's import is kept light: the sandbox child imports it too.
"""

from autograder.version import __version__

__all__ = ["__version__"]
