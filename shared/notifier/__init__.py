"""Notification expansion: a notification -> one delivery per selected medium.

The notifier worker (``services/notifier``) runs it on the refs it consumes
from ``NS.notifications``; the processor runs the same handler on the
notifications it has just written, in its own process, so a page takes one
durable hop fewer (docs/architecture.md, "Where notifications are
expanded").  Either way the expansion is one optimistic transaction with the
same ordering rules and outbox.
"""
