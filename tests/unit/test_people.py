"""The pure rules of users, roles and tokens (shared/people.py) and route declarations."""

from __future__ import annotations

import pytest

from services.api.access import need_of
from shared.audit import AuditQuery, AuditRecord, matches
from shared.people import (
    ApiToken,
    User,
    allowed_roles,
    bootstrap_problem,
    role_for_groups,
    should_touch,
    sso_username,
    token_hash,
    token_refusal,
    username_problem,
)

NOW = 1_800_000_000.0
ALICE = User(id="a", username="alice", role="admin")


def tok(**fields: object) -> ApiToken:
    base: dict[str, object] = {
        "id": "t",
        "user_id": "a",
        "name": "n",
        "sha256": token_hash("s"),
        "created_at": NOW - 100,
    }
    return ApiToken(**{**base, **fields})  # type: ignore[arg-type]


def test_the_ladder_admits_higher_roles_and_sources_only_when_asked() -> None:
    assert allowed_roles("viewer", False) == ("admin", "responder", "viewer")
    assert allowed_roles("responder", True) == ("admin", "responder", "source")
    assert allowed_roles("admin", False) == ("admin",)
    assert allowed_roles("source", False) == ("source",)


@pytest.mark.parametrize(
    ("fields", "user", "reason"),
    [
        ({}, ALICE, None),
        ({"revoked_at": NOW - 1}, ALICE, "this token was revoked"),
        ({"expires_at": NOW}, ALICE, "this token has expired"),
        ({"expires_at": NOW + 1}, ALICE, None),
        ({}, None, "this token's user no longer exists"),
        (
            {},
            User(id="a", username="alice", role="admin", disabled=True),
            "this token's user is disabled",
        ),
    ],
)
def test_token_refusal(fields: dict[str, object], user: User | None, reason: str | None) -> None:
    assert token_refusal(tok(**fields), user, NOW) == reason


def test_last_use_is_written_at_most_once_a_minute() -> None:
    assert should_touch(tok(), NOW)
    assert not should_touch(tok(last_used=NOW - 59), NOW)
    assert should_touch(tok(last_used=NOW - 60), NOW)


def test_bootstrap_needs_an_enabled_admin_with_a_live_token() -> None:
    assert bootstrap_problem([], [], NOW) is not None
    assert bootstrap_problem([ALICE], [[tok(revoked_at=NOW - 1)]], NOW) is not None
    disabled = User(id="a", username="alice", role="admin", disabled=True)
    assert bootstrap_problem([disabled], [[tok()]], NOW) is not None
    assert bootstrap_problem([ALICE], [[tok(revoked_at=NOW - 1), tok(id="u")]], NOW) is None


def test_usernames_are_checked() -> None:
    assert username_problem("alice.b@x") is None
    assert username_problem("Admin") is not None and username_problem("-x") is not None


@pytest.mark.parametrize(
    ("opt", "methods", "roles", "auth"),
    [
        ({}, {"POST"}, ("admin",), None),
        ({}, {"GET"}, ("admin",), None),
        ({"reads": "viewer"}, {"GET"}, ("admin", "responder", "viewer"), None),
        ({"reads": "viewer"}, {"DELETE"}, ("admin",), None),
        ({"reads": "viewer", "writes": "responder"}, {"PUT"}, ("admin", "responder"), None),
        (
            {"reads": "viewer", "sources": "reads"},
            {"GET"},
            ("admin", "responder", "viewer", "source"),
            None,
        ),
        ({"writes": "admin", "sources": "reads"}, {"POST"}, ("admin",), None),
        ({"role": "responder", "sources": True}, {"POST"}, ("admin", "responder", "source"), None),
        ({"auth": "signature", "role": "admin"}, {"POST"}, (), "signature"),
        ({"public": True}, {"POST"}, (), "signature"),
    ],
)
def test_route_declarations(
    opt: dict[str, object], methods: set[str], roles: tuple[str, ...], auth: str | None
) -> None:
    need = need_of(opt, frozenset(methods))
    assert need.roles == roles and need.auth == auth


def test_an_unknown_declaration_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        need_of({"role": "superuser"}, frozenset({"GET"}))
    with pytest.raises(ValueError, match="unknown auth"):
        need_of({"auth": "maybe"}, frozenset({"GET"}))


def test_audit_filters() -> None:
    rec = AuditRecord(time=NOW, actor="alice", action="create_token", target="token:1")
    assert matches(rec, AuditQuery())
    assert matches(rec, AuditQuery(actor="alice", action="create_", since=NOW))
    assert not matches(rec, AuditQuery(actor="bob"))
    assert not matches(rec, AuditQuery(action="delete"))
    assert not matches(rec, AuditQuery(since=NOW + 1))
    assert not matches(rec, AuditQuery(target="token:2"))


@pytest.mark.parametrize(
    ("groups", "default", "role"),
    [
        (["ops", "staff"], "", "responder"),
        (["staff"], "", "viewer"),
        (["root", "ops"], "", "admin"),
        ("ops", "", "responder"),
        (["visitors"], "", None),
        (["visitors"], "viewer", "viewer"),
        (None, "", None),
        ({"ops": True}, "", None),
        ([1, "staff"], "", "viewer"),
    ],
)
def test_groups_map_to_the_highest_role(groups: object, default: str, role: str | None) -> None:
    mapping = ("ops=responder", "staff=viewer", "root=admin")
    assert role_for_groups(groups, mapping, default) == role


def test_sso_username_prefers_preferred_username_and_skips_unusable_ones() -> None:
    assert sso_username({"preferred_username": "ada", "email": "a@x.org"}) == "ada"
    assert sso_username({"preferred_username": "a b", "email": "a@x.org"}) == "a@x.org"
    assert sso_username({"preferred_username": "admin"}) is None
    assert sso_username({"sub": "123"}) is None


def test_oidc_settings_are_checked_at_start() -> None:
    from shared.config import Settings
    from shared.errors import ConfigError

    with pytest.raises(ConfigError, match="CLIENT_ID"):
        Settings.from_env({"TOCSIN_OIDC_ISSUER": "http://idp"})
    with pytest.raises(ConfigError, match="OIDC_ROLES"):
        Settings.from_env({"TOCSIN_OIDC_ROLES": "ops=root"})
    s = Settings.from_env(
        {
            "TOCSIN_OIDC_ISSUER": "http://idp",
            "TOCSIN_OIDC_CLIENT_ID": "c",
            "TOCSIN_OIDC_CLIENT_SECRET": "s3cret",
            "TOCSIN_OIDC_ROLES": "ops=responder, staff=viewer",
        }
    )
    assert s.oidc_roles == ("ops=responder", "staff=viewer")
    assert s.redacted()["oidc_client_secret"] == "***"
