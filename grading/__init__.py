"""The course's exercise and grading pipeline (see grading/README.md): ``make exercises``,
``make grade``. Instructor-side code; nothing here is imported by student notebooks."""
