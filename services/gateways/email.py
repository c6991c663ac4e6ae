"""Email gateway: one plain-text MIME message per delivery over SMTP (``TOCSIN_SMTP_*``).

Subject (docs/payloads.md): upper-case type, ``entity:check`` and state, e.g.
``PROBLEM: web1:http is CRITICAL``; rollups give the count; acknowledgements
read ``ACKNOWLEDGED: web1:http (critical): <comment>``.  The
``Message-ID`` derives from the delivery id, so a retry that reached the
server twice is recognisable as one message by the receiving side.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
import time
from email.message import EmailMessage
from email.utils import formatdate

from services.gateways.core import SendResult
from services.gateways.send_context import SendContext
from services.gateways.texts import (
    ROLLUP_TYPES,
    ack_line,
    acked_state,
    check_name,
    check_url,
    clean,
    format_duration,
    headline,
    local_time,
    rollup_states_summary,
    state_title,
)
from shared.action_links import ActionLinks, links_for
from shared.config import Settings
from shared.models import Delivery


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def subject(d: Delivery) -> str:
    """``PROBLEM: web1:http is CRITICAL``; rollups: ``ROLLUP: 3 failing checks``."""
    kind = d.type.upper()
    if d.type in ROLLUP_TYPES:
        n = len(d.checks)
        text = f"{kind}: {n} failing check{'s' if n != 1 else ''}"
    elif d.type == "acknowledgement":
        text = cut(ack_line(d), 200)
    else:
        text = f"{kind}: {check_name(d)} is {d.state.upper()}"
    prefix = clean(d.medium.settings.get("subject_prefix") or "")
    return f"{prefix} {text}" if prefix else text


def body(d: Delivery, public_url: str | None = None, links: ActionLinks | None = None) -> str:
    """The plain-text body: what, how bad, since when, why; rollups list their checks.

    Times are on the contact's clock with UTC beside them; with
    ``TOCSIN_PUBLIC_URL`` set, the body links to the check's dashboard page.
    """
    when = local_time(d.time, d.contact.timezone)
    lines = [headline(d), ""]
    if d.type in ROLLUP_TYPES:
        lines.append(f"States: {rollup_states_summary(d) or 'none'}")
        lines.append("")
        for c in d.checks:
            extra = f" for {format_duration(c.duration)}" if c.duration > 0 else ""
            summary = f" - {c.summary}" if c.summary else ""
            lines.append(f"  {c.entity}:{c.check}: {state_title(c.state)}{extra}{summary}")
        lines.append("")
        lines.append(f"Time: {when}")
    elif d.type == "acknowledgement":
        lines.append(f"Check: {check_name(d)}")
        lines.append(f"State: {state_title(acked_state(d))}")
        lines.append(f"Comment: {d.summary or '(none)'}")
        if d.acknowledged_by:
            lines.append(f"Acknowledged by: {d.acknowledged_by}")
        lines.append(f"Time: {when}")
        lines.append(f"Acknowledged for: {format_duration(d.duration)}")
        if d.duration > 0:
            lines.append(f"Until: {local_time(d.time + d.duration, d.contact.timezone)}")
    else:
        lines.append(f"Check: {check_name(d)}")
        lines.append(f"State: {state_title(d.state)}")
        if d.previous_state:
            lines.append(f"Previous state: {state_title(d.previous_state)}")
        lines.append(f"Summary: {d.summary}")
        if d.details:
            lines.append(f"Details: {d.details}")
        lines.append(f"Time: {when}")
        lines.append(f"Duration: {format_duration(d.duration)}")
        if d.tags:
            lines.append(f"Tags: {', '.join(d.tags)}")
    if links is not None:
        # Each link opens a confirmation page first, so a mail scanner following it acks nothing.
        lines += [
            "",
            f"Acknowledge for 4h: {links.acknowledge}",
            f"Acknowledge for 1h: {links.acknowledge_1h}",
            f"Open in Tocsin: {links.open}",
        ]
    link = check_url(public_url, d)
    if link and links is None:
        lines += ["", f"Dashboard: {link}"]
    lines += ["", f"-- \nSent by Tocsin to {d.contact.name} (delivery {d.id})"]
    return "\n".join(lines) + "\n"


def message_id(d: Delivery, sender: str) -> str:
    domain = sender.rpartition("@")[2] or "localhost"
    digest = hashlib.blake2b(d.id.encode(), digest_size=12).hexdigest()
    return f"<{digest}.tocsin@{domain}>"


def render(d: Delivery, settings: Settings, now: float) -> EmailMessage:
    """The MIME message for ``d`` sent at ``now``."""
    msg = EmailMessage()
    msg["Subject"] = subject(d)
    msg["From"] = settings.smtp_from
    msg["To"] = d.medium.address
    msg["Date"] = formatdate(now, usegmt=True)
    msg["Message-ID"] = message_id(d, settings.smtp_from)
    msg["X-Tocsin-Delivery"] = clean(d.id)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body(d, settings.public_url, links_for(settings, d)))
    return msg


def send(d: Delivery, ctx: SendContext) -> SendResult:
    """Send through the configured SMTP server; 4xx replies and network errors retry, 5xx fail."""
    s = ctx.settings
    msg = render(d, s, time.time())
    try:
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.delivery_timeout_s) as smtp:
            if s.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password or "")
            refused = smtp.send_message(msg)
    except (smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError) as exc:
        # Our credentials or the server's TLS are wrong, not the message: keep it until fixed.
        return SendResult.retry(f"SMTP server setup: {type(exc).__name__}: {exc}")
    except smtplib.SMTPRecipientsRefused as exc:
        return _from_code(_first_code(exc.recipients), f"recipient refused: {exc.recipients}")
    except smtplib.SMTPResponseException as exc:
        return _from_code(exc.smtp_code, f"SMTP {exc.smtp_code}: {exc.smtp_error!r}")
    except (smtplib.SMTPException, OSError) as exc:
        return SendResult.retry(f"{type(exc).__name__}: {exc}")
    if refused:
        return _from_code(_first_code(refused), f"recipient refused: {refused}")
    return SendResult.ok(250)


def _first_code(recipients: dict[str, tuple[int, bytes]]) -> int:
    return next((code for code, _ in recipients.values()), 550)


def _from_code(code: int, error: str) -> SendResult:
    # SMTP: 4xx is "try again later", 5xx is final.
    if 400 <= code < 500:
        return SendResult.retry(error, status=code)
    return SendResult.failed(error, status=code)
