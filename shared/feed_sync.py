"""Re-sync schedule layers imported from an iCalendar feed URL (shell: HTTP and Redis).

A layer imported with ``{"url": ...}`` keeps the URL as ``feed_url``.  A sync
fetches each such feed, reads the shifts of the next ``days`` days
(:func:`shared.ical_feed.read_feed`) and replaces that layer's rotation
(members, shift length, hand-off; its name and restrictions stay).  Called by
``POST /schedules/{id}/sync`` (``tocsin schedules sync``) and, every
``TOCSIN_ONCALL_FEED_SYNC_S``, by the scheduler that holds the lease.

A feed that cannot be fetched (:class:`~shared.ical_feed.FeedUnreachable`) or
no longer reads as a rotation (:class:`~shared.ical_feed.FeedError`) leaves its
layer as it was: a calendar server being down must not empty a rotation.
The URL goes through the same outbound guard as webhook deliveries
(``TOCSIN_DESTINATION_ALLOW``), since an admin-typed URL is fetched from
inside the network.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import msgspec
import redis

from shared.destinations import Allowlist, DestinationDenied, check_destination
from shared.directory import Directory
from shared.ical_feed import FeedError, FeedUnreachable, read_feed, resynced_layer
from shared.oncall import Layer, Schedule
from shared.oncall_store import OncallStore
from shared.timeslots import zone

MAX_FEED_BYTES = 900_000  # what POST /schedules/{id}/import-ical accepts inline
FETCH_TIMEOUT_S = 10.0  # below the CLI's 15 s, so `tocsin schedules sync` hears why

Fetch = Callable[[str], str]


class LayerSync(msgspec.Struct, kw_only=True):
    """What a sync did to one layer (``error`` empty when it was replaced)."""

    layer: int
    url: str
    ok: bool
    error: str = ""
    unreachable: bool = False
    members: tuple[str, ...] = ()
    shift_hours: int = 0
    handoff: str = ""
    unmatched: tuple[str, ...] = ()


def http_url(url: str) -> str:
    """``webcal://`` (what calendar apps publish) is HTTPS."""
    return "https://" + url.removeprefix("webcal://") if url.startswith("webcal://") else url


def fetcher(allow: Allowlist, timeout_s: float = FETCH_TIMEOUT_S) -> Fetch:
    """A :data:`Fetch` over HTTP(S) behind the outbound guard; raises FeedUnreachable."""

    def fetch(url: str) -> str:
        import httpx  # here, so a scheduler that syncs no feed never loads it

        target = http_url(url)
        try:
            check_destination(target, allow)
        except DestinationDenied as exc:
            raise FeedUnreachable(f"feed {url} refused: {exc}") from None
        except OSError as exc:
            raise FeedUnreachable(f"feed {url} unreachable: {exc}") from None
        try:
            with httpx.stream("GET", target, timeout=timeout_s) as resp:
                if resp.status_code != 200:
                    raise FeedUnreachable(f"feed {url} answered HTTP {resp.status_code}")
                body = b""
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > MAX_FEED_BYTES:
                        raise FeedUnreachable(f"feed {url} is larger than {MAX_FEED_BYTES} bytes")
                return body.decode(resp.encoding or "utf-8", errors="replace")
        except httpx.HTTPError as exc:
            raise FeedUnreachable(f"feed {url} unreachable: {exc!r}") from None

    return fetch


def contact_names(r: redis.Redis, store: OncallStore) -> dict[str, tuple[str, str | None]]:
    """Contact id -> (name, email), what :func:`read_feed` matches events with."""
    return {c.id: (c.name, c.email) for c in Directory(r, store.k).list_contacts()}


def sync_schedule(
    store: OncallStore,
    contacts: Mapping[str, tuple[str, str | None]],
    sid: str,
    fetch: Fetch,
    now: float,
    days: int = 90,
) -> list[LayerSync]:
    """Re-sync every feed layer of schedule ``sid``; KeyError if it does not exist."""
    sched = store.get_schedule(sid)
    if sched is None:
        raise KeyError(sid)
    tz = zone(sched.timezone)
    results: list[LayerSync] = []
    fresh: dict[int, Layer] = {}
    for i, layer in enumerate(sched.layers):
        if not isinstance(layer.feed_url, str):
            continue
        url = layer.feed_url
        try:
            feed = read_feed(fetch(url), contacts, now, now + days * 86400, tz)
            new = resynced_layer(layer, feed, tz)
        except FeedError as exc:
            unreachable = isinstance(exc, FeedUnreachable)
            text = str(exc) if unreachable else f"feed {url}: {exc}"
            results.append(
                LayerSync(layer=i, url=url, ok=False, error=text, unreachable=unreachable)
            )
            continue
        fresh[i] = new
        results.append(
            LayerSync(
                layer=i,
                url=url,
                ok=True,
                members=new.members,
                shift_hours=new.shift_hours,
                handoff=new.handoff,
                unmatched=feed.unmatched,
            )
        )
    if fresh:
        _replace_layers(store, sid, sched, fresh, contacts)
    return results


def _replace_layers(
    store: OncallStore,
    sid: str,
    fetched_from: Schedule,
    fresh: Mapping[int, Layer],
    contacts: Mapping[str, object],
) -> None:
    """Write the new layers into the schedule as it is *now* (a feed may take seconds to
    fetch; an override added meanwhile stays), only where the layer still has that URL."""
    current = store.get_schedule(sid)
    if current is None:
        return
    layers = list(current.layers)
    for i, new in fresh.items():
        if i < len(layers) and layers[i].feed_url == fetched_from.layers[i].feed_url:
            layers[i] = new
    store.put_schedule(msgspec.structs.replace(current, layers=tuple(layers)), contacts)


def sync_all(
    store: OncallStore,
    contacts: Mapping[str, tuple[str, str | None]],
    fetch: Fetch,
    now: float,
    days: int = 90,
) -> dict[str, list[LayerSync]]:
    """Re-sync every schedule that has a feed layer (the scheduler's periodic job)."""
    out: dict[str, list[LayerSync]] = {}
    for sid, sched in store.schedules().items():
        if any(isinstance(layer.feed_url, str) for layer in sched.layers):
            try:
                out[sid] = sync_schedule(store, contacts, sid, fetch, now, days)
            except KeyError:
                continue  # deleted meanwhile
    return out
