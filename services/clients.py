"""The address of the HTTP client, for per-client limits (the login limits of the API and the console)."""

import ipaddress

from flask import current_app, request


def client_address() -> str:
    """The address of the client, for per-client limits.

    nginx names the client in X-Real-IP (and X-Forwarded-For). Those headers count only when the peer is
    one of TRUSTED_PROXIES (default: loopback, where nginx sits under `make stack`; compose sets its
    network): a client that reaches gunicorn directly could otherwise send a new address with every
    request and never be limited. Behind several proxies, X-Forwarded-For is read from the right up to
    the first address that is not a trusted proxy."""
    peer = request.remote_addr or ""
    if not _trusted(peer):
        return peer
    real_ip = _address(request.headers.get("X-Real-IP", ""))
    if real_ip is not None:
        return str(real_ip)
    for hop in reversed(request.headers.get("X-Forwarded-For", "").split(",")):
        address = _address(hop)
        if address is None:
            break
        if not _trusted(str(address)):
            return str(address)
    return peer or "-"


def _address(text: str):
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address


def _trusted(peer: str) -> bool:
    if not peer:
        return True  # no peer address: a unix socket, so a process on this host
    address = _address(peer)
    return address is not None and any(
        address in network for network in current_app.config["TRUSTED_PROXIES"]
    )
