"""nbgrader settings for the course: run nbgrader commands from the repository root."""
import os

c = get_config()  # noqa: F821  (provided by nbgrader)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.course_id = "rnn-course"
# Deleted test cells are put back from the gradebook instead of silently scoring nothing.
c.OverwriteCells.add_missing_cells = True
# Student notebooks should not run for ever; the grading command adds a whole-notebook limit.
c.ExecutePreprocessor.timeout = 60
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
