"""The course's exercise and grading pipeline (see instructor/README.md): ``make exercises``,
``make grade``. Instructor-side code; nothing here is imported by student notebooks."""

import sys

# jsonschema (through nbformat's validator) imports the optional ``rfc3987_syntax`` to check the
# "iri" string format, and that module compiles a Lark grammar at import: 2.3 s of every
# grading run's start on our 2-core machine, more than all of the gradebook's writes. The
# notebook schema uses no string format at all, so the checker is never needed; marking the
# module absent makes jsonschema skip it (it guards the import with ``suppress(ImportError)``).
sys.modules.setdefault("rfc3987_syntax", None)
