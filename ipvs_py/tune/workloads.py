"""Name a workload on the command line: a generator of
:mod:`ipvs_py.workload` with ``KEY=VALUE`` parameters, or a pcap file.

Bad input is refused before anything runs, with a message that names the
generator, the parameter or the file that was wrong.
"""
import inspect
import ipaddress

from .. import workload
from ..packets import IPPROTO, PROTO_NAMES

#: generator name -> function (the CLI's choices)
GENERATORS = {
    "new_connections": workload.new_connections,
    "uniform": workload.uniform,
    "zipf": workload.zipf,
    "bursty": workload.bursty,
    "long_short_mix": workload.long_short_mix,
    "syn_flood": workload.syn_flood,
    "many_clients_few_vips": workload.many_clients_few_vips,
}
_SET_BY_US = {"vips"}


def parse_value(text):
    """``"100000"``/``"1_000"`` -> int, ``"1e6"``/``"0.5"`` -> float,
    anything else stays a string (e.g. ``proto=udp``)."""
    for conv in (int, float):
        try:
            return conv(text.replace("_", "") if conv is int else text)
        except ValueError:
            pass
    return text


def parse_params(items):
    """``["n_conns=1000", "rate=1e6"]`` -> dict; raises ValueError naming
    an item without ``=``."""
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ValueError(f"bad workload parameter {item!r}: expected "
                             f"KEY=VALUE")
        out[key.strip()] = parse_value(value.strip())
    return out


def _check_params(name, fn, params):
    sig = inspect.signature(fn)
    allowed = [p for p in sig.parameters if p not in _SET_BY_US]
    for key in params:
        if key not in allowed:
            raise ValueError(f"workload {name!r} has no parameter {key!r} "
                             f"(it takes: {', '.join(allowed)})")
    missing = [p.name for p in sig.parameters.values()
               if p.default is inspect.Parameter.empty
               and p.kind is not p.VAR_KEYWORD and p.name not in params]
    if missing:
        raise ValueError(f"workload {name!r} needs {', '.join(missing)} "
                         f"(give --param {missing[0]}=N)")


def vips_of_rules(net, proto):
    """(address, port) of every IPv4 service of ``net`` for ``proto``
    (the generators' VIPs, so the workload hits the rules)."""
    pnum = IPPROTO[proto] if isinstance(proto, str) else proto
    return [(str(s.addr), s.port) for s in net.services()
            if s.af == 2 and not s.fwmark and s.protocol == pnum]


def parse_vip(text):
    """``"192.0.2.10:80"`` -> ("192.0.2.10", 80)."""
    addr, colon, port = text.rpartition(":")
    try:
        if not colon:
            raise ValueError
        ipaddress.IPv4Address(addr)
        p = int(port)
        if not 1 <= p <= 65535:
            raise ValueError
    except ValueError:
        raise ValueError(f"bad --vip {text!r}: expected IPv4ADDR:PORT "
                         f"with a port 1..65535") from None
    return addr, p


def build(name=None, params=(), *, pcap=None, vips=None, net=None, seed=0):
    """The PacketBatch and a description dict of the workload.

    ``name``/``params``: a generator and its KEY=VALUE strings; ``pcap``:
    a capture path instead.  ``vips`` default to ``net``'s IPv4 services
    of the workload's protocol.  Raises ValueError (unknown generator, bad
    parameter, no VIP) or OSError (missing pcap) with a clear message."""
    if pcap is not None:
        if name is not None and name != "new_connections" or params:
            raise ValueError("give either a generator or --pcap, not both")
        batch, stats = workload.read_pcap(pcap, vips=vips)
        if len(batch) == 0:
            raise ValueError(f"{pcap}: no replayable packets "
                             f"({stats.summary()})")
        return batch, {"pcap": str(pcap), "packets": len(batch),
                       "summary": stats.summary(),
                       "skipped": dict(stats.skipped)}
    name = name or "new_connections"
    fn = GENERATORS.get(name)
    if fn is None:
        raise ValueError(f"unknown workload {name!r} (known: "
                         f"{', '.join(GENERATORS)})")
    kw = parse_params(params)
    _check_params(name, fn, kw)
    kw.setdefault("seed", seed)
    proto = kw.get("proto", "tcp")
    if isinstance(proto, int):
        proto = PROTO_NAMES.get(proto, proto)
    if vips is None and net is not None:
        vips = vips_of_rules(net, proto if isinstance(proto, str) else "tcp")
        if not vips:
            raise ValueError(f"the rules have no IPv4 {proto} service to "
                             f"send the workload to; give --vip ADDR:PORT")
    if vips is not None:
        kw["vips"] = tuple(vips)
    try:
        batch = fn(**kw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"workload {name!r}: {exc}") from None
    desc = {"generator": name, "packets": len(batch)}
    desc.update({k: (list(map(list, v)) if k == "vips" else v)
                 for k, v in kw.items()})
    return batch, desc
