"""The address of the HTTP client, for per-client limits (the login rate limit of the API and console)."""

import ipaddress

from flask import request


def client_address() -> str:
    """The address of the client, for per-client limits.

    nginx passes the real client address in X-Real-IP. The header is taken only from a peer on a
    loopback or private address (nginx in compose, under supervisor or on the host): a client that
    reaches gunicorn directly could otherwise send a new X-Real-IP with every request and never be
    limited."""
    peer = request.remote_addr or ""
    forwarded = request.headers.get("X-Real-IP", "").strip()
    if forwarded and _is_proxy_address(peer):
        return forwarded[:64]
    return peer or "-"


# Loopback and the private ranges (RFC 1918, IPv6 unique local) where nginx and the api meet. Not
# `ipaddress.is_private`, which also counts the documentation ranges and others that can be public.
PROXY_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7")
)


def _is_proxy_address(address: str) -> bool:
    if not address:
        return True  # no peer address: a unix socket, so a process on this host
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    if parsed.version == 6 and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return any(parsed in network for network in PROXY_NETWORKS)
