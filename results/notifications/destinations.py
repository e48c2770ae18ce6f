"""Safe destinations: a tenant chooses the URLs its channels post to, so without a check
a tenant could make our workers reach our own network (the database, Redis, a cloud
metadata service). Every request is checked where it is made:

- the host's addresses are resolved once, each one must be public (not loopback,
  private, link-local, shared, multicast, reserved, unspecified or a metadata address),
  and the connection goes to a checked address (so a second DNS answer cannot swap in
  a private one between the check and the connect: DNS rebinding);
- redirects are followed by hand, each target checked the same way;
- hosts in ``FLEETWATCH_NOTIFY_ALLOWED_HOSTS`` (an operator's own receivers) pass.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import urllib3
from django.conf import settings

MAX_REDIRECTS = 3
REDIRECTS = {301, 302, 303, 307, 308}
# Cloud metadata services that are not already link-local (169.254.169.254 is).
METADATA_ADDRESSES = {ipaddress.ip_address(a) for a in ("100.100.100.200", "168.63.129.16", "fd00:ec2::254")}


class UnsafeDestination(ValueError):
    """A URL a channel may not reach; the message says why."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: str


def _refusal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for kind in ("loopback", "link_local", "private", "multicast", "reserved", "unspecified"):
        if getattr(address, f"is_{kind}"):
            return f"a {kind.replace('_', '-')} address"
    if not address.is_global:  # e.g. 100.64.0.0/10 (carrier-grade NAT)
        return "not a public address"
    return None


def is_allow_listed(host: str) -> bool:
    return host.lower().strip("[]") in {h.lower().strip("[]") for h in settings.FLEETWATCH_NOTIFY_ALLOWED_HOSTS}


def resolve(host: str, port: int) -> list[str]:
    """The host's addresses, each one checked; raises UnsafeDestination naming the reason."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
        addresses = [str(literal)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise UnsafeDestination(f"{host} does not resolve ({exc.strerror})") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if is_allow_listed(host):
        return addresses
    for address in addresses:
        reason = _refusal(ipaddress.ip_address(address.split("%")[0]))
        if reason:
            raise UnsafeDestination(f"{host} resolves to {address}, {reason}; refused")
    return addresses


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    addresses: list[str]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == (443 if self.scheme == "https" else 80) else f"{host}:{self.port}"


def check_url(url: str) -> Target:
    """Where an http(s) URL leads, with its checked addresses; raises UnsafeDestination."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeDestination("expected an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise UnsafeDestination("credentials in the URL are not accepted; use the channel's secret")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeDestination("the port is not a number between 0 and 65535") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port, path, resolve(parts.hostname, port))


def _post_to_address(target: Target, address: str, body: bytes, headers: dict[str, str], timeout: float) -> urllib3.BaseHTTPResponse:
    """Connect to the checked address itself; the URL's host goes in Host and, for TLS, in
    SNI and the certificate check."""
    if target.scheme == "https":
        pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
            address, target.port, maxsize=1, retries=False, timeout=urllib3.Timeout(total=timeout),
            server_hostname=target.host, assert_hostname=target.host,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, target.port, maxsize=1, retries=False, timeout=urllib3.Timeout(total=timeout))
    with pool:
        return pool.urlopen("POST", target.path, body=body, headers={**headers, "Host": target.host_header}, redirect=False,
                            assert_same_host=False, preload_content=True)


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float | None = None) -> Reply:
    """POST ``body`` to ``url``, following redirects (each target checked); the reply's
    status and the start of its body. Raises UnsafeDestination, ConnectionError or urllib3's errors."""
    timeout = timeout or settings.FLEETWATCH_NOTIFY_TIMEOUT_SECONDS
    for _ in range(MAX_REDIRECTS + 1):
        target = check_url(url)
        error: Exception | None = None
        for address in target.addresses:  # the first that connects
            try:
                response = _post_to_address(target, address, body, headers, timeout)
                break
            except urllib3.exceptions.NewConnectionError as exc:
                error = exc
        else:
            raise ConnectionError(f"could not connect to {url}: {error}")
        location = response.headers.get("Location")
        if response.status in REDIRECTS and location:
            url = urljoin(url, location)
            continue
        return Reply(response.status, response.data[:500].decode("utf-8", "replace"))
    raise UnsafeDestination(f"more than {MAX_REDIRECTS} redirects")
