"""Notifier decisions: one notification -> deliveries per medium (pure, no I/O, no clock).

Three steps, each a pure function over Structs and the notification's ``time``:

1. :func:`~shared.routing.selection.compile_index` turns a :class:`DirectorySnapshot` into lookup tables
   (rules by entity, catch-all rules, media by contact and type, zones), once
   per config version.
2. :func:`~shared.routing.selection.select` applies rules (entities, tags, time restrictions,
   blackholes) and returns the (contact, medium) pairs and why others were
   left out.  It needs configuration only, so the shell can tell from it which
   state to read for a whole batch in one pipeline.
3. :func:`expand` applies per-medium state (interval blocks, rollup, the
   media of the failure episode) and returns deliveries, the state changes
   (:class:`Effects`) and a reason per decision.  :func:`apply` folds effects
   into the in-memory :class:`NotifierState` so later notifications of the
   same batch see them; the shell writes the same effects to Redis.

Decisions (README, "Who gets told", and where it is silent):

- Recovery and acknowledgement go to media the rules select now *and* that got
  the problem (sent, interval-blocked or rolled up) in the same episode; their
  clean-up (blocks, rollup membership) applies to every medium of the episode.
- A problem clears the blocks of the check's other failing states on that
  medium, so a state change is never blocked.
- While a medium is in rollup, every individual problem, recovery and
  acknowledgement on it is replaced by a ``rollup`` (at most once per
  interval); the notification that brings the count below the threshold
  produces one ``rollup_recovery`` instead of its individual message.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.models import (
    SEVERITIES,
    ContactRef,
    Delivery,
    DeliveryType,
    EscalationRef,
    MediumRef,
    Notification,
    RollupItem,
)
from shared.routing.notifier_state import (
    Block,
    Effects,
    Expansion,
    NotifierState,
    RollupState,
    block_id,
    episode_key,
    rollup_block_id,
)
from shared.routing.rollup_accounting import RollupTally, counted
from shared.routing.selection import (
    Index,
    MediumTarget,
    RouteVerdict,
    Selection,
    rules_concern,
    suppress,
)
from shared.severity import severity_key


def expand(
    index: Index,
    state: NotifierState,
    n: Notification,
    sel: Selection,
    tally: RollupTally | None = None,
) -> Expansion:
    """Deliveries, state changes and reasons for ``n``; ``n.time`` is "now" for every decision.

    ``tally`` keeps rollup verdicts across a batch's expansions (see
    :class:`~shared.routing.rollup_accounting.RollupTally`); without one each
    expansion judges its rollups afresh.
    """
    tally = tally if tally is not None else RollupTally()
    out: list[Delivery] = []
    fx = Effects()
    decisions = list(sel.decisions)
    # An Argus API event (profiles only) leaves rule targets alone: its check's
    # episode belongs to the processor's notifications.
    if n.profiles_only:
        return _with_profile_destinations(n, sel, out, fx, decisions)
    if n.escalation_contacts:
        # The policy's waits pace its pages: intervals and rollup do not hold them back.
        why = f"escalation {n.escalation_policy_id} step {n.escalation_step}: paged on call"
        for t in sel.targets:
            fx.episode_added.add(t.medium.id)
            out.append(_delivery(n, t, "problem"))
            decisions.append(_deliver(why, t))
        return Expansion(n, tuple(out), fx, tuple(decisions))
    if n.type == "test":
        for t in sel.targets:
            out.append(_delivery(n, t, "test"))
            decisions.append(_deliver("test: bypasses intervals and rollup", t))
    elif superseded(state, n):
        latest = state.latest[n.check_id]
        text = f"superseded: a later notification of the check (at {latest:.3f}) went out first"
        decisions.append(suppress("superseded", text))
    elif n.type == "problem":
        fx.latest = n.time
        for t in sel.targets:
            _problem(index, state, n, t, fx, out, decisions, tally)
    else:
        fx.latest = n.time
        _recovery_or_ack(index, state, n, sel, fx, out, decisions, tally)
    return _with_profile_destinations(n, sel, out, fx, decisions)


def superseded(state: NotifierState, n: Notification) -> bool:
    """Whether a later notification of ``n``'s check was expanded already.

    The processor emits a check's notifications with non-decreasing times (an
    older event only goes to history), but several notifiers on one queue may
    take them out of order: a recovery may be expanded before its problem.
    The older one then describes a state that is over and is not sent, so a
    page never follows the all-clear that ends it (docs/scaling.md).

    Only problems are ever superseded.  A recovery or an acknowledgement always
    goes out: event times differ in precision (Flapjack events carry whole
    seconds, an acknowledgement from the API the exact time), so an all-clear
    sent in the same second as an ack may carry an earlier time than the ack,
    and dropping it would leave the page open forever.
    """
    if n.type != "problem":
        return False
    latest = state.latest.get(n.check_id)
    return latest is not None and n.time < latest


def _with_profile_destinations(
    n: Notification, sel: Selection, out: list[Delivery], fx: Effects, decisions: list[RouteVerdict]
) -> Expansion:
    """Add the Argus profile destinations: exactly one message per incident event (docs/profiles.md)."""
    for t in sel.direct:
        out.append(_delivery(n, t, n.type))
        decisions.append(_deliver(f"profile destination for {n.incident_event}", t))
    return Expansion(n, tuple(out), fx, tuple(decisions))


def _problem(
    index: Index,
    state: NotifierState,
    n: Notification,
    t: MediumTarget,
    fx: Effects,
    out: list[Delivery],
    decisions: list[RouteVerdict],
    tally: RollupTally,
) -> None:
    m, cid = t.medium, t.contact.id
    fx.episode_added.add(m.id)
    # A state change is never blocked: drop the blocks of the check's other states.
    for other in SEVERITIES:
        if other != n.state:
            fx.blocks_cleared.append((cid, block_id(m.id, n.check_id, other)))
    if m.rollup_threshold:
        item = RollupItem(
            entity=n.entity, check=n.check, state=n.state, summary=n.summary, duration=n.duration
        )
        fx.rollup_put.append((m.id, n.check_id, item))
        if _rollup_step(index, state, n, t, item, fx, out, decisions, tally, replaces_exit=False):
            return
    bid = block_id(m.id, n.check_id, n.state)
    until = state.blocks.get(bid)
    if until is not None and until > n.time:
        decisions.append(
            suppress(
                "interval",
                f"interval: {n.state} of {n.entity}:{n.check} on {m.type} blocked until {until:.0f}",
                cid,
                m.id,
            )
        )
        return
    out.append(_delivery(n, t, "problem"))
    decisions.append(_deliver(f"problem {n.state}: no block", t))
    if m.interval > 0:
        fx.blocks_set.append(Block(cid, m.id, bid, n.time + m.interval, n.check_id, n.state))


def _recovery_or_ack(
    index: Index,
    state: NotifierState,
    n: Notification,
    sel: Selection,
    fx: Effects,
    out: list[Delivery],
    decisions: list[RouteVerdict],
    tally: RollupTally,
) -> None:
    key = episode_key(n)
    got = state.episodes.get(key, set())
    recovery = n.type == "recovery"
    selected = {t.medium.id for t in sel.targets}
    # Media of the episode the rules no longer select still lose the check.
    for mid in sorted(got - selected):
        fx.rollup_removed.append((mid, n.check_id))
        medium = index.media.get(mid)
        if recovery and medium is not None:
            _clear_check_blocks(fx, medium.contact_id, mid, n.check_id)
        if medium is not None and not rules_concern(index, n, medium.contact_id, frozenset(n.tags)):
            # Only an escalation pages a contact none of whose rules concern the check: it
            # hears how its page ended (docs/oncall.md).
            paged = MediumTarget(index.contacts[medium.contact_id], medium)
            out.append(_delivery(n, paged, n.type))
            decisions.append(_deliver(f"{n.type}: paged by an escalation in this episode", paged))
    for t in sel.targets:
        m = t.medium
        if m.id not in got:
            decisions.append(
                suppress(
                    "not_notified",
                    f"{n.type}: {m.type} medium got no problem in episode {key}",
                    t.contact.id,
                    m.id,
                )
            )
            continue
        fx.rollup_removed.append((m.id, n.check_id))
        if recovery:
            _clear_check_blocks(fx, t.contact.id, m.id, n.check_id)
        if m.rollup_threshold and _rollup_step(
            index, state, n, t, None, fx, out, decisions, tally, replaces_exit=True
        ):
            continue
        out.append(_delivery(n, t, n.type))
        decisions.append(_deliver(f"{n.type}: medium got the problem", t))
    fx.episode_ended = recovery


def _rollup_step(
    index: Index,
    state: NotifierState,
    n: Notification,
    t: MediumTarget,
    own: RollupItem | None,
    fx: Effects,
    out: list[Delivery],
    decisions: list[RouteVerdict],
    tally: RollupTally,
    *,
    replaces_exit: bool,
) -> bool:
    """Rollup on a medium with a threshold, ``n``'s check put in as ``own`` (None: taken out);
    True when it replaced the individual message."""
    m, cid = t.medium, t.contact.id
    threshold = m.rollup_threshold or 0
    tallied = counted(index, state, n, m, own, tally)
    left = tallied.left
    aside = f" (not counted: {'; '.join(left)})" if left else ""
    count, active = tallied.count, _rollup(state, m.id).active
    rbid = rollup_block_id(m.id)
    if count >= threshold:
        until = state.blocks.get(rbid, 0.0)
        if active and until > n.time:
            text = (
                f"rolled up: {count} failing >= threshold {threshold}, "
                f"next rollup after {until:.0f}{aside}"
            )
            decisions.append(suppress("rollup", text, cid, m.id))
        else:
            out.append(_rollup_delivery(n, t, "rollup", tallied.items()))
            decisions.append(
                _deliver(f"rollup: {count} failing >= threshold {threshold}{aside}", t)
            )
            fx.rollup_active[m.id] = True
            if m.interval > 0:
                fx.blocks_set.append(Block(cid, m.id, rbid, n.time + m.interval, None, None))
        return True
    if not active:
        return False
    out.append(_rollup_delivery(n, t, "rollup_recovery", tallied.items()))
    decisions.append(
        _deliver(f"rollup recovery: {count} failing < threshold {threshold}{aside}", t)
    )
    fx.rollup_active[m.id] = False
    fx.blocks_cleared.append((cid, rbid))
    return replaces_exit


def _rollup(state: NotifierState, mid: str) -> RollupState:
    return state.rollups.get(mid) or RollupState()


def _clear_check_blocks(fx: Effects, cid: str, mid: str, check_id: str) -> None:
    fx.blocks_cleared.extend((cid, block_id(mid, check_id, s)) for s in SEVERITIES)


def _deliver(text: str, t: MediumTarget) -> RouteVerdict:
    """A delivery verdict; it names the rules that routed the medium (docs/explain.md)."""
    if len(t.rules) == 1:
        text = f"{text} (rule {t.rules[0]})"
    elif t.rules:
        text = f"{text} (rules {', '.join(t.rules)})"
    return RouteVerdict("deliver", "deliver", text, t.contact.id, t.medium.id)


def _refs(t: MediumTarget) -> tuple[ContactRef, MediumRef]:
    m = t.medium
    return (
        ContactRef(t.contact.id, t.contact.name, t.contact.timezone),
        MediumRef(id=m.id, type=m.type, address=m.address, settings=m.settings),
    )


def _delivery(n: Notification, t: MediumTarget, dtype: DeliveryType) -> Delivery:
    contact, medium = _refs(t)
    return Delivery(
        id=f"{n.id}:{t.medium.id}",
        notification_id=n.id,
        type=dtype,
        entity=n.entity,
        check=n.check,
        state=n.state,
        time=n.time,
        contact=contact,
        medium=medium,
        previous_state=n.previous_state,
        summary=n.summary,
        details=n.details,
        duration=n.duration,
        tags=n.tags,
        acknowledged_by=n.acknowledged_by,
        escalation=(
            EscalationRef(policy_id=n.escalation_policy_id, step=n.escalation_step)
            if n.escalation_policy_id
            else None
        ),
        episode_id=n.episode_id,
    )


def _rollup_delivery(
    n: Notification, t: MediumTarget, dtype: DeliveryType, items: Mapping[str, RollupItem]
) -> Delivery:
    contact, medium = _refs(t)
    checks = tuple(sorted(items.values(), key=lambda i: (severity_key(i.state), i.entity, i.check)))
    worst = checks[0].state if checks else "ok"
    threshold = t.medium.rollup_threshold
    relation = ">=" if dtype == "rollup" else "<"
    return Delivery(
        id=f"{t.medium.id}:{dtype}:{n.id}",  # one per notification: two in a second differ
        notification_id=n.id,
        type=dtype,
        entity=n.entity,
        check=n.check,
        state=worst,
        time=n.time,
        contact=contact,
        medium=medium,
        summary=f"{len(checks)} failing checks ({relation} rollup threshold {threshold})",
        checks=checks,
    )
