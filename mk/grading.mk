# Exercises and grading (instructor/pipeline.py); included from the Makefile, which defines
# $(PY) (the virtual environment's Python) and $(STAMP) (its installation).
#
#   make exercises                      solutions/*.md -> nbgrader -> exercises/ (commit the result)
#   make grade                          grade the bundled demo submissions
#   make grade SUBMISSIONS=dir JOBS=4   grade dir/<student>/<assignment>/<notebook>.ipynb, 4 at a time
#   make grades                         grades.csv again after manual grading (no regrading)
#   make demo-submissions               rebuild instructor/demo_submissions/ after an assignment changed

JOBS ?= 2
GRADE_FLAGS ?=

.PHONY: exercises grade grades demo-submissions

exercises: $(STAMP)
	$(PY) -m instructor.pipeline exercises

grade: $(STAMP)
	$(PY) -m instructor.pipeline grade --jobs $(JOBS) $(if $(SUBMISSIONS),--submissions $(SUBMISSIONS)) $(GRADE_FLAGS)

# grades.csv (and the feedback of written answers) again after manual grading, without
# regrading: the course `make grade` graded (the demo's unless SUBMISSIONS is given, as there)
grades: $(STAMP)
	$(PY) -m instructor.pipeline export $(if $(SUBMISSIONS),,--course-dir .nbgrader_course/demo)

demo-submissions: $(STAMP)
	$(PY) -m instructor.demo
