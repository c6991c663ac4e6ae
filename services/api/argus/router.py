"""The Argus router: every ``/api/v2/`` incident route, source-token auth, Argus-style errors."""

from __future__ import annotations

from litestar import Router

from services.api.argus.bulk import bulk_handlers
from services.api.argus.events import event_handlers
from services.api.argus.incidents import incident_handlers
from services.api.argus.maintenance import maintenance_handlers
from services.api.argus.phone_numbers import phone_number_handlers
from services.api.argus.plumbing import on_argus_error, source_token_check
from services.api.argus.profiles import profile_handlers
from services.api.argus.sources import source_handlers
from services.api.argus.timeslots import timeslot_handlers
from services.api.argus.token_login import token_login_handlers
from services.api.argus.users import user_handlers
from services.api.errors import ApiError

# Incidents and sources: source systems may read and act on them (the handlers
# keep each source to its own incidents); profiles and maintenance are people's.
incidents_router = Router(
    path="/",
    route_handlers=[*source_handlers, *incident_handlers, *event_handlers, *bulk_handlers],
    opt={"sources": "reads"},
)

argus_router = Router(
    path="/api/v2",
    route_handlers=[
        incidents_router,
        *timeslot_handlers,
        *profile_handlers,
        *maintenance_handlers,
        *user_handlers,
        *phone_number_handlers,
        *token_login_handlers,
    ],
    # The app's guard asks this about tokens it does not know (services/api/auth.py);
    # roles: services/api/access.py.
    opt={"token_check": source_token_check, "reads": "viewer", "writes": "admin"},
    exception_handlers={ApiError: on_argus_error},
    tags=["argus"],
)

__all__ = ["argus_router"]
