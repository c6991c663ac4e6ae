"""The notifier's rule routing, under the name ``worker.py`` still imports.

The definitions live in :mod:`shared.routing.selection` (the dry run in
``services/explain`` needs them too, and a service imports only ``shared/``
and itself: docs/architecture.md).  ``worker.py`` is being changed on another
branch; once it imports ``shared.routing.selection`` this module goes.
"""

from shared.routing.selection import Index, compile_index, select

__all__ = ["Index", "compile_index", "select"]
