"""What API handlers share: settings, Redis repositories, the event sender, metrics.

Handlers reach it with :func:`ctx_of` (the app keeps one in its state).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
from litestar import Request
from prometheus_client import CollectorRegistry, Counter, Histogram

import shared.telemetry  # noqa: F401 - turns off the *_created series for this process too
from services.api.auth import FailedAuth
from services.api.errors import ApiError
from shared.check_quota import CheckQuota
from shared.config import Settings
from shared.directory import Directory, ValidationFailed, validate_medium
from shared.intake import IngestMetrics
from shared.keys import Keys
from shared.models import Medium
from shared.redis_memory import RedisMemoryCollector
from shared.sender import Sender

# Request latency: 5 ms .. 10 s in 10 buckets (per route and status, so kept few).
API_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

SettingsValidator = Callable[[str, str, dict[str, str]], None]


def _no_settings_validation(_type: str, _address: str, _settings: dict[str, str]) -> None:
    return None


def _no_destination_check(_type: str, _address: str) -> str | None:
    return None


@dataclass
class ApiContext:
    settings: Settings
    redis: redis.Redis
    sender: Sender
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    validate_medium_settings: SettingsValidator = _no_settings_validation
    # (medium type, address) -> a warning when the gateway would refuse the destination.
    destination_warning: Callable[[str, str], str | None] = _no_destination_check
    # Wrong tokens per client, shared by the bearer guard and the dashboard login.
    failed_auth: FailedAuth = field(default_factory=FailedAuth)

    def __post_init__(self) -> None:
        self.keys = Keys(self.settings.namespace)
        self.directory = Directory(self.redis, self.keys)
        self.requests = Counter(
            "tocsin_api_requests",
            "API requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "tocsin_api_request_duration_seconds",
            "API request latency by method, route template and status",
            ["method", "route", "status"],
            buckets=API_BUCKETS,
            registry=self.registry,
        )
        self.events_accepted = Counter(
            "tocsin_api_events_accepted", "Events accepted by POST /events", registry=self.registry
        )
        self.page_acks = Counter(
            "tocsin_api_page_acks",
            "Acknowledgements from a page (link, slack, pagerduty, sms) by outcome",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.check_quota = CheckQuota(self.redis, self.keys, self.settings.checks_per_source)
        self.check_cap_refusals = Counter(
            "tocsin_api_source_check_cap_refusals",
            "Requests refused because their source reached TOCSIN_CHECKS_PER_SOURCE",
            ["kind"],
            registry=self.registry,
        )
        # Events the API routes into the pipeline itself (shared/intake.py) are
        # counted as ingest counts its own, in this process's registry.
        if self.sender.metrics is None:
            self.sender.metrics = IngestMetrics(self.registry)
        # Redis used memory against maxmemory, read at scrape time (docs/scaling.md).
        self.registry.register(RedisMemoryCollector(self.redis))

    def admit_checks(self, kind: str, source: str, check_ids: Iterable[str]) -> None:
        """Refuse (422) a request that would take ``source`` past its cap on checks.

        ``kind`` (``declared``, ``argus``) labels the metric; the source's
        name stays out of metric labels, which attackers must not be able to grow.
        """
        verdict = self.check_quota.admit(f"{kind}:{source}", check_ids)
        if verdict.refused:
            self.check_cap_refusals.labels(kind).inc()
            raise ApiError(
                422,
                f"source {source!r} has named {verdict.known} checks and may name at most "
                f"{verdict.cap} (TOCSIN_CHECKS_PER_SOURCE); this request names {verdict.new} "
                "new ones, so nothing in it was accepted",
                "check",
            )

    def installed_media(self) -> list[str]:
        """Medium types some gateway has registered (Argus's ``installed`` flag)."""
        return sorted(self.redis.hkeys(self.keys.media_installed()))

    def check_medium(self, medium: Medium, installed: list[str] | None = None) -> None:
        """Type installed, address and settings valid for the type (the gateway's own schema).

        Raises :class:`~shared.directory.ValidationFailed` naming the field.
        """
        validate_medium(medium, self.installed_media() if installed is None else installed)
        try:
            self.validate_medium_settings(medium.type, medium.address, medium.settings)
        except ValidationFailed:
            raise
        except ValueError as exc:
            raise ValidationFailed(str(exc), getattr(exc, "field", "settings")) from None


def ctx_of(request: Request[Any, Any, Any]) -> ApiContext:
    """The API's context, from the app state of the request being handled."""
    ctx: ApiContext = request.app.state.ctx
    return ctx
