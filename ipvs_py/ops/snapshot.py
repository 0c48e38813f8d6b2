"""The whole IPVS state of a namespace as structured data (JSON).

:func:`kernel_snapshot` reads a live kernel: services and destinations
with counters, stats and rates over netlink, timeouts, info, sync daemons,
and with ``conns=True`` the connection table, parsed from that namespace's
/proc/net/ip_vs_conn (IPVS netlink has no connection dump).
:func:`model_snapshot` gives the same document for an ``ipvs_py.Netns``,
so a kernel and a model compare with ``==`` (after :func:`comparable`).

The format is :data:`SNAPSHOT_SCHEMA` (JSON Schema, draft 2020-12),
documented in docs/operators.md and checked by the tests.
"""
import datetime
import ipaddress

from .. import text
from ..dest import FWD_NAMES, FWD_TUNNEL
from ..netlink.config import dest_from_kernel, service_from_kernel
from ..service import AF_INET6, F_ONEPACKET, F_PERSISTENT
from ..stats import COUNTERS, RATES
from .target import PROTO_NAMES, service_name

FORMAT = 1
_FWD = {k: v.lower() for k, v in FWD_NAMES.items()}
_TUN = ("ipip", "gue", "gre")
_TUN_FLAGS = ("nocsum", "csum", "remcsum")

_STATS = {"type": "object", "additionalProperties": False,
          "required": list(COUNTERS + RATES),
          "properties": {k: {"type": "integer", "minimum": 0}
                         for k in COUNTERS + RATES}}
_ADDR = {"type": "string"}
_PORT = {"type": "integer", "minimum": 0, "maximum": 65535}
_ENDPOINT = {"type": "object", "additionalProperties": False,
             "required": ["address", "port"],
             "properties": {"address": _ADDR, "port": _PORT}}
_INT = {"type": "integer", "minimum": 0}

SNAPSHOT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "ipvs-py kernel snapshot",
    "type": "object",
    "additionalProperties": False,
    "required": ["format", "source", "netns", "taken_at", "info",
                 "timeouts", "daemons", "services"],
    "properties": {
        "format": {"const": FORMAT},
        "source": {"enum": ["kernel", "model"]},
        "netns": {"type": ["string", "null"]},
        "taken_at": {"type": "string"},
        "info": {"type": "object", "additionalProperties": False,
                 "required": ["version", "conn_tab_size"],
                 "properties": {"version": {"type": "string"},
                                "conn_tab_size": _INT}},
        "timeouts": {"type": "object", "additionalProperties": False,
                     "required": ["tcp", "tcpfin", "udp"],
                     "properties": {"tcp": _INT, "tcpfin": _INT, "udp": _INT}},
        "daemons": {"type": "array", "items": {"type": "object"}},
        "services": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["name", "af", "protocol", "address", "port",
                         "fwmark", "scheduler", "flags", "sched_flags",
                         "persistent", "one_packet", "netmask", "pe_name",
                         "stats", "destinations"],
            "properties": {
                "name": {"type": "string"},
                "af": {"enum": ["inet", "inet6"]},
                "protocol": {"enum": ["tcp", "udp", "sctp", None]},
                "address": {"type": ["string", "null"]},
                "port": {"type": ["integer", "null"]},
                "fwmark": {"type": ["integer", "null"]},
                "scheduler": {"type": "string"},
                "flags": _INT,
                "sched_flags": {"type": "array", "items": {"type": "string"}},
                "persistent": {"type": ["integer", "null"]},
                "one_packet": {"type": "boolean"},
                "netmask": {"type": "string"},
                "pe_name": {"type": ["string", "null"]},
                "stats": _STATS,
                "destinations": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False,
                    "required": ["address", "port", "af", "forward",
                                 "weight", "u_thresh", "l_thresh",
                                 "active_conns", "inactive_conns",
                                 "persistent_conns", "tunnel", "stats"],
                    "properties": {
                        "address": _ADDR, "port": _PORT,
                        "af": {"enum": ["inet", "inet6"]},
                        "forward": {"enum": sorted(_FWD.values())},
                        "weight": _INT, "u_thresh": _INT, "l_thresh": _INT,
                        "active_conns": _INT, "inactive_conns": _INT,
                        "persistent_conns": _INT,
                        "tunnel": {"oneOf": [{"type": "null"}, {
                            "type": "object", "additionalProperties": False,
                            "required": ["type", "port", "flags"],
                            "properties": {"type": {"enum": list(_TUN)},
                                           "port": _PORT,
                                           "flags": {"enum": list(_TUN_FLAGS)}}}]},
                        "stats": _STATS}}}}}},
        "connections": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["protocol", "client", "virtual", "destination",
                         "state", "expires", "template", "pe_name",
                         "pe_data"],
            "properties": {
                "protocol": {"type": "string"},
                "client": _ENDPOINT, "virtual": _ENDPOINT,
                "destination": _ENDPOINT,
                "state": {"type": "string"},
                "expires": _INT,
                "template": {"type": "boolean"},
                "pe_name": {"type": ["string", "null"]},
                "pe_data": {"type": ["string", "null"]}}}},
    },
}


def _af(af):
    return "inet6" if af == AF_INET6 else "inet"


def _stats(src):
    src = src or {}
    return {k: int(src.get(k, 0)) for k in COUNTERS + RATES}


def _service(sc, stats, dests):
    fw = bool(sc.fwmark)
    if sc.af == AF_INET6:
        mask = str(sc.netmask)
    else:
        mask = str(ipaddress.IPv4Address(sc.netmask & 0xFFFFFFFF))
    return {
        "name": service_name(sc),
        "af": _af(sc.af),
        "protocol": None if fw else
        PROTO_NAMES.get(sc.protocol, str(sc.protocol)).lower(),
        "address": None if fw else str(ipaddress.ip_address(sc.addr)),
        "port": None if fw else sc.port,
        "fwmark": sc.fwmark if fw else None,
        "scheduler": sc.sched_name,
        "flags": sc.flags,
        "sched_flags": [f for f in text._sched_flags(sc)   # noqa: SLF001
                        .split(",") if f],
        "persistent": sc.timeout if sc.flags & F_PERSISTENT else None,
        "one_packet": bool(sc.flags & F_ONEPACKET),
        "netmask": mask,
        "pe_name": sc.pe_name or None,
        "stats": _stats(stats),
        "destinations": sorted(dests, key=lambda d: (
            d["af"], ipaddress.ip_address(d["address"]).packed, d["port"])),
    }


def _dest(dc, counts, stats):
    tunnel = None
    if dc.fwd_method == FWD_TUNNEL:
        tunnel = {"type": _TUN[dc.tun_type], "port": dc.tun_port,
                  "flags": _TUN_FLAGS[dc.tun_flags]}
    active, inactive, persist = counts
    return {"address": str(ipaddress.ip_address(dc.addr)), "port": dc.port,
            "af": _af(dc.af), "forward": _FWD[dc.fwd_method],
            "weight": dc.weight, "u_thresh": dc.u_thresh,
            "l_thresh": dc.l_thresh, "active_conns": active,
            "inactive_conns": inactive, "persistent_conns": persist,
            "tunnel": tunnel, "stats": _stats(stats)}


def _service_sort_key(s):
    # fwmark services after address ones, like ipvsadm's listing
    return (s["fwmark"] is not None, s["fwmark"] or 0, s["protocol"] or "",
            s["af"], ipaddress.ip_address(s["address"]).packed
            if s["address"] else b"", s["port"] or 0)


def _document(source, netns, info, timeouts, daemons, services):
    return {"format": FORMAT, "source": source,
            "netns": None if netns is None else str(netns),
            "taken_at": datetime.datetime.now(datetime.timezone.utc)
            .isoformat(timespec="seconds"),
            "info": info, "timeouts": timeouts, "daemons": daemons,
            "services": sorted(services, key=_service_sort_key)}


def kernel_snapshot(conn, netns=None, conns=False, conn_text=None):
    """The state of the kernel ``conn`` talks to (an IPVSConnection).

    ``conns``: add "connections", parsed from ``conn_text`` if given, else
    read from /proc/net/ip_vs_conn of ``netns``."""
    services = []
    for s in conn.services(stats=True):
        sc = service_from_kernel(s)
        dests = []
        for d in conn.dests(sc.to_netlink(), stats=True):
            dests.append(_dest(dest_from_kernel(d, sc.af),
                               (d.get("activeconns", 0),
                                d.get("inactconns", 0),
                                d.get("persistconns", 0)),
                               d.get("stats64") or d.get("stats")))
        services.append(_service(sc, s.get("stats64") or s.get("stats"),
                                 dests))
    info = conn.info()
    doc = _document("kernel", netns,
                    {"version": info["version"],
                     "conn_tab_size": info["conn_tab_size"]},
                    conn.timeouts(), conn.daemons(), services)
    if conns:
        if conn_text is None:
            from .nsfiles import read_in_netns
            conn_text = read_in_netns(netns, ["/proc/net/ip_vs_conn"])[
                "/proc/net/ip_vs_conn"] or ""
        doc["connections"] = parse_ip_vs_conn(conn_text)
    return doc


def model_snapshot(net, netns=None):
    """The same document for an ``ipvs_py.Netns`` (the model)."""
    from ..netlink.config import config_of_model
    services = []
    cfg = config_of_model(net)
    for svc in net.services(sort=False):
        sc, dcs = cfg[_model_key(svc)]
        dests = []
        for d in svc.dests:
            dc = dcs[(d.af, d.addr_bytes, d.port)]
            dests.append(_dest(dc, (d.activeconns, d.inactconns,
                                    d.persistconns), d.stats.shown()))
        services.append(_service(sc, svc.stats.shown(), dests))
    t = net.timeouts
    return _document("model", netns,
                     {"version": text.IP_VS_VERSION,
                      "conn_tab_size": net.conn_tab_size},
                     {"tcp": t["tcp"], "tcpfin": t["tcp_fin"], "udp": t["udp"]},
                     [], services)


def _model_key(svc):
    if svc.fwmark:
        return (svc.af, svc.fwmark)
    return (svc.af, svc.protocol, svc.addr_bytes, svc.port)


def comparable(doc):
    """``doc`` without what differs between two reads of the same state
    (source, netns, time taken)."""
    return {k: v for k, v in doc.items()
            if k not in ("source", "netns", "taken_at")}


# -- /proc/net/ip_vs_conn -------------------------------------------------

def _addr(field):
    """ip_vs_conn_seq_show() prints IPv4 as %08X, IPv6 as %pI6."""
    if ":" in field:
        return str(ipaddress.IPv6Address(field))
    return str(ipaddress.IPv4Address(int(field, 16)))


def parse_ip_vs_conn(proc_text):
    """Rows of /proc/net/ip_vs_conn as dicts (see SNAPSHOT_SCHEMA).

    Columns: Pro FromIP FPrt ToIP TPrt DestIP DPrt State Expires [PEName
    PEData].  Ports are hex; Expires is whole seconds left.  A persistence
    template has client port 0 (no real connection does), which is how
    ``template`` is told: the file has no flag for it.
    """
    out = []
    for line in proc_text.splitlines():
        f = line.split()
        if not f or f[0] == "Pro":
            continue
        if len(f) < 9:
            raise ValueError(f"malformed /proc/net/ip_vs_conn line: {line!r}")
        cport = int(f[2], 16)
        out.append({
            "protocol": f[0],
            "client": {"address": _addr(f[1]), "port": cport},
            "virtual": {"address": _addr(f[3]), "port": int(f[4], 16)},
            "destination": {"address": _addr(f[5]), "port": int(f[6], 16)},
            "state": f[7],
            "expires": int(f[8]),
            "template": cport == 0,
            "pe_name": f[9] if len(f) > 9 else None,
            "pe_data": " ".join(f[10:]) if len(f) > 10 else None,
        })
    return out


__all__ = ["kernel_snapshot", "model_snapshot", "parse_ip_vs_conn",
           "comparable", "SNAPSHOT_SCHEMA", "FORMAT"]
