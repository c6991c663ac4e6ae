"""The one configuration object, read from ``TOCSIN_*`` environment variables.

Every worker, the API and the CLI call :func:`Settings.from_env` once at start
and pass the result down; nothing else reads ``os.environ``.  A bad value stops
the process at start with a message naming the variable, instead of failing
later in the middle of a page.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec

from shared.errors import ConfigError

ENV_PREFIX = "TOCSIN_"

# TOCSIN_RETAIN_* names of settings that predate the retention group (both names work;
# when both are set, the TOCSIN_RETAIN_* one wins).
_RETAIN_ALIASES = {
    "retain_notifications_s": "notification_ttl_s",
    "retain_explain_s": "explain_ttl_s",
    "retain_history_s": "history_max_age_s",
    "retain_history_states": "history_max_states",
}

# Variables whose value is a comma-separated list.
_LIST_FIELDS = frozenset({"destination_allow", "identity_labels", "trusted_proxies", "oidc_roles"})


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Deployment settings (README, "Configuration": the documented variables plus tuning knobs with safe defaults)."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    namespace: str = "tocsin"
    partitions: int = msgspec.field(default=8)
    api_listen: str = "127.0.0.1:8700"
    api_token: str | None = None
    # API processes sharing TOCSIN_API_LISTEN (uvicorn's workers; docs/scaling.md).
    api_workers: int = 1
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_from: str = "tocsin@localhost"
    pagerduty_url: str = "https://events.pagerduty.com/v2/enqueue"
    sms_url: str | None = None
    flapjack_list: str | None = None
    destination_allow: tuple[str, ...] = ()
    identity_labels: tuple[str, ...] = ()
    # Proxies (IPs or CIDRs) whose X-Forwarded-For the API believes; empty = none.
    trusted_proxies: tuple[str, ...] = ()
    # Distinct checks one event source (declared or Argus) may name; 0 = no limit.
    checks_per_source: int = 10_000
    # Processor partitions this process consumes, e.g. "0-3,6"; unset = all.
    processor_partitions: str | None = None
    # Where people reach the dashboard (e.g. https://tocsin.example.org); email bodies link
    # to the check's page there.  Unset = no links.
    public_url: str | None = None
    # Acknowledging from the page (docs/acknowledge.md).  Key of the signed action links;
    # unset = derived from TOCSIN_API_TOKEN (shared/action_links.py).  Links last this long.
    action_secret: str | None = None
    action_link_ttl_s: int = 86400
    # Secrets of the ways back in: Slack app signing secret, PagerDuty V3 webhook
    # subscription secret, and the HMAC key the SMS provider signs inbound messages with.
    slack_signing_secret: str | None = None
    # Optional: a Slack bot token with users:read.email, so a clicking Slack user whose
    # contact has no slack_user_id setting is found by email (users.info at slack_api_url).
    slack_bot_token: str | None = None
    slack_api_url: str = "https://slack.com/api"
    pagerduty_webhook_secret: str | None = None
    sms_inbound_secret: str | None = None

    # The processor expands the notifications it writes itself (one durable hop fewer);
    # false = it publishes refs to NS.notifications for the notifier, as every other
    # producer does (docs/architecture.md, "Where notifications are expanded").
    processor_expands: bool = True

    # Tuning; see README "Configuration".
    prefetch: int = 1000
    batch_size: int = 500
    batch_wait_ms: int = 2
    history_max_states: int = 1000
    history_max_age_s: int = 30 * 86400
    # Notification records and the notifier's `notified` markers (TOCSIN_RETAIN_NOTIFICATIONS_S).
    notification_ttl_s: int = 86400
    # Decision records kept per check for `tocsin explain` (0 = record nothing), and their TTL.
    explain_max_records: int = 200
    explain_ttl_s: int = 7 * 86400
    # Retention (docs/scaling.md "Retention"): the TOCSIN_RETAIN_* group.  The first three
    # are new; TOCSIN_RETAIN_NOTIFICATIONS_S, _EXPLAIN_S, _HISTORY_S and _HISTORY_STATES are
    # other names of the settings above (_RETAIN_ALIASES).
    # Closed (and stateless) incidents, with their event logs and acks, after their end.
    retain_incidents_s: int = 30 * 86400
    # Delivered markers (a redelivered delivery is not sent twice within this window).
    retain_delivered_s: int = 86400
    # Ended acknowledgements (unscheduled maintenance records), after their end.
    retain_maintenances_s: int = 30 * 86400
    # Redelivery windows (processed:p<k>, event ids a partition applied); also capped by count.
    retain_processed_s: int = 86400
    # How often one replica's sweeper runs (the others skip; a lease decides).
    retain_sweep_interval_s: float = 10.0
    # A notifier outbox entry older than this is a crashed batch's leftover and is
    # republished by the notifier's idle sweep (younger ones may belong to a batch
    # another replica is still publishing).  The fault tests shorten it.
    notifier_outbox_grace_s: float = 15.0
    delivery_attempts: int = 5
    delivery_deadline_s: float = 300.0
    delivery_timeout_s: float = 10.0
    # Per-address rate limit for every medium type at once; unset = each type's own default
    # (services/gateways/ratelimit.py); a medium's rate_per_s/rate_burst settings win over both.
    rate_per_s: float | None = None
    rate_burst: int | None = None
    # A delivery unfinished this long is presumed lost and no longer holds up its lane
    # (shared/lanes.py); unset = delivery_deadline_s + 2 * retry_max_s + 60.
    lane_stale_s: float | None = None
    # Gateway retry backoff: exponential from retry_base_s, capped at retry_max_s, with jitter.
    retry_base_s: float = 2.0
    retry_max_s: float = 120.0
    # Longest wait between attempts to reach a lost broker or Redis (exponential backoff
    # with jitter, shared/retry.py); unset = each loop's own cap: 15 s for a worker's broker
    # connection, 10 s for a batch retried after a Redis error, 30 s for the scheduler's
    # tick.  The fault tests set 1 s, so a restarted broker is noticed within a second.
    reconnect_max_s: float | None = None
    # Deliveries a gateway sends at once (libcurl transfers, or threads for email); a
    # gateway batch is concurrency / 8 messages.
    gateway_concurrency: int = 32
    # Escalation scheduler (docs/oncall.md): how often it looks for due steps, how long its
    # lease lasts without renewal, and after how long a claimed but unfinished step is
    # claimed again (its scheduler died mid-step).
    scheduler_tick_ms: int = 500
    scheduler_lease_ms: int = 5000
    scheduler_inflight_s: float = 10.0
    # How often the lease-holding scheduler re-syncs layers imported from a calendar feed
    # URL (shared/feed_sync.py); 0 turns it off.
    oncall_feed_sync_s: int = 3600
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    token_file: str = "~/.config/tocsin/token"
    # The personal token `tocsin login` stored for the CLI (docs/users.md).
    login_file: str = "~/.config/tocsin/login"
    # Dashboard single sign-on with OpenID Connect (docs/users.md); off while issuer is empty.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str | None = None
    oidc_scopes: str = "openid email profile"
    oidc_groups_claim: str = "groups"
    # "group=role" pairs; the highest role of the user's groups wins.
    oidc_roles: tuple[str, ...] = ()
    # Role of a user in none of the groups; empty: such a user may not log in.
    oidc_default_role: str = ""
    # Argus token logins (docs/users.md): ``token-auth/`` tokens last this many days (Argus's
    # AUTH_TOKEN_EXPIRES_AFTER_DAYS), ``auth/token/login/`` tokens this many hours (knox's TTL).
    argus_token_days: float = 14.0
    argus_login_hours: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``TOCSIN_*`` variables; unknown ones are ignored."""
        env = os.environ if environ is None else environ
        fields = set(cls.__struct_fields__)
        raw: dict[str, object] = {}
        aliased: dict[str, object] = {}
        for key, value in env.items():
            if not key.startswith(ENV_PREFIX):
                continue
            name = key[len(ENV_PREFIX) :].lower()
            if name in _RETAIN_ALIASES and value != "":
                aliased[_RETAIN_ALIASES[name]] = value
                continue
            if name not in fields or value == "":
                continue
            if name in _LIST_FIELDS:
                raw[name] = tuple(v.strip() for v in value.split(",") if v.strip())
            else:
                raw[name] = value
        raw.update(aliased)
        try:
            settings = msgspec.convert(raw, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise ConfigError(_env_name_in(str(exc))) from None
        settings.validate()
        return settings

    def validate(self) -> None:
        """Reject values that would only fail later, at the worst moment."""
        if not 1 <= self.partitions <= 1024:
            raise ConfigError("TOCSIN_PARTITIONS must be between 1 and 1024")
        if not self.namespace or any(c in self.namespace for c in " :.{}*?[]"):
            raise ConfigError("TOCSIN_NAMESPACE must be non-empty and contain none of ' :.{}*?[]'")
        if self.prefetch < 1 or self.batch_size < 1:
            raise ConfigError("TOCSIN_PREFETCH and TOCSIN_BATCH_SIZE must be positive")
        if (self.rate_per_s is not None and self.rate_per_s <= 0) or (
            self.rate_burst is not None and self.rate_burst < 1
        ):
            raise ConfigError("TOCSIN_RATE_PER_S must be > 0 and TOCSIN_RATE_BURST >= 1")
        if self.reconnect_max_s is not None and self.reconnect_max_s <= 0:
            raise ConfigError("TOCSIN_RECONNECT_MAX_S must be positive (seconds)")
        if self.public_url is not None and not self.public_url.startswith(("http://", "https://")):
            raise ConfigError("TOCSIN_PUBLIC_URL must start with http:// or https://")
        for name in (
            "retain_incidents_s",
            "retain_delivered_s",
            "retain_maintenances_s",
            "retain_processed_s",
            "retain_sweep_interval_s",
            "notifier_outbox_grace_s",
            "notification_ttl_s",
            "explain_ttl_s",
            "history_max_age_s",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{ENV_PREFIX}{name.upper()} must be positive (seconds)")
        if self.action_link_ttl_s < 60:
            raise ConfigError("TOCSIN_ACTION_LINK_TTL_S must be at least 60 (seconds)")
        if not 1 <= self.api_workers <= 64:
            raise ConfigError("TOCSIN_API_WORKERS must be between 1 and 64")
        if self.checks_per_source < 0:
            raise ConfigError("TOCSIN_CHECKS_PER_SOURCE must be >= 0 (0 = no limit)")
        if self.oidc_issuer and not (self.oidc_client_id and self.oidc_client_secret):
            raise ConfigError(
                "TOCSIN_OIDC_ISSUER needs TOCSIN_OIDC_CLIENT_ID and TOCSIN_OIDC_CLIENT_SECRET"
            )
        for pair in self.oidc_roles:
            group, _, role = pair.partition("=")
            if not group or role not in ("admin", "responder", "viewer"):
                raise ConfigError(
                    f"TOCSIN_OIDC_ROLES: {pair!r} is not group=role (admin, responder or viewer)"
                )
        if not (0 < self.argus_token_days <= 3650 and 0 < self.argus_login_hours <= 87600):
            raise ConfigError(
                "TOCSIN_ARGUS_TOKEN_DAYS and TOCSIN_ARGUS_LOGIN_HOURS must be positive (at most"
                " 10 years)"
            )
        if self.oidc_default_role not in ("", "admin", "responder", "viewer"):
            raise ConfigError("TOCSIN_OIDC_DEFAULT_ROLE must be admin, responder, viewer or empty")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ConfigError(
                    f"TOCSIN_TRUSTED_PROXIES: {proxy!r} is not an IP address or CIDR"
                ) from None

    @property
    def lane_stale_after_s(self) -> float:
        """How long an unfinished delivery may hold up the deliveries behind it."""
        if self.lane_stale_s is not None:
            return self.lane_stale_s
        return self.delivery_deadline_s + 2 * self.retry_max_s + 60.0

    @property
    def api_host(self) -> str:
        return self.api_listen.rsplit(":", 1)[0] or "127.0.0.1"

    @property
    def api_port(self) -> int:
        return int(self.api_listen.rsplit(":", 1)[1])

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def token_path(self) -> Path:
        return Path(self.token_file).expanduser()

    @property
    def login_path(self) -> Path:
        return Path(self.login_file).expanduser()

    def redacted(self) -> dict[str, object]:
        """Settings as a dict with secrets masked, safe to log."""
        out = msgspec.structs.asdict(self)
        for name in (
            "api_token",
            "smtp_password",
            "action_secret",
            "slack_signing_secret",
            "slack_bot_token",
            "pagerduty_webhook_secret",
            "sms_inbound_secret",
            "oidc_client_secret",
        ):
            if out.get(name):
                out[name] = "***"
        for name in ("redis_url", "amqp_url"):
            out[name] = redact_url(str(out[name]))
        return out


def redact_url(url: str) -> str:
    """Hide the password part of ``scheme://user:password@host`` URLs (each of a comma list)."""
    if "," in url:
        return ",".join(redact_url(part) for part in url.split(","))
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def _env_name_in(message: str) -> str:
    # msgspec says "Expected `int`, got `str` - at `$.partitions`"; name the variable instead.
    if "$." in message:
        head, _, path = message.partition("$.")
        field = path.strip("`").split(".")[0].split("[")[0]
        return f"invalid value for {ENV_PREFIX}{field.upper()}: {head.rstrip(' -at`')}"
    return f"invalid configuration: {message}"
