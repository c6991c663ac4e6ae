"""The failed-auth limiter and the API's proxy-header trust, as pure functions."""

from __future__ import annotations

import time

import pytest

from services.api.auth import FailedAuth, client_key, proxy_options
from shared.config import Settings
from shared.errors import ConfigError


def test_window_locks_out_and_ages_out() -> None:
    f = FailedAuth(limit=3, window_s=60)
    for t in (0.0, 1.0, 2.0):
        assert not f.locked("10.0.0.1", t)
        f.record("10.0.0.1", t)
    assert f.locked("10.0.0.1", 3.0)
    assert f.retry_after("10.0.0.1", 3.0) == 58
    assert not f.locked("10.0.0.1", 61.0)  # the first failure aged out


def test_failures_of_one_address_never_lock_another() -> None:
    f = FailedAuth(limit=3, window_s=60)
    for t in range(100):
        f.record("198.51.100.7", float(t) / 10)
    assert f.locked("198.51.100.7", 10.0)
    assert not f.locked("203.0.113.9", 10.0)
    assert f.retry_after("203.0.113.9", 10.0) == 0


def test_table_is_a_bounded_lru() -> None:
    """A flood of addresses never grows the table past its bound; the stalest go first."""
    f = FailedAuth(limit=3, window_s=60, max_clients=100)
    for i in range(5_000):
        f.record(f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}", 1.0 + i / 1e6)
        assert len(f.failures) <= 100
    assert "10.0.0.0" not in f.failures and "10.0.19.135" in f.failures  # i = 4999 kept
    # A client that keeps failing stays (moved to the back), the idle ones are evicted.
    f.record("192.0.2.1", 2.0)
    f.record("192.0.2.1", 2.1)
    for i in range(99):
        f.record(f"172.16.0.{i}", 2.2)
    assert len(f.failures["192.0.2.1"]) == 2


def test_expired_entries_are_dropped() -> None:
    f = FailedAuth(limit=3, window_s=60)
    for i in range(50):
        f.record(f"10.0.0.{i}", float(i))
    f.locked("192.0.2.1", 200.0)
    assert len(f.failures) == 0


def test_a_full_table_costs_no_scan_per_failure() -> None:
    """The old table scanned every entry on each failure once full (quadratic under a flood)."""
    f = FailedAuth(limit=30, window_s=60, max_clients=10_000)
    started = time.perf_counter()
    for i in range(60_000):
        f.record(f"h{i}", 1.0)
    assert time.perf_counter() - started < 2.0
    assert len(f.failures) == 10_000


@pytest.mark.parametrize(
    ("host", "key"),
    [
        pytest.param("203.0.113.9", "203.0.113.9", id="ipv4"),
        pytest.param("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64", id="ipv6 by its /64"),
        pytest.param("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64", id="same /64, same key"),
        pytest.param("::ffff:198.51.100.7", "198.51.100.7", id="ipv4-mapped"),
        pytest.param(None, "unknown", id="no peer"),
        pytest.param("testclient", "testclient", id="not an address"),
    ],
)
def test_client_key(host: str | None, key: str) -> None:
    assert client_key(host) == key


def test_forwarded_headers_are_ignored_unless_proxies_are_named() -> None:
    assert proxy_options(Settings()) == {"proxy_headers": False}
    s = Settings.from_env({"TOCSIN_TRUSTED_PROXIES": "10.0.0.5, 192.168.0.0/24"})
    assert proxy_options(s) == {
        "proxy_headers": True,
        "forwarded_allow_ips": ["10.0.0.5", "192.168.0.0/24"],
    }


def test_trusted_proxies_must_be_addresses() -> None:
    with pytest.raises(ConfigError, match="TOCSIN_TRUSTED_PROXIES"):
        Settings.from_env({"TOCSIN_TRUSTED_PROXIES": "proxy.example"})
