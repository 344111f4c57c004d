"""nbgrader settings for the course: run nbgrader commands from the repository root.

The course grades with ``grade-class`` (see grading/README.md). nbgrader's own commands are made
safe too: ``nbgrader autograde`` runs the student's cells in the grading sandbox and scores the
test cells from the course's checker (never from the student's kernel), a test cell handed in as
released is not reported as changed, and ``nbgrader generate_feedback`` shows no hidden test.
"""
import os

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearOutput, DeduplicateIds,
                                    GetGrades, IgnorePattern, LimitOutput, OverwriteKernelspec, SaveAutoGrades)

from course.nbgrader_plugin import HideHiddenTests, OverwriteTestCells, SandboxedExecute

c = get_config()  # noqa: F821  (provided by nbgrader)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.course_id = "rnn-course"
# Deleted test cells are put back from the gradebook instead of silently scoring nothing.
c.OverwriteCells.add_missing_cells = True
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

c.Autograde.sanitize_preprocessors = [ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteTestCells,
                                      CheckCellMetadata]
c.Autograde.autograde_preprocessors = [SandboxedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                                       SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
c.GenerateFeedback.preprocessors = [GetGrades, CSSHTMLHeaderPreprocessor, HideHiddenTests]
