"""Where a webhook may point, how its secret is kept, and how a delivery is signed.

- URLs: http or https with a host. Refused with `422 webhook_url_refused` naming `url`, at registration and again
  before every attempt (a name may come to resolve elsewhere): link-local addresses (169.254.0.0/16, fe80::/10) and
  the cloud metadata services (169.254.169.254, fd00:ec2::254, Alibaba Cloud's 100.100.100.200, the names
  metadata.google.internal, metadata.tencentyun.com ...); multicast, unspecified and reserved addresses; and, unless
  WEBHOOK_ALLOW_PRIVATE is set, loopback (127.0.0.0/8, ::1) and private ranges (10/8, 172.16/12, 192.168/16,
  100.64/10, fc00::/7). An agency whose platforms live on its own network sets WEBHOOK_ALLOW_PRIVATE=true.
- Secrets: the receiver's secret is needed to sign, so it is kept, encrypted (Fernet: AES-128-CBC + HMAC-SHA256)
  with WEBHOOK_KEY, or a key derived from SECRET_KEY when that is unset. It is never shown again after the
  registration. Changing the key makes the stored secrets unreadable: register the webhooks again.
- Signature: `X-Signature: sha256=<hex HMAC-SHA256 of "<X-Timestamp>.<body>" with the secret>`; X-Timestamp is the
  attempt's Unix time in seconds, so a receiver can refuse old replays; the body is the same bytes at every attempt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import socket
from typing import Any
from urllib.parse import urlsplit

import anyio
from cryptography.fernet import Fernet, InvalidToken

from backend.clock import in_agency_zone
from backend.errors import ErrorCode, ValidationFailed
from backend.integration.models import EventOutbox
from backend.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.tencentyun.com",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.com",
    }
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "169.254.0.23")
)
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: private in practice
RESOLVE_TIMEOUT = 3.0


def address_refusal(address: IPAddress, allow_private: bool) -> str | None:
    """Why a webhook may not be sent to `address`, or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata address"
    if address.is_link_local:
        return f"{address} is link-local (169.254.0.0/16, fe80::/10)"
    if address.is_multicast or address.is_unspecified:
        return f"{address} is not a unicast address"
    if address.is_loopback or address.is_private or (address.version == 4 and address in SHARED_ADDRESS_SPACE):
        return None if allow_private else f"{address} is a loopback or private address (allowed only with WEBHOOK_ALLOW_PRIVATE=true)"
    if address.is_reserved:
        return f"{address} is a reserved address"
    return None


def url_refusal(url: str, allow_private: bool) -> str | None:
    """Why `url` cannot be a receiver, from the URL alone (no name is resolved); None when it may be."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a URL: {exc}"
    host = (parts.hostname or "").rstrip(".").lower()
    problems = (
        (parts.scheme not in ("http", "https"), "must be an http or https URL"),
        (not host, "must name a host"),
        (bool(parts.username or parts.password), "must not carry credentials; the signature authenticates the sender"),
        (port == 0, "port 0 is not a port a receiver listens on"),
        (host in METADATA_HOSTS or host.endswith(".metadata.google.internal"), f"{host} is a cloud metadata host"),
    )
    for problem, why in problems:
        if problem:
            return why
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: checked on what it resolves to
    return address_refusal(address, allow_private)


async def resolved_refusal(url: str, allow_private: bool) -> str | None:
    """Why `url` cannot be sent to now, including what its host resolves to; None when it may be."""
    refusal = url_refusal(url, allow_private)
    if refusal is not None:
        return refusal
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        return None  # a literal address, checked above
    except ValueError:
        pass
    try:
        with anyio.fail_after(RESOLVE_TIMEOUT):
            infos = await anyio.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
    except (OSError, TimeoutError):
        return None  # cannot be resolved (yet): the attempt will fail and be retried, and checked again then
    for info in infos:
        refusal = address_refusal(ipaddress.ip_address(str(info[4][0]).split("%")[0]), allow_private)
        if refusal is not None:
            return f"{host} resolves to {refusal}"
    return None


async def check_url(url: str, settings: Settings) -> str:
    refusal = await resolved_refusal(url, settings.webhook_allow_private)
    if refusal is not None:
        raise ValidationFailed(f"url: {refusal}", code=ErrorCode.WEBHOOK_URL_REFUSED, field="url")
    return url


class SecretBox:
    """Encrypts receivers' secrets at rest."""

    def __init__(self, settings: Settings) -> None:
        material = settings.webhook_key or f"webhook-secrets:{settings.secret_key}"
        self._fernet = Fernet(base64.urlsafe_b64encode(hashlib.sha256(material.encode()).digest()))

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, token: str) -> str | None:
        """The secret, or None when it was sealed with another key."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            return None


def event_body(event: EventOutbox) -> bytes:
    """What every attempt of a delivery of `event` sends: `{id, event, occurred_at, data}` as UTF-8 JSON."""
    payload: dict[str, Any] = {
        "id": str(event.id),
        "event": event.event,
        "occurred_at": in_agency_zone(event.occurred_at).isoformat(),
        "data": event.data,
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"
