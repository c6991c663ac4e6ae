"""CLI for people: ``tocsin login``/``logout``/``whoami``, ``users``, ``tokens`` and ``audit``.

``tocsin login`` stores a personal token (read from a hidden prompt or stdin,
never from an argument, which would land in shell history and ``ps``) in the
login file, mode 0600; the CLI then calls with it.  See docs/users.md.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from services.cli.client import ApiCallFailed, ApiClient
from services.cli.output import JsonOpt, api_client, call_and_show, delete, fail, out, show
from services.cli.parsing import parse_duration, parse_time
from shared.config import Settings
from shared.errors import ConfigError
from shared.tokens import write_secret

users = typer.Typer(help="Users and their roles (admin, responder, viewer).", no_args_is_help=True)
tokens = typer.Typer(
    help="Personal API tokens: yours, or (as an admin) anyone's.", no_args_is_help=True
)


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


USER_COLS = [
    ("id", lambda u: u["id"]),
    ("username", lambda u: u["username"]),
    ("role", lambda u: u["role"]),
    ("email", lambda u: u["email"] or "-"),
    ("contact", lambda u: u["contact_id"] or "-"),
    ("state", lambda u: "disabled" if u["disabled"] else "enabled"),
]
TOKEN_COLS = [
    ("id", lambda t: t["id"]),
    ("name", lambda t: t["name"]),
    ("created", lambda t: _when(t["created_at"])),
    ("expires", lambda t: _when(t.get("expires_at"))),
    ("last used", lambda t: _when(t.get("last_used"))),
    ("state", lambda t: "revoked" if t.get("revoked_at") else "live"),
]
AUDIT_COLS = [
    ("time", lambda r: _when(r["time"])),
    ("actor", lambda r: r["actor"]),
    ("action", lambda r: r["action"]),
    ("target", lambda r: r.get("target") or "-"),
    ("from", lambda r: r.get("client") or "-"),
    ("status", lambda r: r.get("status", "")),
]


def _read_secret(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().strip()
    return str(typer.prompt("Personal API token", hide_input=True)).strip()


def login(
    token_stdin: Annotated[
        bool, typer.Option("--token-stdin", help="Read the token from stdin, not a prompt.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Store a personal API token for the CLI (checked against the API first)."""
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        fail(exc)
        raise typer.Exit(2) from None
    secret = _read_secret(token_stdin)
    if not secret:
        fail("no token given")
        raise typer.Exit(2)
    client = ApiClient(settings, token=secret)
    try:
        me = client.call("GET", "/me")
    except ApiCallFailed as exc:
        fail(f"the API refused this token: {exc.message}")
        raise typer.Exit(1) from None
    finally:
        client.close()
    write_secret(settings.login_path, secret)
    if as_json:
        show({**me, "login_file": str(settings.login_path)}, [], True)
        return
    out.print(f"logged in as {me['name']} ({me['role']}); token stored in {settings.login_path}")
    if settings.api_token:
        out.print("note: TOCSIN_API_TOKEN is set and takes precedence over the stored token")


def logout() -> None:
    """Forget the stored personal token (it stays valid: revoke it with `tocsin tokens revoke`)."""
    settings = Settings.from_env()
    try:
        settings.login_path.unlink()
    except FileNotFoundError:
        out.print("not logged in")
        return
    out.print(f"removed {settings.login_path}")


def whoami(as_json: JsonOpt = False) -> None:
    """Who the CLI's token belongs to, and its role."""
    with api_client() as api:
        me = api.call("GET", "/me")
    show(
        me,
        [
            ("name", lambda m: m["name"]),
            ("role", lambda m: m["role"]),
            ("kind", lambda m: m["kind"]),
        ],
        as_json,
    )


@users.command("list")
def list_users(as_json: JsonOpt = False) -> None:
    """Every user (admins only)."""
    call_and_show("GET", "/users", USER_COLS, as_json)


@users.command("create")
def create_user(
    username: str,
    role: Annotated[str, typer.Option(help="admin, responder or viewer")] = "viewer",
    email: Annotated[str, typer.Option(help="Address for the user's email destination")] = "",
    contact: Annotated[str, typer.Option(help="Contact id of the user's own settings")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create a user (no password: they sign in with a personal token)."""
    body = {"username": username, "role": role, "email": email, "contact_id": contact}
    call_and_show("POST", "/users", USER_COLS, as_json, json=body)


@users.command("show")
def show_user(uid: str, as_json: JsonOpt = False) -> None:
    call_and_show("GET", f"/users/{uid}", USER_COLS, as_json)


@users.command("update")
def update_user(
    uid: str,
    role: Annotated[str | None, typer.Option(help="admin, responder or viewer")] = None,
    email: Annotated[str | None, typer.Option()] = None,
    contact: Annotated[str | None, typer.Option(help="Contact id ('' to unlink)")] = None,
    disable: Annotated[
        bool | None,
        typer.Option("--disable/--enable", help="A disabled user's tokens stop working at once"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a user's role, email, contact, or disable them."""
    body: dict[str, Any] = {
        k: v
        for k, v in (
            ("role", role),
            ("email", email),
            ("contact_id", contact),
            ("disabled", disable),
        )
        if v is not None
    }
    call_and_show("PATCH", f"/users/{uid}", USER_COLS, as_json, json=body)


@users.command("delete")
def delete_user(uid: str) -> None:
    """Delete a user; their tokens are revoked."""
    delete(f"/users/{uid}", f"user {uid}")


@users.command("bootstrap")
def bootstrap(
    disable: Annotated[
        bool | None,
        typer.Option("--disable/--enable", help="Disable or re-enable the break-glass token"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show, disable or re-enable the break-glass TOCSIN_API_TOKEN."""
    with api_client() as api:
        if disable is None:
            state = api.call("GET", "/auth/bootstrap")
        else:
            state = api.call("PUT", "/auth/bootstrap", json={"disabled": disable})
    show(
        state, [("bootstrap token", lambda s: "disabled" if s["disabled"] else "enabled")], as_json
    )


def _user_id(api: ApiClient, user: str | None) -> str:
    """The id of ``user`` (an id or a username), or of the caller when None."""
    if user is None:
        me = api.call("GET", "/me")
        if not me.get("user"):
            raise ApiCallFailed(0, f"{me['name']} is not a user; name one with --user")
        return str(me["user"]["id"])
    for u in api.call("GET", "/users"):
        if user in (u["id"], u["username"]):
            return str(u["id"])
    raise ApiCallFailed(0, f"no user {user!r}", "user")


def _moment(text: str, direction: int) -> float:
    """A duration from now (``30d`` ahead, ``1h`` back per ``direction``) or a time; ValueError."""
    try:
        return time.time() + direction * parse_duration(text)
    except ValueError:
        return parse_time(text)


UserOpt = Annotated[str | None, typer.Option("--user", help="Username or id (default: yourself)")]


@tokens.command("list")
def list_tokens(user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """A user's tokens (never their secrets)."""
    with api_client() as api:
        uid = _user_id(api, user)
        show(api.call("GET", f"/users/{uid}/tokens"), TOKEN_COLS, as_json)


@tokens.command("create")
def create_token(
    name: str,
    user: UserOpt = None,
    expires: Annotated[
        str | None, typer.Option(help="Lifetime (30d, 12h) or a time (ISO 8601, epoch)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a token; its secret is printed this once."""
    body: dict[str, Any] = {"name": name}
    with api_client() as api:
        if expires:
            body["expires_at"] = _moment(expires, +1)
        created = api.call("POST", f"/users/{_user_id(api, user)}/tokens", json=body)
    if as_json:
        show(created, [], True)
        return
    out.print(f"token {created['id']} ({created['name']}), shown only now:")
    out.print(created["token"], markup=False, highlight=False)


@tokens.command("revoke")
def revoke_token(token_id: str, user: UserOpt = None) -> None:
    """Revoke a token at once."""
    with api_client() as api:
        api.call("DELETE", f"/users/{_user_id(api, user)}/tokens/{token_id}")
    out.print(f"revoked token {token_id}")


def audit(
    actor: Annotated[str, typer.Option(help="Only this actor (username, admin, source:N)")] = "",
    action: Annotated[str, typer.Option(help="Only actions starting with this")] = "",
    since: Annotated[str, typer.Option(help="From this age (1h, 2d) or time")] = "",
    limit: Annotated[int, typer.Option(help="At most this many, newest first")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The audit log: who changed or did what, when, from where."""
    params: dict[str, Any] = {"actor": actor, "action": action, "limit": limit}
    with api_client() as api:
        if since:
            params["since"] = _moment(since, -1)
        page = api.call("GET", "/audit", params=params)
    if as_json:
        show(page, [], True)
        return
    show(page["items"], AUDIT_COLS, False)
    out.print(f"{len(page['items'])} of {page['total']} record(s)")


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)
    app.add_typer(users, name="users")
    app.add_typer(tokens, name="tokens")
    app.command("audit")(audit)
