"""Prometheus Alertmanager payloads -> normalised check events (routing key ``alertmanager``).

Two wire shapes share one decoder, told apart by the top-level JSON type:

* a JSON **object** is Alertmanager's webhook payload (version "4"; Grafana's
  copy says "1" with the same ``alerts[]``), each alert carrying ``status``;
* a JSON **array** is the API v2 alert list Prometheus pushes to
  ``/api/v2/alerts``; alerts have no ``status``, an alert is resolved when its
  ``endsAt`` has passed (Alertmanager's own rule).

One alert becomes one event.  Mapping (documented in docs/sources.md):
entity = label ``instance``, else ``job``, else ``alertmanager``; check =
``alertname``, followed by the configured identity labels present on the alert
as ``alertname[k1=v1,k2=v2]`` (in the configured order, so the name is stable);
state ``ok`` when resolved, else from label ``severity``; summary from the
``summary`` or ``description`` annotation; tags = labels as ``key=value``; time
= ``startsAt`` when firing, ``endsAt`` when resolved.

``initial_failure_delay`` is 0: Alertmanager (or Prometheus's ``for:``) has
already waited before firing, so Tocsin notifies at once instead of adding its
own 30 s on top.

Pure: bytes and the receive time in, :class:`Decoded` out.  A bad alert is
rejected with its index and field; the others pass.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from shared.formats.bodies import MAX_EVENTS_PER_BODY, Decoded, decode_envelope
from shared.models import MAX_FUTURE_SKEW_S, CheckEvent, clean_text

SOURCE = "alertmanager"
DEFAULT_ENTITY = "alertmanager"
MAX_NAME = 255
MAX_TAGS = 256
# Go's zero time: Alertmanager's "unknown" (e.g. endsAt of a firing alert).
_ZERO_TIME_PREFIX = "0001-01-01T00:00:00"

LabelMap = Annotated[dict[str, str], Meta(max_length=1024)]


class Alert(msgspec.Struct, kw_only=True):
    """One alert, as in the webhook payload and in the API v2 list.

    Unknown fields are ignored (Grafana adds ``silenceURL``, ``values`` ...);
    the types of the known ones are enforced.
    """

    labels: LabelMap
    annotations: LabelMap = msgspec.field(default_factory=dict)
    status: Literal["firing", "resolved"] | None = None
    startsAt: str | None = None
    endsAt: str | None = None
    generatorURL: str | None = None
    fingerprint: str | None = None


class Webhook(msgspec.Struct, kw_only=True):
    """The webhook envelope; alerts stay raw so each one fails on its own."""

    alerts: list[msgspec.Raw]
    version: str = "4"
    status: Literal["firing", "resolved"] | None = None
    receiver: str = ""
    groupKey: str = ""
    truncatedAlerts: int = 0
    externalURL: str = ""


_ENVELOPE = msgspec.json.Decoder(Webhook | list[msgspec.Raw])
_ALERT = msgspec.json.Decoder(Alert)


class AlertError(ValueError):
    """A mapping error with the alert-relative JSON path of the offending field."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


def parse_rfc3339(value: str, field: str) -> float | None:
    """Epoch seconds of an RFC 3339 time; ``None`` for Go's zero time.

    ``datetime.fromisoformat`` (3.11) takes ``Z`` and Go's nanosecond
    fractions; a time without an offset is refused because RFC 3339 requires one.
    """
    if value.startswith(_ZERO_TIME_PREFIX):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise AlertError(f"{field}: not an RFC 3339 time: {value[:64]!r}", field) from None
    if parsed.tzinfo is None:
        raise AlertError(f"{field}: RFC 3339 time needs an offset or Z: {value[:64]!r}", field)
    return parsed.timestamp()


def check_name(labels: dict[str, str], identity_labels: Sequence[str]) -> str:
    """``alertname`` plus the identity labels present, as ``alertname[k=v,...]``.

    The configured order is kept (not the alert's), so the same alert always
    maps to the same check.
    """
    name = labels["alertname"]
    parts = [f"{k}={labels[k]}" for k in identity_labels if k != "alertname" and k in labels]
    return f"{name}[{','.join(parts)}]" if parts else name


def state_of(status: str, labels: dict[str, str]) -> str:
    """``ok`` when resolved, else the ``severity`` label mapped onto Tocsin's states."""
    if status == "resolved":
        return "ok"
    severity = labels.get("severity", "").strip().lower()
    if severity in ("critical", "page"):
        return "critical"
    if severity == "warning":
        return "warning"
    return "unknown"


def _name(value: str, path: str) -> str:
    if not 1 <= len(value) <= MAX_NAME or not value.isprintable():
        raise AlertError(
            f"{path.rsplit('.', 1)[-1]}: must be 1..{MAX_NAME} printable characters", path
        )
    return value


def _tags(labels: dict[str, str]) -> tuple[str, ...]:
    # Labels that cannot be tags (too long, control characters) are left out
    # rather than failing the alert: tags only route, the alert still matters.
    tags = (f"{k}={v}" for k, v in sorted(labels.items()))
    return tuple(t for t in tags if len(t) <= MAX_NAME and t.isprintable())[:MAX_TAGS]


def _details(alert: Alert, summary_from: str | None) -> str:
    lines = []
    description = alert.annotations.get("description")
    if description and summary_from != "description":
        lines.append(description)
    for key in ("runbook_url", "dashboard"):
        if alert.annotations.get(key):
            lines.append(f"{key}: {alert.annotations[key]}")
    if alert.generatorURL:
        lines.append(f"source: {alert.generatorURL}")
    return clean_text("\n".join(lines))


def normalise(
    alert: Alert,
    received: float,
    event_id: str,
    identity_labels: Sequence[str] = (),
    source: str = SOURCE,
) -> CheckEvent:
    """Map one alert to a CheckEvent; :class:`AlertError` names the bad field."""
    labels = alert.labels
    if "alertname" not in labels:
        raise AlertError("labels: missing required label `alertname`", "labels")
    check = _name(check_name(labels, identity_labels), "labels.alertname")
    if "instance" in labels:
        entity = _name(labels["instance"], "labels.instance")
    elif "job" in labels:
        entity = _name(labels["job"], "labels.job")
    else:
        entity = DEFAULT_ENTITY
    starts = parse_rfc3339(alert.startsAt, "startsAt") if alert.startsAt else None
    ends = parse_rfc3339(alert.endsAt, "endsAt") if alert.endsAt else None
    status = alert.status
    if status is None:  # API v2 list: resolved once endsAt has passed
        status = "resolved" if ends is not None and ends <= received else "firing"
    if status == "resolved":
        when = ends if ends is not None else received
    else:
        when = starts if starts is not None else received
    if when - received > MAX_FUTURE_SKEW_S:
        field = "endsAt" if status == "resolved" else "startsAt"
        raise AlertError(
            f"{field}: {when - received:.0f} s in the future (limit {MAX_FUTURE_SKEW_S:.0f} s)",
            field,
        )
    if when < 0:
        raise AlertError("startsAt: before 1970", "startsAt")
    summary_from = next((k for k in ("summary", "description") if alert.annotations.get(k)), None)
    summary = (
        alert.annotations[summary_from] if summary_from else f"{labels['alertname']} is {status}"
    )
    return CheckEvent(
        id=event_id,
        entity=entity,
        check=check,
        type="service",
        state=state_of(status, labels),
        time=when,
        received=received,
        summary=clean_text(summary),
        details=_details(alert, summary_from),
        tags=_tags(labels),
        # Alertmanager already applied the rule's `for:`; do not wait again.
        initial_failure_delay=0,
        source=source,
    )


def decode_body(
    body: bytes,
    received: float,
    message_id: str | None = None,
    source: str = SOURCE,
    identity_labels: Sequence[str] = (),
) -> Decoded:
    """Decode a webhook payload or an API v2 alert list into one event per alert.

    Event ids are ``<message_id>:<index>`` (stable across redeliveries).
    Rejections carry the raw alert and a reason ending in
    ``- at `$.alerts[i].field``` (webhook) or ``- at `$[i].field``` (list).
    """
    envelope = decode_envelope(_ENVELOPE, body, "body: not an Alertmanager payload ({exc})")
    if isinstance(envelope, Decoded):
        return envelope
    if isinstance(envelope, Webhook):
        items, where = envelope.alerts, "$.alerts"
    else:
        items, where = envelope, "$"
    if len(items) > MAX_EVENTS_PER_BODY:
        return Decoded(
            [],
            [(body[:4096], f"body: {len(items)} alerts exceed the limit of {MAX_EVENTS_PER_BODY}")],
        )
    prefix = message_id or uuid.uuid4().hex
    accepted: list[CheckEvent] = []
    rejected: list[tuple[bytes, str]] = []
    for i, raw in enumerate(items):
        try:
            alert = _ALERT.decode(raw)
            accepted.append(normalise(alert, received, f"{prefix}:{i}", identity_labels, source))
        except msgspec.ValidationError as exc:
            message = str(exc)
            if "- at `$" in message:
                message = message.replace("- at `$", f"- at `{where}[{i}]", 1)
            else:
                message = f"{message} - at `{where}[{i}]`"
            rejected.append((bytes(raw), message))
        except AlertError as exc:
            rejected.append((bytes(raw), f"{exc} - at `{where}[{i}].{exc.path}`"))
    return Decoded(accepted, rejected)


def decoder(identity_labels: Sequence[str]) -> Callable[[bytes, float, str | None, str], Decoded]:
    """A ``shared.intake.SOURCE_DECODERS`` entry bound to the deployment's identity labels."""
    labels = tuple(identity_labels)

    def decode(
        body: bytes, received: float, message_id: str | None = None, source: str = SOURCE
    ) -> Decoded:
        return decode_body(body, received, message_id, source, labels)

    return decode
