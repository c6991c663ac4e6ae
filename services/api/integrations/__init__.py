"""Ways back in from a page: signed links, Slack buttons, PagerDuty webhooks, SMS replies.

Each route authenticates by its own signature (never by API token) and ends
in :func:`services.api.integrations.acking.acknowledge`; see docs/acknowledge.md.
"""

from __future__ import annotations

from litestar import Router

from services.api.integrations.link_routes import confirm, confirm_page

integrations_router = Router(path="/", route_handlers=[confirm_page, confirm])
