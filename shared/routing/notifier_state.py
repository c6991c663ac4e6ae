"""The notifier's per-medium state, what a batch must read of it, and how effects change it.

:class:`NotifierState` holds the interval blocks, rollups, the media of each
failure episode and each check's latest expanded notification, as the
notifier store loads them for a batch (:func:`state_query` says which).
:func:`~shared.routing.expansion.expand` returns an :class:`Effects` per
notification; :func:`apply` folds it into the in-memory state so later
notifications of the same batch see it, and the store writes the same
effects to Redis.  Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.checks import CheckDetail
from shared.models import Delivery, Notification, RollupItem
from shared.routing.selection import RouteVerdict, Selection


def block_id(medium_id: str, check_id: str, state: str) -> str:
    """Id of the interval block of ``state`` of a check on a medium."""
    return f"{medium_id}:{check_id}:{state}"


def rollup_block_id(medium_id: str) -> str:
    """Id of a medium's rollup block (per medium, no check: the seed's rollup block)."""
    return f"{medium_id}:rollup"


def episode_key(n: Notification) -> str:
    """The failure episode a notification belongs to (the check when the processor gave none)."""
    return n.episode_id or n.check_id


@dataclass(slots=True)
class RollupState:
    active: bool = False
    items: dict[str, RollupItem] = field(default_factory=dict)


@dataclass(slots=True)
class NotifierState:
    """The per-medium state decisions read; the shell loads the parts a batch needs.

    ``checks``: the current record of each check in a loaded rollup; a check
    missing here counts as its rollup entry says (nothing known to the contrary).
    """

    blocks: dict[str, float] = field(default_factory=dict)  # block id -> expire_at
    rollups: dict[str, RollupState] = field(default_factory=dict)  # medium id -> rollup
    episodes: dict[str, set[str]] = field(default_factory=dict)  # episode -> medium ids
    checks: dict[str, CheckDetail] = field(default_factory=dict)  # check id -> record
    # check id -> time of the latest notification expanded for it (see ``superseded``)
    latest: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Block:
    contact_id: str
    medium_id: str
    id: str
    expire_at: float
    check_id: str | None
    state: str | None


@dataclass(slots=True)
class Effects:
    """State changes of one notification, in the order they must be applied."""

    blocks_set: list[Block] = field(default_factory=list)
    blocks_cleared: list[tuple[str, str]] = field(default_factory=list)  # (contact, block id)
    rollup_put: list[tuple[str, str, RollupItem]] = field(default_factory=list)
    rollup_removed: list[tuple[str, str]] = field(default_factory=list)  # (medium, check)
    rollup_active: dict[str, bool] = field(default_factory=dict)
    episode_added: set[str] = field(default_factory=set)
    episode_ended: bool = False
    # The check's latest expanded notification is now this one (None: unchanged).
    latest: float | None = None


@dataclass(frozen=True, slots=True)
class Expansion:
    notification: Notification
    deliveries: tuple[Delivery, ...]
    effects: Effects
    decisions: tuple[RouteVerdict, ...]


@dataclass(frozen=True, slots=True)
class StateQuery:
    """What to read before expanding a batch."""

    blocks: dict[str, set[str]]  # contact id -> block ids
    rollup_media: set[str]
    episodes: set[str]
    checks: set[str] = field(default_factory=set)  # check ids whose latest time to read


def state_query(plans: Sequence[tuple[Notification, Selection]]) -> StateQuery:
    """The block ids, rollup media and episodes the batch's decisions will read."""
    q = StateQuery({}, set(), set())
    for n, sel in plans:
        if n.type == "test" or n.profiles_only:
            continue
        q.checks.add(n.check_id)
        q.episodes.add(episode_key(n))
        for t in sel.targets:
            mid = t.medium.id
            ids = q.blocks.setdefault(t.contact.id, set())
            if n.type == "problem":
                ids.add(block_id(mid, n.check_id, n.state))
            if t.medium.rollup_threshold:
                q.rollup_media.add(mid)
                ids.add(rollup_block_id(mid))
    for cid in [c for c, ids in q.blocks.items() if not ids]:
        del q.blocks[cid]
    return q


def apply(state: NotifierState, effects: Effects, n: Notification) -> None:
    """Fold one notification's effects into the in-memory state (later notifications see them)."""
    for cid_bid in effects.blocks_cleared:
        state.blocks.pop(cid_bid[1], None)
    for block in effects.blocks_set:
        state.blocks[block.id] = block.expire_at
    for mid, cid in effects.rollup_removed:
        if mid in state.rollups:
            state.rollups[mid].items.pop(cid, None)
    for mid, cid, item in effects.rollup_put:
        state.rollups.setdefault(mid, RollupState()).items[cid] = item
    for mid, active in effects.rollup_active.items():
        state.rollups.setdefault(mid, RollupState()).active = active
    if effects.latest is not None:
        state.latest[n.check_id] = effects.latest
    key = episode_key(n)
    if effects.episode_ended:
        state.episodes.pop(key, None)
    elif effects.episode_added:
        state.episodes.setdefault(key, set()).update(effects.episode_added)
