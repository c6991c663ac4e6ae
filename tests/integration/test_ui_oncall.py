"""The dashboard's on-call page: who is on call now, two weeks of shifts, the override form."""

from __future__ import annotations

import time

import pytest
from litestar.testing import TestClient

from services.api.context import ApiContext
from shared.models import Contact
from shared.oncall import Layer, Schedule
from shared.oncall_store import OncallStore
from tests.integration.test_feed_sync import Feed, feed, rotation  # noqa: F401
from tests.integration.test_ui_pages import anon, client, csrf_of, ctx  # noqa: F401

pytestmark = pytest.mark.integration


def test_oncall_page_shows_now_timeline_and_takes_an_override(
    client: TestClient,  # type: ignore[type-arg]  # noqa: F811
    ctx: ApiContext,  # noqa: F811
) -> None:
    for cid, name in (("kari", "Kari"), ("ola", "Ola")):
        ctx.directory.put_contact(Contact(id=cid, name=name))
    layer = Layer(members=("kari", "ola"), shift_hours=24 * 365, handoff="2026-01-01T00:00")
    OncallStore(ctx.redis, ctx.keys).put_schedule(
        Schedule(id="s1", name="primary", timezone="UTC", layers=(layer,))
    )
    page = client.get("/ui/oncall")
    assert page.status_code == 200
    assert "On call now: <strong>Kari</strong>" in page.text
    assert page.text.count("<rect ") == 1  # one shift for the whole two weeks
    bad = client.post(
        "/ui/oncall/override",
        data={"csrf": csrf_of(page.text), "schedule": "s1", "contact": "ola", "duration": "soon"},
        follow_redirects=False,
    )
    assert bad.status_code == 400 and 'id="override-duration-error"' in bad.text
    stale = client.post(
        "/ui/oncall/override",
        data={"csrf": "forged", "schedule": "s1", "contact": "ola", "duration": "2h"},
        follow_redirects=False,
    )
    assert stale.status_code == 400 and "expired" in stale.text
    done = client.post(
        "/ui/oncall/override",
        data={"csrf": csrf_of(page.text), "schedule": "s1", "contact": "ola", "duration": "2h"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/ui/oncall?done=override"
    after = client.get("/ui/oncall?done=override").text
    assert "On call now: <strong>Ola</strong>" in after and "Override added." in after
    assert after.count("<rect ") == 2  # Ola's two hours, then Kari again
    [o] = OncallStore(ctx.redis, ctx.keys).get_schedule("s1").overrides  # type: ignore[union-attr]
    assert o.contact_id == "ola" and abs((o.end - o.start) - 7200) < 1 and o.start <= time.time()
    removed = client.post(
        "/ui/oncall/override/delete",
        data={"csrf": csrf_of(after), "schedule": "s1", "override": o.id},
        follow_redirects=False,
    )
    assert removed.status_code == 303
    back = client.get("/ui/oncall?done=removed").text
    assert "On call now: <strong>Kari</strong>" in back and "Override removed." in back


def test_oncall_page_lists_feed_layers_and_syncs_them(
    client: TestClient,  # type: ignore[type-arg]  # noqa: F811
    ctx: ApiContext,  # noqa: F811
    feed: tuple[Feed, str],  # noqa: F811
) -> None:
    state, url = feed
    for cid, name in (("kari", "Kari"), ("ola", "Ola")):
        ctx.directory.put_contact(Contact(id=cid, name=name))
    store = OncallStore(ctx.redis, ctx.keys)
    layer = Layer(members=("kari",), shift_hours=24, handoff="2026-01-01T00:00", feed_url=url)
    store.put_schedule(Schedule(id="s1", name="primary", timezone="UTC", layers=(layer,)))
    page = client.get("/ui/oncall")
    assert f"layer 0 <code>{url}</code>" in page.text and "Sync now" in page.text
    state.body = rotation(["Ola", "Kari"])
    done = client.post(
        "/ui/oncall/sync",
        data={"csrf": csrf_of(page.text), "schedule": "s1"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/ui/oncall?done=synced"
    synced = store.get_schedule("s1")
    assert synced is not None and synced.layers[0].members == ("ola", "kari")
    assert "Calendar feeds synced." in client.get("/ui/oncall?done=synced").text
    state.status = 404
    failed = client.post(
        "/ui/oncall/sync",
        data={"csrf": csrf_of(page.text), "schedule": "s1"},
        follow_redirects=False,
    )
    assert failed.status_code == 502 and 'id="sync-form-error"' in failed.text
    assert "answered HTTP 404" in failed.text
