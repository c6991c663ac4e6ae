"""Where deliveries may go: address syntax per medium and the outbound destination guard.

Medium addresses are typed in by people through the API, so a webhook URL
could point at the gateway's own network (Redis, the cloud metadata service,
an admin port).  Before every HTTP delivery the target host is resolved and
refused if any of its addresses is not globally routable (loopback, private,
link-local, shared 100.64.0.0/10, reserved, multicast), embeds such an IPv4
address (6to4, Teredo, NAT64), or is a metadata endpoint, unless
``TOCSIN_DESTINATION_ALLOW`` lists it (CIDRs or host names).  A refused
destination is a permanent failure: retrying would not make it safe.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Well-known metadata endpoints that are not all covered by the address checks.
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
METADATA_IPS = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)

EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
E164_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")
ROUTING_KEY_RE = re.compile(r"^[A-Za-z0-9]{32}$")


class DestinationDenied(Exception):
    """The destination is not allowed (private network, metadata) or not a valid target."""


def check_email(address: str) -> str | None:
    """None when ``address`` is a plain ``user@domain`` address, else what is wrong."""
    if len(address) > 254 or not EMAIL_RE.match(address):
        return "must be an email address like ops@example.com"
    return None


def check_e164(address: str) -> str | None:
    """None when ``address`` is an E.164 phone number (``+`` then 7..15 digits)."""
    if not E164_RE.match(address):
        return "must be an E.164 phone number like +4712345678"
    return None


def check_http_url(address: str) -> str | None:
    """None when ``address`` is an absolute http(s) URL with a host and no credentials."""
    if len(address) > 2048 or any(c.isspace() or ord(c) < 32 for c in address):
        return "must be an http(s) URL without spaces, at most 2048 characters"
    try:
        parts = urlsplit(address)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"must be an http(s) URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http(s) URL like https://example.com/hook"
    if parts.username or parts.password:
        return "must not contain credentials (use the medium's settings instead)"
    return None


def check_routing_key(address: str) -> str | None:
    """None when ``address`` looks like a PagerDuty Events v2 routing (integration) key."""
    if not ROUTING_KEY_RE.match(address):
        return "must be a PagerDuty Events v2 routing key (32 letters and digits)"
    return None


@dataclass(frozen=True, slots=True)
class Allowlist:
    """``TOCSIN_DESTINATION_ALLOW`` parsed once: networks and host names."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in entries:
            entry = entry.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def allows_ip(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.networks)


# IPv6 prefixes whose last 32 bits are an IPv4 address the packets end up at.
_IPV4_IN_LAST_32 = (
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64, well-known prefix
    ipaddress.ip_network("64:ff9b:1::/48"),  # NAT64, local use
    ipaddress.ip_network("::/96"),  # IPv4-compatible (deprecated)
)


def embedded_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries: mapped, 6to4, Teredo, NAT64, IPv4-compatible.

    ``[2002:a9fe:a9fe::1]`` is a global address that 6to4 relays deliver to
    169.254.169.254, so each form is decoded and checked on its own.
    """
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if any(ip in net for net in _IPV4_IN_LAST_32) and int(ip) & 0xFFFFFFFF:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _forbidden(ip: IPAddress) -> bool:
    """Anything not globally routable (and multicast, and metadata), including embedded IPv4.

    ``is_global`` covers loopback, private, link-local, reserved, the shared
    address space 100.64.0.0/10 (one cloud's metadata service lives there),
    benchmarking and documentation ranges.
    """
    return any(
        a in METADATA_IPS or not a.is_global or a.is_multicast or a.is_unspecified
        for a in (ip, *embedded_ipv4(ip))
    )


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (an IP literal resolves to itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def check_destination(url: str, allow: Allowlist) -> list[IPAddress]:
    """Raise :class:`DestinationDenied` unless ``url`` may receive a delivery.

    Returns the addresses that were checked, so the sender connects to exactly
    those (services/gateways/transport.py pins them); empty when the host name
    itself is allowed.  Resolution failures raise ``OSError`` (transient: DNS
    may come back).
    """
    problem = check_http_url(url)
    if problem:
        raise DestinationDenied(f"destination {url!r} {problem}")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    if host in allow.hosts:
        return []
    if host in METADATA_HOSTS:
        raise DestinationDenied(f"destination host {host!r} is a cloud metadata service")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = resolve(host, port)
    for ip in addresses:
        if _forbidden(ip) and not allow.allows_ip(ip):
            raise DestinationDenied(
                f"destination host {host!r} resolves to {ip}, which is not a globally routable "
                "address; allow it with TOCSIN_DESTINATION_ALLOW"
            )
    return addresses
