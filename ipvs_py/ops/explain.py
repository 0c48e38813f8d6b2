"""``ipvs-py explain``: which real server one packet gets, and why.

The packet goes through the model's own packet path (the C engine of
``_core/include/ipvs_conn.h``) with the decision trace of
``include/ipvs_trace.h`` switched on for that one call: every decision
point -- existing conn, conn reuse, service lookup, persistence template,
scheduler inputs and answer, verdict -- appends a step.  This module only
names and formats those steps; the decision itself is the one
``Netns.packet()`` would make (the packet *is* processed: conns and
scheduler positions change exactly as with ``packet()``).

Python schedulers (twos, lblc, lblcr) note their own steps through
``PacketInfo.trace`` (:func:`ipvs_py.schedulers.base.trace_note`).  Which
service lookups the service-type counters let run is reported by
``Netns.find_service(trace=...)``, the control plane's ip_vs_service_find.

:data:`EXPLAIN_SCHEMA` (JSON Schema, draft 2020-12) describes
:meth:`Explanation.as_dict`; docs/operators.md shows it in use.
"""
import dataclasses
import ipaddress

from ..packets import flags_text, parse_proto, parse_tcp_flags
from ..service import AF_INET, AF_INET6
from .explain_schema import EXPLAIN_SCHEMA, FORMAT  # noqa: F401 (API)
from .explain_steps import StepNamer

__all__ = ["explain", "Explanation", "ExplainError", "EXPLAIN_SCHEMA"]


class ExplainError(ValueError):
    """Bad packet fields for an explain (one line: what was wrong)."""


@dataclasses.dataclass
class Explanation:
    """The trace of one packet, named: :meth:`as_dict` (the JSON document,
    :data:`EXPLAIN_SCHEMA`) and :meth:`text` (for people)."""
    doc: dict

    @property
    def dest(self):
        """The real server as (addr, port), or None: what packet() gives."""
        d = self.doc["verdict"]["dest"]
        return None if d is None else (d["address"], d["port"])

    @property
    def action(self):
        return self.doc["verdict"]["action"]

    def as_dict(self):
        return self.doc

    def text(self):
        return "\n".join(self.doc["steps"]) + "\n"


def _check_packet(proto, saddr, sport, daddr, dport, tcp_flags, fwmark):
    try:
        p = parse_proto(proto)
    except ValueError as exc:
        raise ExplainError(f"bad protocol {proto!r}: {exc}") from None
    if p not in (6, 17, 132):
        raise ExplainError(f"bad protocol {proto!r}: explain takes tcp, udp "
                           f"or sctp")
    addrs = []
    for what, a in (("client address", saddr), ("VIP", daddr)):
        try:
            addrs.append(ipaddress.ip_address(a))
        except ValueError:
            raise ExplainError(f"bad {what} {a!r}: not an IP address") \
                from None
    if addrs[0].version != addrs[1].version:
        raise ExplainError(f"client {saddr} and VIP {daddr} are of "
                           f"different address families")
    for what, v in (("client port", sport), ("VIP port", dport)):
        if isinstance(v, bool) or not isinstance(v, int) \
                or not 1 <= v <= 65535:
            raise ExplainError(f"bad {what} {v!r}: must be 1..65535")
    if isinstance(fwmark, bool) or not isinstance(fwmark, int) \
            or not 0 <= fwmark <= 0xFFFFFFFF:
        raise ExplainError(f"bad fwmark {fwmark!r}: must be 0..4294967295")
    try:
        flags = parse_tcp_flags(tcp_flags)
    except ValueError as exc:
        raise ExplainError(f"bad flags {tcp_flags!r}: {exc}") from None
    return p, addrs[0], addrs[1], flags


def explain(net, proto, saddr, sport, daddr, dport, tcp_flags="S",
            fwmark=0):
    """Send one client->VIP packet through ``net`` (an ``ipvs_py.Netns``)
    with the decision trace on; returns an :class:`Explanation`.  The
    packet is processed as ``net.packet()`` would (same verdict, same state
    changes).  Raises :class:`ExplainError` for bad packet fields."""
    p, sa, da, flags = _check_packet(proto, saddr, sport, daddr, dport,
                                     tcp_flags, fwmark)
    af = AF_INET6 if sa.version == 6 else AF_INET
    path = net._path()
    lookups = []
    net.find_service(af, p, da, dport, fwmark, trace=lookups)
    path.sync_config()
    py_trace = []
    path.py_trace = py_trace
    try:
        act, did, cid, steps, lost = path.e.packet_traced(
            af, p, sa.packed.ljust(16, b"\0"), sport,
            da.packed.ljust(16, b"\0"), dport, flags, fwmark, 0,
            net.jiffies)
    finally:
        path.py_trace = None
        path.sync_back()
    packet = {"protocol": {6: "tcp", 17: "udp", 132: "sctp"}[p],
              "client": {"address": str(sa), "port": sport},
              "vip": {"address": str(da), "port": dport},
              "fwmark": fwmark, "flags": flags_text(flags) if p == 6
              else str(tcp_flags) if p == 132 else "", "time": net.now}
    return Explanation(StepNamer(net, path, p, packet, lookups, steps, lost,
                              py_trace).document())


