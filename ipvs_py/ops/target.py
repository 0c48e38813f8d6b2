"""Name a kernel service and destination from the command line.

``VIP:PORT`` (``10.0.0.1:80``, ``[2001:db8::1]:443``) or ``fwmark:N``
names a service, ``RIP:PORT`` a destination.  Lookups read the kernel
over netlink and fail with :class:`TargetError` (one line: what was
asked, what exists) before anything is changed.
"""
import ipaddress

from ..netlink.config import dest_from_kernel, service_from_kernel
from ..service import AF_INET, AF_INET6

PROTOS = {"tcp": 6, "udp": 17, "sctp": 132}
PROTO_NAMES = {6: "TCP", 17: "UDP", 132: "SCTP"}


class TargetError(ValueError):
    """A malformed address or a service/destination the kernel lacks."""


def parse_endpoint(text, what="address"):
    """``"ADDR:PORT"`` or ``"[V6]:PORT"`` -> (af, normalised addr, port)."""
    s = text.strip()
    if s.startswith("["):
        addr, sep, port = s[1:].partition("]:")
    else:
        addr, sep, port = s.rpartition(":")
        if ":" in addr:
            raise TargetError(f"bad {what} {text!r}: write IPv6 as "
                              f"[ADDR]:PORT")
    if not sep or not addr:
        raise TargetError(f"bad {what} {text!r}: expected ADDR:PORT")
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        raise TargetError(f"bad {what} {text!r}: {addr!r} is not a numeric "
                          f"IP address") from None
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise TargetError(f"bad {what} {text!r}: port must be 0..65535")
    return (AF_INET6 if ip.version == 6 else AF_INET), str(ip), int(port)


def service_name(sc):
    """``TCP 10.0.0.1:80`` / ``FWM 7`` for a ServiceConfig."""
    if sc.fwmark:
        return f"FWM {sc.fwmark}" + (" IPv6" if sc.af == AF_INET6 else "")
    return f"{PROTO_NAMES.get(sc.protocol, sc.protocol)} " \
           f"{endpoint_name(sc.af, sc.addr, sc.port)}"


def endpoint_name(af, addr, port):
    return f"[{addr}]:{port}" if af == AF_INET6 else f"{addr}:{port}"


def find_service(conn, spec, proto=None):
    """The kernel service named by ``spec`` (``VIP:PORT`` or ``fwmark:N``)
    as ``(ServiceConfig, raw dict)``.  ``proto`` ("tcp", "udp", "sctp")
    picks one when a VIP:PORT has several."""
    services = [(service_from_kernel(s), s) for s in conn.services(stats=False)]
    if spec.lower().startswith("fwmark:"):
        mark = spec.split(":", 1)[1]
        if not mark.isdigit():
            raise TargetError(f"bad service {spec!r}: fwmark:N with N a "
                              f"number")
        hits = [x for x in services if x[0].fwmark == int(mark)]
    else:
        af, addr, port = parse_endpoint(spec, "service")
        hits = [x for x in services if not x[0].fwmark and x[0].af == af
                and ipaddress.ip_address(x[0].addr) == ipaddress.ip_address(addr)
                and x[0].port == port]
        if proto:
            hits = [x for x in hits if x[0].protocol == PROTOS[proto]]
    if not hits:
        have = ", ".join(sorted(service_name(s) for s, _ in services)) or "none"
        raise TargetError(f"no service {spec}"
                          f"{' (' + proto + ')' if proto else ''} in the "
                          f"kernel (services: {have})")
    if len(hits) > 1:
        names = ", ".join(service_name(s) for s, _ in hits)
        raise TargetError(f"{spec} names {len(hits)} services ({names}): "
                          f"pick one with --proto")
    return hits[0]


def find_dest(conn, sc, spec):
    """The destination ``RIP:PORT`` of service ``sc`` as (DestConfig,
    raw dict with the counters)."""
    af, addr, port = parse_endpoint(spec, "destination")
    dests = [(dest_from_kernel(d, sc.af), d)
             for d in conn.dests(sc.to_netlink(), stats=False)]
    for dc, raw in dests:
        if (dc.af == af and dc.port == port and ipaddress.ip_address(dc.addr)
                == ipaddress.ip_address(addr)):
            return dc, raw
    have = ", ".join(endpoint_name(d.af, d.addr, d.port) for d, _ in dests)
    raise TargetError(f"service {service_name(sc)} has no destination "
                      f"{spec} (destinations: {have or 'none'})")
