"""nbgrader configuration of the course *Training Neural Networks*.

Where things are (see instructor/course.py and the instructor guide):

* ``solutions/<NN-topic>/*.md``   instructor source notebooks (MyST Markdown), converted by
  ``make exercises`` / ``make grade`` into ``.nbgrader_course/source/`` -- nbgrader's *source*;
* ``.nbgrader_course/release/``  nbgrader's *release*, copied to ``exercises/`` (committed);
* ``.nbgrader_course/{submitted,autograded,feedback}/`` and ``gradebook.db``: per-machine grading
  state, git-ignored.

The ``GradingPipeline`` section is read by ``instructor/pipeline.py`` (nbgrader ignores it).
"""

import importlib.util
import os

c = get_config()  # noqa: F821  (injected by traitlets when nbgrader loads this file)

_HERE = os.path.dirname(os.path.abspath(__file__))

# Every limit's default is declared once, in instructor/limits.py (standard library only, read here
# by its path so that nbgrader needs nothing else of the grader).
_spec = importlib.util.spec_from_file_location("_grading_limits",
                                               os.path.join(_HERE, "instructor", "limits.py"))
_limits = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_limits)

c.CourseDirectory.course_id = "training-neural-networks"
c.CourseDirectory.root = os.path.join(_HERE, ".nbgrader_course")
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"

# What a student sees in place of a solution (rather than nbgrader's default stub, which names an
# exception the course keeps out of its notebooks).
c.ClearSolutions.code_stub = {
    "python": '# YOUR CODE HERE\nraise RuntimeError("not answered yet: replace this line")',
}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Per-cell time limit. The slowest hidden test (every function on every device and dtype)
# takes a few seconds on a 2-core CPU; a minute leaves room for a first CUDA initialisation.
c.ExecutePreprocessor.timeout = _limits.CELL_TIMEOUT_S

# The grading pipeline's limits per notebook (instructor/pipeline.py, student_side/sandbox.py)
# default to instructor/limits.py, where each is declared and explained; to change one for this
# course, set it here: c.GradingPipeline.<name> = value, with <name> one of submission_timeout,
# memory_limit_mb, file_size_limit_mb, kernel_threads, max_processes, cpu_time_s, cpu_share,
# output_chars_per_cell, output_chars_per_notebook, kernel_user.

# The intake (instructor/intake.py), which reads the submissions folder as students left it: links
# are never followed and FIFOs and devices never opened whatever these say.
c.GradingPipeline.intake_max_file_mb = 20  # a submitted file larger than this is not copied
c.GradingPipeline.intake_max_files = 50  # files copied from one <student>/<assignment> folder
c.GradingPipeline.audit_max_chars = 200_000  # code characters per notebook the static audit reads
# Imported when each kernel starts, before the first cell (for speed: the zygote imports them once).
# Never nnbolts: the kernel has no course code in memory, and cannot read the course's folders.
c.GradingPipeline.kernel_preload = ["torch"]
# Fork every kernel from one process that has imported torch, IPython and the preloaded modules
# (student_side/zygote.py): a kernel then starts in milliseconds instead of seconds. False starts
# each kernel as a fresh process through student_side/sandbox.py's launcher.
c.GradingPipeline.kernel_zygote = True
