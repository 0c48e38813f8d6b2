"""ICMP errors that belong to a connection (include/ipvs_icmp.h).

An ICMP error quotes the IP header and first 8 bytes of the packet that
caused it.  :class:`IcmpError` describes that part of an ICMP or ICMPv6
packet for ``Netns.packet("icmp", ...)`` and for PacketBatch rows; the
outer addresses are the packet's own ``saddr``/``daddr``.  The model has
no bytes, so what the bytes would tell the kernel (a fragment, a header
cut short, a bad checksum) is said with ``truncated``, ``fragment`` and
``bad_checksum``.

``direction="in"`` is ip_vs_in_icmp(): an error from the client side
about a reply the client got, so ``inner`` is (proto, VIP, vport, client,
cport).  ``direction="out"`` is ip_vs_out_icmp(): an error travelling
towards the client about a request as the director forwarded it, so
``inner`` is (proto, client, cport, real server, rport).  An error about
an IPIP packet the director tunnelled to a real server has ``inner``
(4, director, 0, real server, 0) and ``tunneled`` (proto, client, cport,
VIP, vport), the request inside.
"""
import dataclasses
from typing import Optional, Tuple

import numpy as np

from ._core import conntab as _conntab
from .packets import (ICMP_DTYPE, ICMP_PROTOS, parse_addr, parse_addr_pair,
                      parse_proto)

__all__ = ["IcmpError", "WHY", "TRUNCATED", "FRAGMENT", "icmp_packet",
           "describe"]

#: ``truncated=`` values -> include/ipvs_icmp.h IPVS_ICMP_F_* bits
TRUNCATED = {None: 0, "icmp": 0x01, "inner_ip": 0x02, "inner_ports": 0x04}
#: ``fragment=`` values: the ICMP packet itself, or the quoted packet
#: (a nonzero fragment offset in the inner header)
FRAGMENT = {None: 0, "outer": 0x08, "inner": 0x10}
_BAD_CSUM, _DF, _NO_TUNNELED = 0x20, 0x40, 0x80

#: enum ipvs_icmp_why -> what the kernel did, in words
WHY = {
    1: "not an ICMP error type: not related, passes",
    2: "IPv4 fragment: held by ip_vs_gather_frags() for reassembly",
    3: "ICMP header cut short: dropped",
    4: "ICMPv6 error behind a fragment header: dropped",
    5: "inner IP header missing: ignored, passes",
    6: "error about a non-first fragment of an IPIP packet: passes",
    7: "non-first fragment of an inner UDP packet (maybe a tunnel): passes",
    8: "inner protocol is not one IPVS balances: passes",
    9: "inner IPv6 packet is a non-first fragment: passes",
    10: "no connection for the inner header: passes",
    11: "checksum failed: dropped",
    12: "NAT: sent to the real server with its address written in",
    13: "DR/TUN: sent to the real server as it is",
    14: "NAT reply side: translated to come from the VIP",
    15: "reply side of a DR/TUN conn: counted, passed on unchanged",
    16: "schedule_icmp: no service or no real server to schedule: passes",
    17: "schedule_icmp: dropped (no inner ports, drop_packet or no dest)",
    18: "IPIP packet not to one of our IPIP real servers: passes",
    19: "IPIP: the director sends the client an ICMP error of its own",
    20: "IPIP frag-needed about a request without DF: consumed",
}


@dataclasses.dataclass(frozen=True)
class IcmpError:
    """The ICMP part of one packet.

    ``type``/``code``: ICMP (IPv4: 3 unreachable, 4 source quench, 11 time
    exceeded are errors IPVS handles) or ICMPv6 (types below 128 are
    errors: 1 unreachable, 2 packet too big, 3 time exceeded, 4 parameter
    problem).  ``inner``: the quoted (proto, saddr, sport, daddr, dport),
    proto a name or number (IPVS handles tcp/udp/sctp; others pass).
    ``truncated``: None, "icmp", "inner_ip" or "inner_ports";
    ``fragment``: None, "outer" or "inner"; ``bad_checksum``: the ICMP
    checksum is wrong.  IPIP (inner proto 4): ``tunneled`` is the
    request inside, (proto, client, cport, VIP, vport), None when cut
    off; ``df`` its Don't Fragment bit."""
    type: int
    code: int = 0
    inner: Optional[Tuple] = None
    truncated: Optional[str] = None
    fragment: Optional[str] = None
    bad_checksum: bool = False
    tunneled: Optional[Tuple] = None
    df: bool = True

    def record(self, af):
        """This error as one ICMP_DTYPE record for a packet of family
        ``af`` (2 or 10); ValueError names what is wrong."""
        rec = np.zeros((), ICMP_DTYPE)
        for name, lo, hi in (("type", 0, 255), ("code", 0, 255)):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
                raise ValueError(f"icmp {name} must be {lo}..{hi}, got {v!r}")
            rec[name] = v
        if self.truncated not in TRUNCATED:
            raise ValueError(f"truncated must be one of "
                             f"{', '.join(map(repr, TRUNCATED))}, "
                             f"got {self.truncated!r}")
        if self.fragment not in FRAGMENT:
            raise ValueError(f"fragment must be one of "
                             f"{', '.join(map(repr, FRAGMENT))}, "
                             f"got {self.fragment!r}")
        flags = TRUNCATED[self.truncated] | FRAGMENT[self.fragment]
        if self.bad_checksum:
            flags |= _BAD_CSUM
        if self.df:
            flags |= _DF
        if self.tunneled is None:
            flags |= _NO_TUNNELED
        rec["flags"] = flags
        if self.inner is None:
            if self.truncated not in ("icmp", "inner_ip"):
                raise ValueError("inner (proto, saddr, sport, daddr, dport) "
                                 "is required unless truncated='icmp' or "
                                 "'inner_ip'")
            return rec
        _put_tuple(rec, "", "inner", self.inner, af)
        if self.tunneled is not None:
            if rec["proto"] != 4:
                raise ValueError("tunneled goes with an IPIP inner packet "
                                 "(inner protocol 4)")
            _put_tuple(rec, "t", "tunneled", self.tunneled, af)
        return rec


def _put_tuple(rec, prefix, what, tup, af):
    """(proto, saddr, sport, daddr, dport) into ``rec``'s fields named
    ``prefix`` + proto/saddr/...; ValueError naming ``what``."""
    try:
        proto, saddr, sport, daddr, dport = tup
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be (proto, saddr, sport, daddr, "
                         f"dport), got {tup!r}") from None
    rec[prefix + "proto"] = _inner_proto(proto)
    for name, addr in (("saddr", saddr), ("daddr", daddr)):
        iaf, raw = parse_addr(addr)
        if iaf != af:
            raise ValueError(f"{what} {name} {addr} is not of the "
                             f"packet's address family")
        rec[prefix + name] = np.frombuffer(raw, np.uint8)
    for name, port in (("sport", sport), ("dport", dport)):
        if not isinstance(port, (int, np.integer)) or \
                not 0 <= port <= 65535:
            raise ValueError(f"{what} {name} must be 0..65535, "
                             f"got {port!r}")
        rec[prefix + name] = port


def _inner_proto(proto):
    if isinstance(proto, (int, np.integer)) and 0 <= proto <= 255:
        return int(proto)
    try:
        return parse_proto(proto)
    except ValueError:
        raise ValueError(f"inner protocol {proto!r}: a name of tcp, udp, "
                         f"sctp or a number 0..255") from None


def icmp_proto(proto, af):
    """"icmp"/"icmpv6"/1/58 -> the number, checked against family ``af``;
    None when ``proto`` names no ICMP protocol."""
    num = ICMP_PROTOS.get(proto.lower(), None) if isinstance(proto, str) \
        else (int(proto) if proto in (1, 58) else None)
    if num is None:
        return None
    if num != (58 if af == 10 else 1):
        raise ValueError(f"protocol {proto!r} does not match the "
                         f"IPv{6 if af == 10 else 4} addresses")
    return num


def icmp_packet(path, proto, saddr, daddr, icmp, fwmark, direction, length):
    """One ICMP packet through ``path`` (a ConnPath) now: (action, dest
    id, conn id or -1, reason text).  ValueError for bad fields."""
    if not isinstance(icmp, IcmpError):
        raise ValueError(f"an ICMP packet needs icmp=IcmpError(...), "
                         f"got {icmp!r}")
    if direction not in ("in", "out"):
        raise ValueError(f"direction must be 'in' or 'out', got {direction!r}")
    saf, sraw, draw = parse_addr_pair(saddr, daddr)
    num = icmp_proto(proto, saf)
    if num is None:
        raise ValueError(f"icmp= goes with protocol 'icmp' or 'icmpv6', "
                         f"not {proto!r}")
    rec = icmp.record(saf)
    path.sync_config()
    try:
        act, did, cid, why = _conntab.icmp_packet(
            path.e, saf, num, sraw, draw, rec.reshape(1), int(fwmark),
            int(length), direction == "out", path.net.jiffies)
    finally:
        path.sync_back()
    return act, did, cid, describe(path, why, cid, did)


def describe(path, why, cid, did):
    """The reason of an ICMP verdict in words, naming the conn (client ->
    VIP via the real server) and the dest."""
    text = WHY.get(why, f"reason {why}")
    info = None if cid < 0 else path.conn_info(cid)
    if info is None:
        return text
    af, proto, ca, cp, va, vp, da, dp, flags = info[:9]
    fmt = "[{}]:{}" if af == 10 else "{}:{}"
    name = {6: "TCP", 17: "UDP", 132: "SCTP"}.get(proto, str(proto))
    fwd = _FWD.get(flags & 7, "?")
    return (f"{text}; conn {cid} {name} {fmt.format(ca, cp)} -> "
            f"{fmt.format(va, vp)} ({fwd} to {fmt.format(da, dp)})")


_FWD = {0: "Masq", 1: "Local", 2: "Tunnel", 3: "Route", 4: "Bypass"}
