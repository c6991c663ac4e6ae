"""Incident listings walk the sorted-set indexes: right pages, both cursors, filters, index upkeep."""

from __future__ import annotations

from typing import Any

import pytest

from shared import incident_index
from shared.config import Settings
from shared.keys import Keys
from shared.store import connect_redis
from tests.integration.test_argus_api import ADMIN, Client, client, make_incident, make_source

pytestmark = pytest.mark.integration
__all__ = ["client"]


def _start(i: int) -> str:
    return f"2026-11-23T10:{i:02d}:00+00:00"


def _pages(c: Client, query: dict[str, Any]) -> list[list[int]]:
    pages = []
    body = c.get("/api/v2/incidents/", params=query, headers=ADMIN).json()
    while True:
        pages.append([inc["pk"] for inc in body["results"]])
        if body["next"] is None:
            return pages
        body = c.get(body["next"], headers=ADMIN).json()


def test_pages_filters_and_indexes(client: Client, settings: Settings) -> None:
    # What the processor does at start (in the background): the namespace is new, so the
    # indexes are complete at once and listings use them.
    assert incident_index.build(connect_redis(settings), Keys(settings.namespace)) == 0
    src, auth = make_source(client)
    other, other_auth = make_source(client, name="other")
    made = []
    for i in range(12):
        tags = [{"tag": "team=a"}] if i % 3 == 0 else [{"tag": "team=b"}]
        fields: dict[str, Any] = {"start_time": _start(i), "tags": tags, "end_time": "infinity"}
        if i == 4:
            fields["end_time"] = _start(30)
        made.append(make_incident(client, auth, source_incident_id=f"s{i}", **fields))
    foreign = make_incident(
        client, other_auth, source_incident_id="x", start_time=_start(50), end_time="infinity"
    )
    newest_first = [foreign["pk"], *[m["pk"] for m in reversed(made)]]

    pages = _pages(client, {"page_size": 5})
    assert [len(p) for p in pages] == [5, 5, 3]
    assert [pk for p in pages for pk in p] == newest_first

    # The previous cursor of page 2 gives page 1 back.
    first = client.get("/api/v2/incidents/", params={"page_size": 5}, headers=ADMIN).json()
    second = client.get(first["next"], headers=ADMIN).json()
    back = client.get(second["previous"], headers=ADMIN).json()
    assert [i["pk"] for i in back["results"]] == newest_first[:5]

    team_a = [m["pk"] for m in reversed(made) if "team=a" in [t["tag"] for t in m["tags"]]]
    assert [pk for p in _pages(client, {"tags": "team=a", "page_size": 2}) for pk in p] == team_a
    open_ones = [pk for pk in newest_first if pk != made[4]["pk"]]
    assert [pk for p in _pages(client, {"open": "true"}) for pk in p] == open_ones
    only_src = [pk for p in _pages(client, {"source__id__in": str(src["pk"])}) for pk in p]
    assert only_src == newest_first[1:]
    count = client.get("/api/v2/incidents/", params={"count": "", "tags": "team=a"}, headers=ADMIN)
    assert count.json()["count"] == len(team_a)

    r, keys = connect_redis(settings), Keys(settings.namespace)
    closed = str(made[4]["pk"])
    assert r.zscore(keys.incident_index("open"), closed) is None
    assert r.zscore(keys.incident_index("closed"), closed) is not None
    assert r.zcard(keys.incident_by_source(str(other["pk"]))) == 1

    # Changing tags moves the incident between tag indexes.
    pk = made[0]["pk"]
    changed = client.patch(
        f"/api/v2/incidents/{pk}/", json={"tags": [{"tag": "team=c"}]}, headers=auth
    )
    assert changed.status_code == 200, changed.text
    assert r.zscore(keys.incident_by_tag("team=a"), str(pk)) is None
    assert r.zscore(keys.incident_by_tag("team=c"), str(pk)) is not None
    assert [pk for p in _pages(client, {"tags": "team=c"}) for pk in p] == [pk]


def test_equal_start_times_page_without_gaps(client: Client, settings: Settings) -> None:
    """A storm opens many incidents in the same second: paging must show each exactly once."""
    assert incident_index.build(connect_redis(settings), Keys(settings.namespace)) == 0
    _, auth = make_source(client)
    made = [
        make_incident(client, auth, source_incident_id=f"t{i}", start_time=_start(1))["pk"]
        for i in range(13)
    ]
    forward = _pages(client, {"page_size": 4})
    assert [pk for p in forward for pk in p] == sorted(made, reverse=True)
    # And back again from the last page.
    body = client.get("/api/v2/incidents/", params={"page_size": 4}, headers=ADMIN).json()
    while body["next"]:
        body = client.get(body["next"], headers=ADMIN).json()
    seen = [i["pk"] for i in body["results"]]
    while body["previous"]:
        body = client.get(body["previous"], headers=ADMIN).json()
        seen = [i["pk"] for i in body["results"]] + seen
    assert seen == sorted(made, reverse=True)
