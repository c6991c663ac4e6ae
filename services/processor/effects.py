"""The processor core's records, under the name ``worker.py`` and ``store.py`` still import.

The definitions live in :mod:`shared.processing.effects` (the dry run in
``services/explain`` needs them too, and a service imports only ``shared/``
and itself: docs/architecture.md).  ``worker.py`` and ``store.py`` are being
changed on another branch; once they import ``shared.processing.effects``
this module goes.
"""

from shared.processing.effects import CheckView, FilterVerdict, IncidentChange

__all__ = ["CheckView", "FilterVerdict", "IncidentChange"]
