"""nbgrader configuration of the ConvNets Course Kit: this repository is the course directory.

- Sources live in assignments/source/<assignment>/<assignment>.ipynb and releases are built
  into assignments/release/; submitted/, autograded/ and feedback/ are nbgrader's defaults
  next to this file.
- `nbgrader autograde` grades through the kit's trusted runner: the sanitize pass (which
  restores edited or deleted test cells from the gradebook) is nbgrader's own, and in the grade
  pass `autograder.nbgrader_bridge.GradeWithTrustedRunner` replaces Execute. Student code runs
  in the sandbox, the hidden suites (autograder/suites/<assignment>/) decide the points, and
  the outcome is written into each test cell the way nbgrader scores it, so formgrader,
  generate_feedback and export work unchanged. Test cells are named test_<function>.
- Feedback never shows hidden tests: ClearHiddenTests also runs when feedback is generated.
- Feedback and formgrader pages use the kit's templates (autograder/nbgrader_templates/): MathJax
  comes from the Jupyter server (jupyter-server-mathjax), not a CDN, so maths renders offline;
  feedback names the function each test cell grades and wraps long messages.
- The exchange (release, fetch, submit, collect; JupyterLab's Assignment List) is exchange/ in
  the course directory, created when missing. On a shared JupyterHub point Exchange.root at a
  directory every user can write (see the README's instructor quick start).
"""
import importlib.util
import os

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "convnets-course-kit"
c.CourseDirectory.source_directory = os.path.join("assignments", "source")
c.CourseDirectory.release_directory = os.path.join("assignments", "release")

# A course-local exchange, so the Assignment List works out of the box (nbgrader's default,
# /usr/local/share/nbgrader/exchange, must already exist and usually does not).
c.Exchange.root = os.path.join(c.CourseDirectory.root, "exchange")
os.makedirs(c.Exchange.root, exist_ok=True)

# Grade pass: nbgrader's list with Execute and IgnorePattern replaced by the trusted runner.
c.Autograde.autograde_preprocessors = [
    "autograder.nbgrader_bridge.GradeWithTrustedRunner",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# A deleted test cell comes back (and is graded) instead of leaving "needs manual grade".
c.OverwriteCells.add_missing_cells = True

# Sandbox limits used during autograde (see `autograder grade --help`).
c.GradeWithTrustedRunner.call_timeout = 10.0
c.GradeWithTrustedRunner.submission_timeout = 180.0
c.GradeWithTrustedRunner.memory_mb = 1024

c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# Feedback and formgrader pages: the kit's templates first, then nbgrader's (which they extend).
_NBGRADER_TEMPLATES = os.path.join(
    importlib.util.find_spec("nbgrader").submodule_search_locations[0],
    "server_extensions", "formgrader", "templates")
_KIT_TEMPLATES = os.path.join(
    os.path.dirname(importlib.util.find_spec("autograder").origin), "nbgrader_templates")
c.HTMLExporter.extra_template_basedirs = [_KIT_TEMPLATES, _NBGRADER_TEMPLATES]
c.HTMLExporter.template_file = "kit.html.j2"
