"""The processor's decisions (pure): what one event does to its check, and whether it notifies.

:func:`shared.processing.state_machine.apply_event` is the entry point.  The
processor worker (``services/processor/``) loads, calls it and writes; the
dry run (``shared/explain/``) calls the same function on read-only state.
"""
