"""Ways back in from a page: signed links, Slack buttons, PagerDuty webhooks, SMS replies.

Each route authenticates by its own signature (never by API token) and ends
in :func:`services.api.integrations.acking.acknowledge`; see docs/acknowledge.md.
"""

from __future__ import annotations

from litestar import Router

from services.api.integrations.link_routes import (
    confirm,
    confirm_page,
    short_confirm,
    short_confirm_page,
)
from services.api.integrations.pagerduty_routes import pagerduty_webhook
from services.api.integrations.slack_routes import slack_actions
from services.api.integrations.sms_routes import sms_inbound

integrations_router = Router(
    path="/",
    route_handlers=[
        confirm_page,
        confirm,
        short_confirm_page,
        short_confirm,
        slack_actions,
        pagerduty_webhook,
        sms_inbound,
    ],
)
