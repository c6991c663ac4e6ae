"""Why was this page sent, or not: the dry run and the reading of decision records.

Not a worker: a library the API and the CLI import (docs/architecture.md).

- ``simulate.py``: the pure dry run (the processor's and notifier's own cores).
- ``dry_run.py``: its read-only Redis shell.
- ``preview.py``: the dashboard's routing preview for a check.
- ``records.py``: reading the decision records the workers write.
"""
