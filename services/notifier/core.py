"""The notifier's expansion records, under the name ``worker.py`` still imports.

The definitions live in :mod:`shared.routing.notifier_state` (the dry run in
``services/explain`` needs them too, and a service imports only ``shared/``
and itself: docs/architecture.md).  ``worker.py`` is being changed on another
branch; once it imports ``shared.routing`` this module goes.
"""

from shared.routing.notifier_state import Expansion, state_query

__all__ = ["Expansion", "state_query"]
