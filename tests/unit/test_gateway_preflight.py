"""The API's question to the gateways when a medium is created: will pages reach it?"""

from __future__ import annotations

import pytest

from shared.config import Settings
from shared.media import destination_warning


@pytest.mark.parametrize(
    ("allow", "medium_type", "address", "warned"),
    [
        pytest.param("", "webhook", "http://127.0.0.1:8080/hook", True, id="loopback"),
        pytest.param("", "slack", "https://10.1.2.3/services/x", True, id="private"),
        pytest.param("", "webhook", "http://169.254.169.254/latest", True, id="metadata"),
        pytest.param("127.0.0.0/8", "webhook", "http://127.0.0.1:8080/hook", False, id="allowed"),
        pytest.param("", "webhook", "https://93.184.215.14/hook", False, id="public address"),
        pytest.param("", "email", "ops@127.0.0.1", False, id="email goes through SMTP"),
        pytest.param("", "sms", "+4712345678", False, id="sms goes through the provider"),
    ],
)
def test_destinations_the_gateway_would_refuse_are_warned_about(
    allow: str, medium_type: str, address: str, warned: bool
) -> None:
    check = destination_warning(Settings.from_env({"TOCSIN_DESTINATION_ALLOW": allow}))
    warning = check(medium_type, address)
    assert (warning is not None) == warned, warning
    if warning:
        assert "dead-letter" in warning and "TOCSIN_DESTINATION_ALLOW" in warning
