"""Outbound webhook requests, which are an attack surface (server-side request forgery).

Rules, checked when an endpoint is saved and again before every POST (DNS answers change):
- never userinfo in the URL (`https://user:pass@host`);
- never link-local, metadata, unspecified, multicast or reserved addresses, in any settings;
- under the production rules, HTTPS only, and no loopback or private addresses unless
  `BILLING_WEBHOOK_ALLOW_PRIVATE_ADDRESSES` (on-premise receivers; still HTTPS);
- `BILLING_WEBHOOK_ALLOW_LOCAL_URLS` (the local and test settings) also accepts plain HTTP and
  loopback/private receivers, such as `http://127.0.0.1:PORT/` on a developer's machine.
The POST goes to the address that was checked (the connection is pinned to it, with the host
name kept for the Host header and TLS), follows no redirect, gives up after the timeout, and
reads at most `BILLING_WEBHOOK_RESPONSE_READ_BYTES` of the answer.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings

from billing_site.errors import BillingError, ErrorCode

# Cloud metadata services (AWS, GCP, Azure, Alibaba, ECS): named, so the refusal says so.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",
        "169.254.170.2",
        "fd00:ec2::254",
        "100.100.100.200",
        "168.63.129.16",
    )
)
# What an attempt keeps of the answer, for the attempt log.
EXCERPT_BYTES = 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(BillingError):
    def __init__(self, message: str):
        super().__init__(message, param="url", code=ErrorCode.URL_INVALID)


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect, and what to call the host."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[IPAddress, ...]


@dataclass(frozen=True)
class Outcome:
    """What one POST came to. `status` is None when no answer arrived (see `error`)."""

    status: int | None
    latency_ms: int
    body: bytes = b""
    truncated: bool = False
    error: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and not self.error


def _allow_local() -> bool:
    return settings.BILLING_WEBHOOK_ALLOW_LOCAL_URLS


def address_refusal(address: IPAddress) -> str | None:
    """Why this address may not receive webhooks, or None if it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_loopback:
        return None if _allow_local() else "a loopback address"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "not a routable unicast address"
    if not address.is_global:
        if _allow_local() or settings.BILLING_WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
            return None
        return "a private address"
    return None


def check_url(url: str, *, resolve: bool = True) -> Target:
    """The URL's target if it may receive webhooks; `UnsafeUrl` naming the rule otherwise.

    A host name that doesn't resolve (yet) is accepted when `resolve` finds nothing: its
    deliveries fail, visibly, until it does. Every address it resolves to must be allowed.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"Invalid URL: {exc}.") from None
    scheme = parts.scheme.lower()
    allowed_schemes = ("https", "http") if _allow_local() else ("https",)
    if scheme not in allowed_schemes:
        raise UnsafeUrl(
            "Invalid URL: webhook endpoints must use HTTPS (https://...)."
            if scheme == "http"
            else "Invalid URL: use an https:// URL."
        )
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl(
            "Invalid URL: credentials in the URL (user:password@) aren't allowed; verify "
            "deliveries with the Stripe-Signature header instead."
        )
    host = parts.hostname
    if not host:
        raise UnsafeUrl("Invalid URL: it has no host name.")
    port = port or (443 if scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    addresses = _addresses(host, port) if resolve else ()
    for address in addresses:
        reason = address_refusal(address)
        if reason:
            raise UnsafeUrl(
                f"Invalid URL: {host} resolves to {address}, {reason}; webhooks can't be sent "
                "there."
            )
    return Target(url, scheme, host, port, path, addresses)


def _addresses(host: str, port: int) -> tuple[IPAddress, ...]:
    try:
        return (ipaddress.ip_address(host),)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return ()
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if address not in found:
            found.append(address)
    return tuple(found)


def post(url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    """POST `body` to `url` under the rules above. Never raises for the receiver's faults: the
    outcome says what happened. Does no database work (callers run it in threads)."""
    started = time.monotonic()

    def failed(error: str, status: int | None = None) -> Outcome:
        return Outcome(status, _elapsed_ms(started), error=error[:500])

    try:
        target = check_url(url)
    except UnsafeUrl as exc:
        return failed(exc.message)
    if not target.addresses:
        return failed(f"Could not resolve {target.host}.")
    timeout = settings.BILLING_WEBHOOK_TIMEOUT_SECONDS
    pool = _pool(target, target.addresses[0], timeout)
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": _host_header(target)},
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
    except urllib3.exceptions.HTTPError as exc:
        pool.close()
        return failed(_describe(exc, timeout))
    try:
        read, truncated, error = _read_capped(response, started, timeout)
    finally:
        # Closed, not drained: the rest of an oversized answer is never read.
        response.close()
        pool.close()
    status = response.status
    if not error and 300 <= status < 400:
        location = response.headers.get("Location", "")
        error = f"Redirects are not followed (HTTP {status} to {location or 'nowhere'})."
    elif not error and not 200 <= status < 300:
        error = f"HTTP {status}: the receiver did not answer 2xx."
    return Outcome(status, _elapsed_ms(started), read[:EXCERPT_BYTES], truncated, error[:500])


def _pool(target: Target, address: IPAddress, timeout: float) -> urllib3.HTTPConnectionPool:
    """A one-connection pool to the checked address, so the host is not resolved again."""
    options = {
        "host": str(address),
        "port": target.port,
        "timeout": urllib3.Timeout(connect=timeout, read=timeout),
        "retries": False,
        "maxsize": 1,
    }
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            **options,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
        )
    return urllib3.HTTPConnectionPool(**options)


def _host_header(target: Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    default = 443 if target.scheme == "https" else 80
    return host if target.port == default else f"{host}:{target.port}"


def _read_capped(response, started: float, timeout: float) -> tuple[bytes, bool, str]:
    """At most the read cap of the answer, and not past the timeout (counted from the start,
    so a receiver that trickles bytes can't hold the worker either)."""
    cap = settings.BILLING_WEBHOOK_RESPONSE_READ_BYTES
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.stream(8192):
            chunks.append(chunk)
            size += len(chunk)
            if size >= cap:
                return b"".join(chunks)[:cap], True, ""
            if time.monotonic() - started > timeout:
                return b"".join(chunks), True, f"Timed out after {timeout:g} s reading the answer."
    except urllib3.exceptions.HTTPError as exc:
        return b"".join(chunks), False, _describe(exc, timeout)
    return b"".join(chunks), False, ""


def _describe(exc: Exception, timeout: float) -> str:
    # NewConnectionError is also a ConnectTimeoutError in urllib3 2: checked first.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return "Could not connect: the connection was refused or unreachable."
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return f"Timed out after {timeout:g} s."
    if isinstance(exc, urllib3.exceptions.SSLError):
        return f"TLS error: {exc}"
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return f"The connection broke: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
