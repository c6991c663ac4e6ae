"""The notifier's decisions (pure): who gets a notification, on which medium, and when.

:mod:`~shared.routing.rules` and :mod:`~shared.routing.profiles` are the two
kinds of configuration; :func:`shared.routing.selection.select` applies them
(contacts and media, and why not for every other contact);
:func:`shared.routing.expansion.expand` applies the per-medium state of
:mod:`~shared.routing.notifier_state` (intervals, rollups, episodes).  The
notifier worker (``services/notifier/``) loads, calls them and writes; the dry
run (``shared/explain/``) calls the same functions on read-only state.
"""
