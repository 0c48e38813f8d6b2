"""Prometheus text exposition (format 0.0.4) of an IPVS snapshot.

Series are aggregated per service and per destination, never one per
connection: a busy balancer has millions of connections and a scrape
must stay small.  With connections in the snapshot (``--conns``), they
are counted per destination and state (a bounded set: the protocol's
state names).  Written by hand so the package needs no Prometheus
library; the tests parse the output with prometheus_client.
"""
from collections import Counter

from ..stats import COUNTERS

# snapshot stats key -> (metric suffix, help); counters become *_total
_COUNTER_HELP = {
    "conns": ("connections_total", "Connections scheduled"),
    "inpkts": ("incoming_packets_total", "Packets from clients"),
    "outpkts": ("outgoing_packets_total", "Packets to clients"),
    "inbytes": ("incoming_bytes_total", "Bytes from clients"),
    "outbytes": ("outgoing_bytes_total", "Bytes to clients"),
}
_RATE_HELP = {
    "cps": ("connection_rate", "Connections per second (kernel estimator)"),
    "inpps": ("incoming_packet_rate", "Packets per second from clients"),
    "outpps": ("outgoing_packet_rate", "Packets per second to clients"),
    "inbps": ("incoming_byte_rate", "Bytes per second from clients"),
    "outbps": ("outgoing_byte_rate", "Bytes per second to clients"),
}
_DEST_GAUGES = {
    "weight": ("weight", "Scheduling weight (0: quiesced)"),
    "active_conns": ("active_connections", "ActiveConn"),
    "inactive_conns": ("inactive_connections", "InActConn"),
    "persistent_conns": ("persistent_connections",
                         "Persistence templates pointing here"),
}


def _escape(value):
    return (str(value).replace("\\", "\\\\").replace("\n", "\\n")
            .replace('"', '\\"'))


def _labels(d):
    if not d:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in d.items()) + "}"


class _Families:
    """Samples grouped by metric name, written family by family (the text
    format wants each family's samples together after its HELP/TYPE)."""

    def __init__(self):
        self.meta = {}
        self.samples = {}

    def add(self, name, kind, help_text, labels, value):
        self.meta.setdefault(name, (kind, help_text))
        self.samples.setdefault(name, []).append((labels, value))

    def text(self):
        out = []
        for name, (kind, help_text) in self.meta.items():
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            for labels, value in self.samples[name]:
                out.append(f"{name}{_labels(labels)} {value}")
        return "\n".join(out) + "\n"


def _service_labels(s):
    def blank(v):
        return "" if v is None else v
    return {"service": s["name"], "protocol": blank(s["protocol"]),
            "address": blank(s["address"]), "port": blank(s["port"]),
            "fwmark": blank(s["fwmark"])}


def _dest_name(d):
    return (f"[{d['address']}]:{d['port']}" if d["af"] == "inet6"
            else f"{d['address']}:{d['port']}")


def render_metrics(snapshot, prefix="ipvs"):
    """The exposition text for a snapshot (kernel_snapshot/model_snapshot)."""
    f = _Families()
    f.add(f"{prefix}_info", "gauge", "IPVS version and table size",
          {"version": snapshot["info"]["version"]}, 1)
    f.add(f"{prefix}_connection_table_size", "gauge",
          "Buckets of the connection hash table", {},
          snapshot["info"]["conn_tab_size"])
    for name, value in snapshot["timeouts"].items():
        f.add(f"{prefix}_timeout_seconds", "gauge",
              "Connection timeouts (ipvsadm --set)", {"timeout": name}, value)
    f.add(f"{prefix}_services", "gauge", "Virtual services", {},
          len(snapshot["services"]))
    for s in snapshot["services"]:
        sl = _service_labels(s)
        f.add(f"{prefix}_service_destinations", "gauge",
              "Destinations of the service", sl, len(s["destinations"]))
        for what, key in (("active_connections", "active_conns"),
                          ("inactive_connections", "inactive_conns")):
            f.add(f"{prefix}_service_{what}", "gauge",
                  f"Sum over the service's destinations of {key}", sl,
                  sum(d[key] for d in s["destinations"]))
        _stats(f, f"{prefix}_service", s["stats"], sl)
        for d in s["destinations"]:
            dl = {**sl, "destination": _dest_name(d), "forward": d["forward"]}
            for key, (suffix, help_text) in _DEST_GAUGES.items():
                f.add(f"{prefix}_destination_{suffix}", "gauge", help_text,
                      dl, d[key])
            _stats(f, f"{prefix}_destination", d["stats"], dl)
    if "connections" in snapshot:
        _connections(f, prefix, snapshot)
    return f.text()


def _stats(f, base, stats, labels):
    for key in COUNTERS:
        suffix, help_text = _COUNTER_HELP[key]
        f.add(f"{base}_{suffix}", "counter", help_text, labels, stats[key])
    for key, (suffix, help_text) in _RATE_HELP.items():
        f.add(f"{base}_{suffix}", "gauge", help_text, labels, stats[key])


def _connections(f, prefix, snapshot):
    """Connection entries counted per (service, destination, state);
    templates counted apart per service."""
    by_vip = {}
    for s in snapshot["services"]:
        if s["fwmark"] is None:
            by_vip[(s["protocol"].upper(), s["address"], s["port"])] = s
    counts = Counter()
    templates = Counter()
    for c in snapshot["connections"]:
        v = c["virtual"]
        s = by_vip.get((c["protocol"], v["address"], v["port"]))
        svc = s["name"] if s else (
            f"{c['protocol']} {v['address']}:{v['port']}")
        d = c["destination"]
        dest = (f"[{d['address']}]:{d['port']}" if ":" in d["address"]
                else f"{d['address']}:{d['port']}")
        if c["template"]:
            templates[svc] += 1
        else:
            counts[(svc, dest, c["state"])] += 1
    for (svc, dest, state), n in sorted(counts.items()):
        f.add(f"{prefix}_destination_connection_entries", "gauge",
              "Connection entries in /proc/net/ip_vs_conn by state",
              {"service": svc, "destination": dest, "state": state}, n)
    for svc, n in sorted(templates.items()):
        f.add(f"{prefix}_service_persistence_templates", "gauge",
              "Persistence templates in /proc/net/ip_vs_conn",
              {"service": svc}, n)
