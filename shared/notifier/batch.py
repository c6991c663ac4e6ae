"""The notifier's decisions over a whole batch, pure: which refs to expand, the expansions, the records.

The expansion handler (``shared/notifier/expander.py``) decodes the refs,
reads what the store has, then calls these functions and commits the
expansions in one MULTI; it decides nothing itself:

- :func:`triage` drops refs already expanded (a redelivery, or the same
  id twice in the batch) and rejects those whose notification is missing
  or does not decode, with the reason;
- :func:`expand_all` expands each notification in order over one state,
  so a later notification of the batch sees the blocks and rollup counts
  an earlier one set;
- :func:`explain_records` packs each expansion's verdicts for
  ``tocsin explain``;
- :func:`escalations_to_start` names the escalations the batch's problems
  start (docs/oncall.md), committed with the expansions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from shared.escalation import Escalation
from shared.escalation_store import escalation_id
from shared.explain.packing import notification_record
from shared.explain.records import ENCODER as EXPLAIN_ENCODER
from shared.models import Notification
from shared.routing.expansion import expand
from shared.routing.notifier_state import Expansion, NotifierState, apply, episode_key
from shared.routing.rollup_accounting import RollupTally
from shared.routing.selection import Index, Selection

M = TypeVar("M")  # the consumed message a ref came in (rejections name it)


@dataclass(slots=True)
class Triage(Generic[M]):
    """The notifications to expand, the refs to dead-letter and the ids skipped as done."""

    todo: list[Notification] = field(default_factory=list)
    rejected: list[tuple[M, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def triage(
    refs: Sequence[tuple[M, str]],
    notifications: Mapping[str, Notification | None],
    invalid: Mapping[str, str],
    done: frozenset[str],
) -> Triage[M]:
    """Sort the batch's ``(message, notification id)`` refs by what the store returned."""
    out: Triage[M] = Triage()
    seen: set[str] = set()
    for msg, nid in refs:
        if nid in done or nid in seen:
            out.skipped.append(nid)
            continue
        seen.add(nid)
        n = notifications.get(nid)
        if nid in invalid:
            out.rejected.append((msg, invalid[nid]))
        elif n is None:
            out.rejected.append(
                (msg, f"notification {nid}: no stored notification (expired or never written)")
            )
        else:
            out.todo.append(n)
    return out


def unexpanded_predecessors(todo: Sequence[Notification]) -> list[str]:
    """Ids of the notifications ``todo`` follows that are not in ``todo`` themselves."""
    ids = {n.id for n in todo}
    return list(
        dict.fromkeys(n.previous_id for n in todo if n.previous_id and n.previous_id not in ids)
    )


def with_predecessors(
    todo: Sequence[Notification], earlier: Mapping[str, Notification]
) -> list[Notification]:
    """``todo`` with each notification of ``earlier`` just before the first one that follows it.

    A check's recovery handled by this notifier while its problem waits
    elsewhere (another notifier's window, an outbox republish) would find no
    problem in its episode and be dropped; expanding the problem first keeps
    the check's order.  The problem's own ref is skipped later as expanded.
    """
    out: list[Notification] = []
    placed: set[str] = set()
    for n in todo:
        before = earlier.get(n.previous_id)
        if before is not None and before.id not in placed:
            out.append(before)
            placed.add(before.id)
        out.append(n)
    return out


def expand_all(
    index: Index, state: NotifierState, plans: Sequence[tuple[Notification, Selection]]
) -> list[Expansion]:
    """Expand in order; each expansion's effects apply to ``state`` before the next one, and
    one :class:`RollupTally` keeps rollup verdicts across them."""
    out: list[Expansion] = []
    tally = RollupTally()
    for n, sel in plans:
        expansion = expand(index, state, n, sel, tally)
        apply(state, expansion.effects, n)
        out.append(expansion)
    return out


def explain_records(index: Index, expansions: Sequence[Expansion]) -> dict[str, list[bytes]]:
    """Each expansion's verdicts per contact and medium, packed, per check id."""
    records: dict[str, list[bytes]] = {}
    for o in expansions:
        rec = notification_record(
            o.notification, o.decisions, len(o.deliveries), index.contacts, index.media
        )
        records.setdefault(o.notification.check_id, []).append(EXPLAIN_ENCODER.encode(rec))
    return records


def escalations_to_start(plans: Sequence[tuple[Notification, Selection]]) -> list[Escalation]:
    """One escalation per problem's episode and policy its rules or profiles route it to.

    An Argus source's incident (a ``profiles_only`` notification the Argus API
    wrote) starts one while it is open and stateful; its episode is the
    incident's pk, and the escalation carries it as ``incident_id`` so the
    scheduler stops it on the incident's own end or ack (docs/oncall.md).  A
    stateless incident never ends, so it starts none.
    """
    out: list[Escalation] = []
    for n, sel in plans:
        if n.type != "problem" or n.escalation_contacts:
            continue
        if n.profiles_only and not (n.incident_stateful and n.incident_open):
            continue
        for pid in dict.fromkeys(pid for pid, _ in sel.policies):
            episode = episode_key(n)
            out.append(
                Escalation(
                    id=escalation_id(episode, pid),
                    policy_id=pid,
                    notification_id=n.id,
                    check_id=n.check_id,
                    episode_id=n.episode_id or "",
                    started=n.time,
                    incident_id=(n.episode_id or "") if n.profiles_only else "",
                )
            )
    return out
