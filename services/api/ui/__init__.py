"""The web dashboard at ``/ui/``: server-rendered pages over the same Redis and exchanges.

Public for the API's bearer-token guard (browsers do not send bearer tokens);
the router's own guard requires a login session instead, and every form
carries a session-bound CSRF token.
"""

from __future__ import annotations

from litestar import Router
from litestar.static_files import create_static_files_router

from services.api.ui.actions import action_handlers
from services.api.ui.dead_pages import dead_handlers
from services.api.ui.pages import page_handlers
from services.api.ui.plumbing import STATIC, LoginRequired, on_login_required, require_session

ui_router = Router(
    path="/ui",
    route_handlers=[
        *page_handlers,
        *action_handlers,
        *dead_handlers,
        create_static_files_router(
            path="/static", directories=[STATIC], opt={"anonymous": True}, include_in_schema=False
        ),
    ],
    opt={"public": True},
    guards=[require_session],
    exception_handlers={LoginRequired: on_login_required},
    include_in_schema=False,
)

__all__ = ["ui_router"]
