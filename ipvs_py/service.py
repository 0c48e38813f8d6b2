"""A virtual service (struct ip_vs_service).

Field names follow the netlink attributes IPVS_SVC_ATTR_* (STYLE.md pattern
3): ``af, protocol, addr, port, fwmark, sched_name, flags, timeout,
netmask, pe_name``.  ``timeout`` is in seconds (the kernel keeps ticks and
divides by HZ for user space).  ``netmask`` is what ipvsadm sends: for IPv4
the mask as an integer (0xFFFFFF00 for 255.255.255.0), for IPv6 the prefix
length.
"""
import ipaddress

from ._core import load as _load
from .stats import Stats

_svctab = _load("svctab")

__all__ = ["Service", "SCHEDULERS", "PERSISTENCE_ENGINES", "AF_INET",
           "AF_INET6", "IPPROTO_TCP", "IPPROTO_UDP", "IPPROTO_SCTP",
           "F_PERSISTENT", "F_HASHED", "F_ONEPACKET", "F_SCHED1", "F_SCHED2",
           "F_SCHED3", "svc_key"]

AF_INET, AF_INET6 = 2, 10
IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP = 6, 17, 132
PROTO_NAMES = {IPPROTO_TCP: "TCP", IPPROTO_UDP: "UDP", IPPROTO_SCTP: "SCTP"}

# include/uapi/linux/ip_vs.h
F_PERSISTENT = 0x0001
F_HASHED = 0x0002
F_ONEPACKET = 0x0004
F_SCHED1 = 0x0008
F_SCHED2 = 0x0010
F_SCHED3 = 0x0020
F_SCHED_MASK = F_SCHED1 | F_SCHED2 | F_SCHED3

#: Every scheduler module of net/netfilter/ipvs/ (ip_vs_<name>.c); "none"
#: binds no scheduler (ip_vs_add_service accepts it).
SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed",
              "nq", "fo", "ovf", "mh", "twos")
#: Persistence engines (ip_vs_pe_<name>.c).
PERSISTENCE_ENGINES = ("sip",)
#: Engines with a conn_out hook (conn_out_counter).
PE_CONN_OUT = ("sip",)

FTPPORT = 21


def svc_key(af, protocol, addr_bytes, port, fwmark):
    """The identity the kernel looks a service up by."""
    if fwmark:
        return (af, fwmark)
    return (af, protocol, addr_bytes, port)


class Service(_svctab.ServiceNode):
    """One virtual service; created by :meth:`ipvs_py.Netns.add_service`.

    Its service-table entry (hash node and lookup key) is in the object,
    on its first cache line, as the kernel embeds the node in
    ``struct ip_vs_service``: the ``ServiceNode`` base and ``adopt()``
    below (``ipvs_py/_core/svctab.pyx``).  A lookup among 100,000 services
    then misses on two lines (bucket, service), not three."""

    __slots__ = ("af", "protocol", "addr", "addr_bytes", "port", "fwmark",
                 "sched_name", "flags", "timeout", "netmask", "pe_name",
                 "dests", "stats", "hash_key", "_addr32", "sched_data",
                 "__weakref__")

    def __init__(self, af, protocol, addr, port, fwmark, sched_name, flags,
                 timeout, netmask, pe_name):
        from .svctable import svc_addr32
        self.af = af
        self.protocol = protocol
        self.addr = addr
        self.addr_bytes = addr.packed
        self.port = port
        self.fwmark = fwmark
        self.sched_name = sched_name
        self.flags = flags & ~F_HASHED
        self.timeout = timeout
        self.netmask = netmask
        self.pe_name = pe_name
        self.dests = []            # svc->destinations, head (newest) first
        self.stats = Stats()
        self.hash_key = 0
        self._addr32 = svc_addr32(af, self.addr_bytes)
        self.sched_data = None     # opaque, owned by the scheduler hooks

    def __getstate__(self):
        """copy and pickle carry the fields, never the table link."""
        return None, {k: getattr(self, k) for k in _FIELDS if hasattr(self, k)}

    @property
    def key(self):
        return svc_key(self.af, self.protocol, self.addr_bytes, self.port,
                       self.fwmark)

    @property
    def persistent(self):
        return bool(self.flags & F_PERSISTENT)

    @property
    def ops(self):
        return bool(self.flags & F_ONEPACKET)

    @property
    def num_dests(self):
        return len(self.dests)

    def as_dict(self):
        """The service as IPVS_SVC_ATTR_* suffixes -> values (what a
        netlink dump carries), stats included."""
        d = {"af": self.af, "fwmark": self.fwmark,
             "sched_name": self.sched_name, "flags": self.flags | F_HASHED,
             "timeout": self.timeout, "netmask": self.netmask,
             "stats": self.stats.shown()}
        if not self.fwmark:
            d.update(protocol=self.protocol, addr=str(self.addr),
                     port=self.port)
        if self.pe_name:
            d["pe_name"] = self.pe_name
        return d

    def __repr__(self):
        if self.fwmark:
            ident = f"FWM {self.fwmark}" + (" IPv6" if self.af == AF_INET6
                                            else "")
        else:
            a = (f"[{self.addr}]" if self.af == AF_INET6 else str(self.addr))
            ident = f"{PROTO_NAMES.get(self.protocol, '?')} {a}:{self.port}"
        return f"<Service {ident} {self.sched_name} dests={len(self.dests)}>"


_svctab.adopt(Service)
_FIELDS = tuple(k for k in Service.__slots__ if k != "__weakref__")


def zero_addr(af):
    return (ipaddress.IPv6Address(0) if af == AF_INET6
            else ipaddress.IPv4Address(0))
