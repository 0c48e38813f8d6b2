"""Configurations as plain values: what the kernel has, what the user wants.

A :data:`Config` maps a service key to ``(ServiceConfig, {dest key:
DestConfig})``.  Both sides of a sync are brought to this one shape, from
the model (:func:`config_of_model`) and from the kernel
(:func:`config_of_kernel`), so planning is a comparison of values.  Field
names are the netlink attribute suffixes, as in the model.
"""
import dataclasses
import ipaddress
import socket

from ..dest import FWD_TUNNEL
from ..service import AF_INET6, F_HASHED

#: The service flags user space sets; the kernel adds F_HASHED (0x2) itself.
_USER_SVC_FLAGS = ~F_HASHED & 0xFFFFFFFF


def _packed(af, addr):
    # inet_pton: the key of every dest of a 10,000-dest read is computed
    # here; ipaddress.ip_address(s).packed costs 2.43 us a call against
    # 79 ns for inet_pton (python -m timeit on the dev host).
    return socket.inet_pton(socket.AF_INET6 if af == AF_INET6 else
                            socket.AF_INET, addr)


# ``key``/``addr_bytes`` are plain properties: functools.cached_property
# takes a lock on every read in Python 3.11; recomputing (an 80 ns
# inet_pton) made plan() of a 2,000 x 4 configuration 27 -> 16 ms.
@dataclasses.dataclass(frozen=True)
class ServiceConfig:
    """What defines a service, as IPVS_CMD_NEW/SET_SERVICE carries it."""

    af: int
    protocol: int
    addr: str
    port: int
    fwmark: int
    sched_name: str
    flags: int
    timeout: int
    netmask: int        # IPv4: the mask as an int; IPv6: prefix length
    pe_name: str = ""

    @property
    def key(self):
        if self.fwmark:
            return (self.af, self.fwmark)
        return (self.af, self.protocol, self.addr_bytes, self.port)

    @property
    def addr_bytes(self):
        return _packed(self.af, self.addr)

    def to_netlink(self):
        """The dict IPVSConnection sends."""
        nm = self.netmask
        if self.af != AF_INET6:
            nm = str(ipaddress.IPv4Address(nm & 0xFFFFFFFF))
        d = {"af": self.af, "sched_name": self.sched_name, "flags": self.flags,
             "timeout": self.timeout, "netmask": nm, "pe_name": self.pe_name or None}
        if self.fwmark:
            d["fwmark"] = self.fwmark
        else:
            d.update(protocol=self.protocol, addr=self.addr, port=self.port)
        return d


@dataclasses.dataclass(frozen=True)
class DestConfig:
    """What defines a destination, as IPVS_CMD_NEW/SET_DEST carries it."""

    af: int
    addr: str
    port: int
    fwd_method: int
    weight: int
    u_thresh: int = 0
    l_thresh: int = 0
    tun_type: int = 0
    tun_port: int = 0
    tun_flags: int = 0

    @property
    def key(self):
        return (self.af, self.addr_bytes, self.port)

    @property
    def addr_bytes(self):
        return _packed(self.af, self.addr)

    def to_netlink(self):
        d = {"addr": self.addr, "port": self.port, "fwd_method": self.fwd_method,
             "weight": self.weight, "u_thresh": self.u_thresh,
             "l_thresh": self.l_thresh, "addr_family": self.af}
        if self.fwd_method == FWD_TUNNEL:
            d.update(tun_type=self.tun_type, tun_port=self.tun_port,
                     tun_flags=self.tun_flags)
        return d


def config_of_model(net):
    """The configuration held by an ``ipvs_py.Netns``."""
    return config_of_pairs((svc, svc.dests) for svc in net.services(sort=False))


def config_of_pairs(pairs):
    """A Config from ``(service, dests)`` pairs: model objects
    (``ipvs_py.Service`` and its ``Dest`` list) or config values
    (``ServiceConfig`` and its ``{key: DestConfig}``, taken as they are)."""
    out = {}
    for svc, dests in pairs:
        if isinstance(svc, ServiceConfig):
            out[svc.key] = (svc, dests)
            continue
        sc = ServiceConfig(svc.af, svc.protocol, _text(svc.af, svc.addr_bytes),
                           svc.port, svc.fwmark, svc.sched_name,
                           svc.flags & _USER_SVC_FLAGS, svc.timeout,
                           svc.netmask, svc.pe_name or "")
        out[sc.key] = (sc, {dc.key: dc for dc in map(_dest_config, dests)})
    return out


def _dest_config(d):
    # tunnel fields only for tunnel dests, as dest_from_kernel reads them:
    # the kernel's reply carries them for every dest, ipvsadm shows them
    # only for -i, and a sync sends them only then (DestConfig.to_netlink)
    tunnel = d.fwd_method == FWD_TUNNEL
    return DestConfig(d.af, _text(d.af, d.addr_bytes), d.port, d.fwd_method,
                      d.weight, d.u_thresh, d.l_thresh,
                      d.tun_type if tunnel else 0, d.tun_port if tunnel else 0,
                      d.tun_flags if tunnel else 0)


def _text(af, packed):
    # inet_ntop, as the kernel side decodes (nlattr): ipaddress writes an
    # IPv4-mapped IPv6 address as ::ffff:102:304, inet_ntop ::ffff:1.2.3.4,
    # and the two sides must compare equal
    return socket.inet_ntop(socket.AF_INET6 if af == AF_INET6 else
                            socket.AF_INET, packed)


def service_from_kernel(s):
    """An IPVSConnection service dict -> ServiceConfig."""
    af = s["af"]
    nm = s.get("netmask", 128 if af == AF_INET6 else "255.255.255.255")
    if af != AF_INET6 and isinstance(nm, str):
        nm = int(ipaddress.IPv4Address(nm))
    fwmark = s.get("fwmark", 0) or 0
    zero = "::" if af == AF_INET6 else "0.0.0.0"
    return ServiceConfig(
        af, s.get("protocol", 0) if not fwmark else 0,
        s.get("addr", zero) if not fwmark else zero,
        s.get("port", 0) if not fwmark else 0, fwmark,
        s.get("sched_name", ""), s.get("flags", 0) & _USER_SVC_FLAGS,
        s.get("timeout", 0), nm, s.get("pe_name", "") or "")


def dest_from_kernel(d, svc_af):
    """An IPVSConnection dest dict -> DestConfig."""
    af = d.get("addr_family", svc_af)
    tunnel = d.get("fwd_method") == FWD_TUNNEL
    return DestConfig(af, d["addr"], d["port"], d["fwd_method"], d["weight"],
                      d.get("u_thresh", 0), d.get("l_thresh", 0),
                      d.get("tun_type", 0) if tunnel else 0,
                      d.get("tun_port", 0) if tunnel else 0,
                      d.get("tun_flags", 0) if tunnel else 0)


def config_of_kernel(conn):
    """The configuration the kernel of ``conn``'s namespace holds."""
    return state_of(conn).config()


def state_of(conn):
    """The kernel's state (a ``KernelState``) read over ``conn``: an
    IPVSConnection reads it in one compiled pass; any other object with
    IPVSConnection's ``services()``/``dests()`` is read through them."""
    from .kernel_state import KernelState
    if hasattr(conn, "snapshot"):
        return conn.snapshot()
    out = {}
    for s in conn.services(stats=False):
        sc = service_from_kernel(s)
        dests = {}
        for d in conn.dests(sc.to_netlink(), stats=False):
            dc = dest_from_kernel(d, sc.af)
            dests[dc.key] = dc
        out[sc.key] = (sc, dests)
    return KernelState.of_config(out)


def normalise_model_svc(sc):
    """The model stores fwmark services with a zero address and TCP as the
    protocol (as ipvsadm sends them); the kernel reports neither.  Compare
    fwmark services by af + fwmark + settings only."""
    if sc.fwmark:
        zero = "::" if sc.af == AF_INET6 else "0.0.0.0"
        return dataclasses.replace(sc, protocol=0, addr=zero, port=0)
    return sc
