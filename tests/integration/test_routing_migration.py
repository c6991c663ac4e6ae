"""A namespace written before the routing and people slots keeps its contacts, state and users.

The routing keys (shared/keys/ ``{routing}``) used to be untagged; the API
and the notifier rename them at start (shared/store.migrate_routing_keys).
"""

from __future__ import annotations

import pytest

from shared.config import Settings
from shared.directory import Directory
from shared.keys import Keys
from shared.models import Contact
from shared.store import connect_redis, meta_key, migrate_routing_keys

pytestmark = pytest.mark.integration


def test_untagged_routing_keys_are_renamed_once_and_the_rest_left_alone(settings: Settings) -> None:
    r = connect_redis(settings)
    keys = Keys(settings.namespace)
    p = keys.p
    old = {
        f"{p}contact::ids": ("sadd", "c1"),
        f"{p}contact:c1:attrs": ("hset", {"id": "c1", "name": "Ops", "timezone": "UTC"}),
        f"{p}config::version": ("set", "7"),
        f"{p}notified:n1": ("set", "1"),
        f"{p}notified:{{ck1}}:latest": ("set", "100.0"),
        f"{p}lane:{{l1}}": ("zadd", {"d1": 5}),
        f"{p}argus_profile::by_pk": ("hset", {"1": "{}"}),
        f"{p}users": ("hset", {"u1": "{}"}),
        f"{p}ui:session:abc": ("set", "{}"),
    }
    for key, (cmd, value) in old.items():
        if cmd == "hset":
            r.hset(key, mapping=value)  # type: ignore[arg-type]
        elif cmd == "zadd":
            r.zadd(key, value)  # type: ignore[arg-type]
        else:
            getattr(r, cmd)(key, value)
    # Not routing keys: left where they are.
    r.hset(keys.check("ck1"), "state", "critical")
    r.hset(keys.notification("n1"), "id", "n1")
    # Written under the new name already (another process migrated, then wrote): kept.
    r.set(keys.rp + "notified:n2", "new")
    r.set(p + "notified:n2", "old")

    assert migrate_routing_keys(r, settings.namespace) == len(old)

    d = Directory(r, keys)
    assert d.version() == 7
    assert [c.name for c in d.list_contacts()] == ["Ops"]
    assert d.get_contact("c1") == Contact(id="c1", name="Ops", timezone="UTC")
    assert r.get(keys.notified("n1")) == "1"
    assert r.get(keys.notified_latest("ck1")) == "100.0"
    assert r.zrange(keys.lane("l1"), 0, -1) == ["d1"]
    assert r.exists(keys.argus_records("profile"))
    assert r.hget(keys.users(), "u1") == "{}" and r.get(keys.ui_session("abc")) == "{}"
    assert not any(r.exists(k) for k in old)
    assert r.hget(keys.check("ck1"), "state") == "critical"
    assert r.hget(keys.notification("n1"), "id") == "n1"
    assert r.get(keys.notified("n2")) == "new" and r.get(p + "notified:n2") == "old"
    assert r.hget(meta_key(settings.namespace), "routing_layout") == "2"

    # Recorded: a later start neither scans nor moves (an old-named key written now stays).
    r.set(p + "notified:n3", "1")
    assert migrate_routing_keys(r, settings.namespace) == 0
    assert r.exists(p + "notified:n3")
