"""Will the gateway deliver to this address?  Asked when a medium is created, not at 3 am.

The gateways refuse destinations on loopback, private, link-local or metadata
addresses unless ``TOCSIN_DESTINATION_ALLOW`` lists them
(:func:`services.gateways.destinations.check_destination`).  The API asks the
same question when a webhook or Slack medium is created or changed and
returns the answer as a warning with the medium: the medium is still saved,
because the API may run with another allow-list or resolver than the
gateways, but the person creating it learns now that pages to it would be
dead-lettered.
"""

from __future__ import annotations

from collections.abc import Callable

from services.gateways.destinations import Allowlist, DestinationDenied, check_destination
from shared.config import Settings

# Media whose address is the URL the gateway posts to (sms, pagerduty and email
# post to a provider configured by environment variables, not to the address).
URL_MEDIA = frozenset({"webhook", "slack"})


def destination_warning(settings: Settings) -> Callable[[str, str], str | None]:
    """A check of (medium type, address) -> a warning, or None when deliveries may go there."""
    allow = Allowlist.parse(settings.destination_allow)

    def check(medium_type: str, address: str) -> str | None:
        if medium_type not in URL_MEDIA:
            return None
        try:
            check_destination(address, allow)
        except DestinationDenied as exc:
            return (
                f"{exc}; the {medium_type} gateway will refuse to deliver here and dead-letter "
                "every page (unless its TOCSIN_DESTINATION_ALLOW lists the address)"
            )
        except OSError as exc:
            return f"cannot resolve the address now ({exc}); deliveries fail until it resolves"
        return None

    return check
