"""Traffic generators: synthetic client->VIP traffic as PacketBatches.

Clients come from 198.18.0.0/15 (RFC 2544 benchmarking space) and VIPs
default to 192.0.2.0/24 (TEST-NET-1): the model never sends real traffic,
but the addresses say clearly what they are.  Each TCP flow opens with a
SYN; later packets are ACKs and, where a generator closes flows, the last
is FIN|ACK, so the model's TCP state machine sees real connections.  UDP
flows are just packets; SCTP flows open with INIT (chunk type 1).

Popularity and timing are numpy draws from one ``numpy.random.Generator``
seeded by ``seed``, so the same call gives the same batch bit for bit.
"""
import dataclasses
import ipaddress

import numpy as np

from ..packets import IPPROTO, PacketBatch, parse_proto

CLIENT_NET = ipaddress.ip_network("198.18.0.0/15")
DEFAULT_VIPS = (("192.0.2.1", 80),)
SYN, ACK, FIN = 0x02, 0x10, 0x01
SCTP_INIT, SCTP_DATA = 1, 0


@dataclasses.dataclass(frozen=True)
class Flows:
    """Distinct client->VIP flows: parallel arrays, one element per flow."""

    caddr: np.ndarray   # uint32 host-order IPv4
    cport: np.ndarray   # uint16
    vaddr: np.ndarray   # uint32 host-order IPv4
    vport: np.ndarray   # uint16
    proto: int

    def __len__(self):
        return len(self.caddr)


def _vips(vips):
    if not vips:
        raise ValueError("vips must name at least one (address, port)")
    addrs, ports = [], []
    for item in vips:
        try:
            addr, port = item
            ip = ipaddress.IPv4Address(addr)
        except (TypeError, ValueError):
            raise ValueError(f"bad VIP {item!r}: expected (IPv4 address, port)") from None
        if not 1 <= int(port) <= 65535:
            raise ValueError(f"bad VIP port {port} in {item!r}")
        addrs.append(int(ip))
        ports.append(int(port))
    return np.array(addrs, np.uint32), np.array(ports, np.uint16)


def _positive(name, value, minimum=1):
    if int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def make_flows(n_flows, rng, vips=DEFAULT_VIPS, proto="tcp", n_clients=None):
    """``n_flows`` distinct flows from random clients to the ``vips``.

    ``n_clients`` limits the client address pool (default: the whole /15),
    so that "many clients to few VIPs" and port reuse can be modelled.
    """
    n_flows = _positive("n_flows", n_flows)
    pnum = parse_proto(proto)
    vaddr_pool, vport_pool = _vips(vips)
    pool = CLIENT_NET.num_addresses if n_clients is None else \
        _positive("n_clients", n_clients)
    if pool > CLIENT_NET.num_addresses:
        raise ValueError(f"n_clients must be at most {CLIENT_NET.num_addresses}")
    capacity = pool * 64512 * len(vaddr_pool)
    if n_flows > capacity // 2:
        raise ValueError(f"{n_flows} flows do not fit {pool} clients x "
                         f"64512 ports x {len(vaddr_pool)} VIPs comfortably")
    base = int(CLIENT_NET.network_address)
    # Draw (client, port, vip) triples, drop duplicates, top up: distinct
    # flows without a Python loop per flow.
    ids = np.empty(0, np.uint64)
    while len(ids) < n_flows:
        need = int((n_flows - len(ids)) * 1.1) + 16
        cl = rng.integers(0, pool, need, dtype=np.uint64)
        pt = rng.integers(0, 64512, need, dtype=np.uint64)
        vi = rng.integers(0, len(vaddr_pool), need, dtype=np.uint64)
        new = (cl << np.uint64(24)) | (pt << np.uint64(8)) | vi
        ids = np.concatenate([ids, new])
        _, first = np.unique(ids, return_index=True)
        ids = ids[np.sort(first)]
    ids = ids[:n_flows]
    vi = (ids & np.uint64(0xFF)).astype(np.intp)
    return Flows(
        caddr=(base + (ids >> np.uint64(24))).astype(np.uint32),
        cport=(1024 + ((ids >> np.uint64(8)) & np.uint64(0xFFFF))).astype(np.uint16),
        vaddr=vaddr_pool[vi], vport=vport_pool[vi], proto=pnum)


def _assemble(flows, flow_idx, times, close=False, length=100):
    """Packets of ``flows[flow_idx[i]]`` at ``times[i]`` (sorted by time).

    The first packet of each flow opens it (SYN / SCTP INIT); with
    ``close`` the last packet of a flow with two or more packets is FIN|ACK.
    """
    order = np.argsort(times, kind="stable")
    flow_idx = np.asarray(flow_idx)[order]
    times = np.asarray(times, np.float64)[order]
    n = len(flow_idx)
    flags = np.zeros(n, np.uint8)
    if n:
        _, first = np.unique(flow_idx, return_index=True)
        if flows.proto == IPPROTO["tcp"]:
            flags[:] = ACK
            if close:
                rev_first = np.unique(flow_idx[::-1], return_index=True)[1]
                last = n - 1 - rev_first
                flags[last] = FIN | ACK
            flags[first] = SYN
        elif flows.proto == IPPROTO["sctp"]:
            flags[:] = SCTP_DATA
            flags[first] = SCTP_INIT
    return PacketBatch.from_columns(
        proto=np.full(n, flows.proto, np.uint8),
        saddr=flows.caddr[flow_idx], sport=flows.cport[flow_idx],
        daddr=flows.vaddr[flow_idx], dport=flows.vport[flow_idx],
        tcp_flags=flags, time=times, length=length)


def _arrivals(rng, n, rate, start=0.0):
    """Poisson arrival times of ``n`` events at ``rate`` per second."""
    if rate <= 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    return start + np.cumsum(rng.exponential(1.0 / rate, n))


def uniform(n_packets, n_flows, *, rate=100_000.0, vips=DEFAULT_VIPS,
            proto="tcp", seed=0):
    """Each packet belongs to a flow drawn uniformly at random."""
    rng = np.random.default_rng(seed)
    n_packets = _positive("n_packets", n_packets)
    flows = make_flows(n_flows, rng, vips, proto)
    idx = rng.integers(0, len(flows), n_packets)
    return _assemble(flows, idx, _arrivals(rng, n_packets, rate))


def zipf_weights(n, s):
    """Bounded Zipf popularity: p_k proportional to k**-s, k = 1..n."""
    if s <= 0:
        raise ValueError(f"s must be > 0, got {s}")
    w = np.arange(1, n + 1, dtype=np.float64) ** -float(s)
    return w / w.sum()


def zipf(n_packets, n_flows, *, s=1.1, rate=100_000.0, vips=DEFAULT_VIPS,
         proto="tcp", seed=0):
    """Flow popularity follows a bounded Zipf law with exponent ``s``
    (flow 0 is the most popular)."""
    rng = np.random.default_rng(seed)
    n_packets = _positive("n_packets", n_packets)
    flows = make_flows(n_flows, rng, vips, proto)
    idx = rng.choice(len(flows), n_packets, p=zipf_weights(len(flows), s))
    return _assemble(flows, idx, _arrivals(rng, n_packets, rate))


def bursty(n_flows, *, mean_train=16, rate=1_000.0, gap=1e-6,
           vips=DEFAULT_VIPS, proto="tcp", seed=0):
    """Packet trains: each flow sends a geometric(mean ``mean_train``)
    number of packets back to back (``gap`` s apart); trains start at
    ``rate`` per second and close with FIN."""
    rng = np.random.default_rng(seed)
    flows = make_flows(n_flows, rng, vips, proto)
    if mean_train < 1:
        raise ValueError(f"mean_train must be >= 1, got {mean_train}")
    lengths = rng.geometric(1.0 / mean_train, len(flows))
    starts = _arrivals(rng, len(flows), rate)
    idx = np.repeat(np.arange(len(flows)), lengths)
    offsets = np.arange(len(idx)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    times = np.repeat(starts, lengths) + offsets * gap
    return _assemble(flows, idx, times, close=True)


def long_short_mix(n_long, n_short, *, duration=60.0, long_interval=1.0,
                   short_packets=4, vips=DEFAULT_VIPS, proto="tcp", seed=0):
    """Long-lived flows sending every ``long_interval`` s for ``duration``
    s (the slow flows: think pings or keepalives), mixed with short flows
    of ``short_packets`` packets that open and close at random times."""
    rng = np.random.default_rng(seed)
    n_long = _positive("n_long", n_long, 0)
    n_short = _positive("n_short", n_short, 0)
    if n_long + n_short == 0:
        raise ValueError("n_long + n_short must be at least 1")
    flows = make_flows(n_long + n_short, rng, vips, proto)
    ticks = max(1, int(duration / long_interval))
    phase = rng.uniform(0, long_interval, n_long)
    l_idx = np.repeat(np.arange(n_long), ticks)
    l_t = np.repeat(phase, ticks) + np.tile(np.arange(ticks) * long_interval, n_long)
    s_start = rng.uniform(0, duration, n_short)
    s_idx = n_long + np.repeat(np.arange(n_short), short_packets)
    s_t = np.repeat(s_start, short_packets) + \
        np.tile(np.arange(short_packets) * 1e-3, n_short)
    return _assemble(flows, np.concatenate([l_idx, s_idx]),
                     np.concatenate([l_t, s_t]), close=True)


def syn_flood(n_packets, *, rate=1_000_000.0, vips=DEFAULT_VIPS, seed=0):
    """SYNs from random source addresses and ports, each a new flow."""
    rng = np.random.default_rng(seed)
    n_packets = _positive("n_packets", n_packets)
    flows = make_flows(n_packets, rng, vips, "tcp")
    return _assemble(flows, np.arange(n_packets), _arrivals(rng, n_packets, rate),
                     length=60)


def many_clients_few_vips(n_clients, conns_per_client, *, vips=DEFAULT_VIPS,
                          packets_per_conn=3, rate=50_000.0, proto="tcp",
                          seed=0):
    """``n_clients`` clients each opening ``conns_per_client`` connections
    (distinct source ports) to a few VIPs, ``packets_per_conn`` packets
    each, connections starting at ``rate`` per second."""
    rng = np.random.default_rng(seed)
    n_clients = _positive("n_clients", n_clients)
    per = _positive("conns_per_client", conns_per_client)
    k = _positive("packets_per_conn", packets_per_conn)
    flows = make_flows(n_clients * per, rng, vips, proto, n_clients=n_clients)
    starts = _arrivals(rng, len(flows), rate)
    idx = np.repeat(np.arange(len(flows)), k)
    times = np.repeat(starts, k) + np.tile(np.arange(k) * 1e-4, len(flows))
    return _assemble(flows, idx, times, close=True)


def new_connections(n_conns, *, packets_per_conn=3, rate=100_000.0,
                    vips=DEFAULT_VIPS, proto="tcp", seed=0):
    """``n_conns`` connections, each ``packets_per_conn`` packets (SYN,
    ACKs, FIN|ACK last), starting at ``rate`` per second: the replay the
    lfactor tuning and the demo use."""
    rng = np.random.default_rng(seed)
    n_conns = _positive("n_conns", n_conns)
    k = _positive("packets_per_conn", packets_per_conn)
    flows = make_flows(n_conns, rng, vips, proto)
    starts = _arrivals(rng, n_conns, rate)
    idx = np.repeat(np.arange(n_conns), k)
    times = np.repeat(starts, k) + np.tile(np.arange(k) * 1e-4, n_conns)
    return _assemble(flows, idx, times, close=True)
