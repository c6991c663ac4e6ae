"""Why was this page sent, or not: decision records and the dry run.

A library, not a worker: the processor, the notifier and the scheduler write
decision records with it; the API and the CLI read them and run dry runs
with it (docs/architecture.md, docs/explain.md).

- ``records.py``: the record types (what is stored).
- ``packing.py``: the workers' verdicts packed into records (pure).
- ``storage.py``: writing records (inside the workers' transactions).
- ``reading.py``: reading them back (reads only).
- ``display.py``: their times on the operator's clock.
- ``simulate.py``: the dry run (pure): the processor's and the notifier's own
  decisions on a check view and an event.
- ``dry_run.py``: its read-only Redis shell.
- ``preview.py``: the dashboard's routing preview for a check (pure).
"""
