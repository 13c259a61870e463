"""nbgrader configuration of the course *Training Neural Networks*.

Where things are (see grading/course.py and the instructor guide):

* ``solutions/<NN-topic>/*.md``   instructor source notebooks (MyST Markdown), converted by
  ``make exercises`` / ``make grade`` into ``.nbgrader_course/source/`` -- nbgrader's *source*;
* ``.nbgrader_course/release/``  nbgrader's *release*, copied to ``exercises/`` (committed);
* ``.nbgrader_course/{submitted,autograded,feedback}/`` and ``gradebook.db``: per-machine grading
  state, git-ignored.

The ``GradingPipeline`` section is read by ``grading/pipeline.py`` (nbgrader ignores it).
"""

import os

c = get_config()  # noqa: F821  (injected by traitlets when nbgrader loads this file)

_HERE = os.path.dirname(os.path.abspath(__file__))

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
c.ExecutePreprocessor.timeout = 60

# Limits the grading pipeline applies to every submission (grading/pipeline.py, grading/sandbox.py).
c.GradingPipeline.submission_timeout = 300  # wall-clock seconds for one notebook, kernel start included
c.GradingPipeline.memory_limit_mb = 4096  # RLIMIT_AS of the kernel (RLIMIT_DATA on CUDA machines)
c.GradingPipeline.file_size_limit_mb = 64  # RLIMIT_FSIZE: the largest file student code may write
c.GradingPipeline.kernel_threads = 1  # OMP/MKL threads per kernel: jobs run side by side
# The intake (grading/intake.py), which reads the submissions folder as students left it: links are
# never followed and FIFOs and devices never opened whatever these say.
c.GradingPipeline.intake_max_file_mb = 20  # a submitted file larger than this is not copied
c.GradingPipeline.intake_max_files = 50  # files copied from one <student>/<assignment> folder
c.GradingPipeline.audit_max_chars = 200_000  # code characters per notebook the static audit reads
# Imported when each kernel starts, before the first cell: nnbolts.grading captures the genuine
# torch/numpy/builtin comparison functions at import, so a patch made by student code is seen.
c.GradingPipeline.kernel_preload = ["nnbolts.grading"]
# Fork every kernel from one process that has imported torch, IPython and the preloaded modules
# (grading/zygote.py): a kernel then starts in milliseconds instead of seconds. False starts
# each kernel as a fresh process through grading/sandbox.py's launcher.
c.GradingPipeline.kernel_zygote = True
