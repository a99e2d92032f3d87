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
"""
import os

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "convnets-course-kit"
c.CourseDirectory.source_directory = os.path.join("assignments", "source")
c.CourseDirectory.release_directory = os.path.join("assignments", "release")

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
