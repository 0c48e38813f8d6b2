"""Small stand-ins for the control plane's Service and Dest, and drivers.

The schedulers need only the attributes of ``ipvs_py.schedulers.base``'s
protocol; these dataclasses have exactly those (plus the thresholds), so the
tests do not depend on the control plane.
"""
import dataclasses
import ipaddress

import numpy as np

from ipvs_py import schedulers as S
from ipvs_py.schedulers.base import (PacketInfo, addr_fold, bind_conn,
                                     link_dest, unlink_dest, update_dest)


@dataclasses.dataclass(eq=False)
class Dest:
    addr: object
    port: int = 80
    weight: int = 1
    flags: int = 0
    activeconns: int = 0
    inactconns: int = 0
    persistconns: int = 0
    last_weight: int = 0
    u_thresh: int = 0
    l_thresh: int = 0
    available: bool = False      # the control plane's IP_VS_DEST_F_AVAILABLE

    def __repr__(self):
        a = self.addr
        if isinstance(a, int):
            a = ipaddress.ip_address(a)
        return f"Dest({a}:{self.port} w={self.weight})"


@dataclasses.dataclass(eq=False)
class Service:
    af: int = 2
    protocol: int = 6
    addr: object = 0x0A000001
    port: int = 80
    fwmark: int = 0
    sched_name: str = "rr"
    flags: int = 0
    timeout: int = 0
    netmask: int = 0xFFFFFFFF
    dests: list = dataclasses.field(default_factory=list)
    sched_data: object = None
    now: float = 0.0
    sysctl: dict = dataclasses.field(default_factory=dict)


def ip(s):
    return int(ipaddress.ip_address(s))


def make(name, weights, flags=0, af=2, bind_first=True, base="10.1.0.1"):
    """A service with dests ``weights`` added in order (so the kernel list is
    the reverse).  ``bind_first``: scheduler bound before the dests are added
    (ipvsadm -A then -a), else after (ipvsadm -E switching schedulers)."""
    svc = Service(af=af, sched_name=name, flags=flags)
    sched = S.lookup_scheduler(name)
    if bind_first:
        S.bind_scheduler(svc, sched)
    b = ip(base)
    for i, w in enumerate(weights):
        link_dest(svc, Dest(b + i, 80, w), sched if bind_first else None)
    if not bind_first:
        S.bind_scheduler(svc, sched)
    return svc, sched


def pkt(saddr, sport=1024, daddr="10.0.0.1", dport=80, proto=6, now=None,
        inverse=False):
    if isinstance(saddr, str):
        saddr = ip(saddr)
    if isinstance(daddr, str):
        daddr = ip(daddr)
    return PacketInfo(saddr=saddr, sport=sport, daddr=daddr, dport=dport,
                      protocol=proto, now=now, inverse=inverse)


def idx(svc, d):
    if d is None:
        return -1
    for i, x in enumerate(svc.dests):
        if x is d:
            return i
    raise AssertionError("dest not in service")


class PyDriver:
    """Schedules through the Python modules, one packet at a time."""

    tag = "py"

    def run(self, svc, sched, packets, count="none"):
        out = []
        for p in packets:
            d = sched.schedule(svc, p)
            if d is not None and count != "none":
                bind_conn(d, active=(count == "active"))
            out.append(idx(svc, d))
        return out


class CDriver:
    """Schedules through the C batch path, then writes the state back."""

    tag = "c"

    def run(self, svc, sched, packets, count="none"):
        from ipvs_py._core.sched import BatchScheduler
        bs = BatchScheduler(svc, sched.name)
        folds = np.array([addr_fold(svc.af, p.daddr if p.inverse else p.saddr)
                          for p in packets], dtype=np.uint32)
        ports = np.array([S.base.hash_port(svc, p) for p in packets],
                         dtype=np.uint16)
        dfolds = np.array([addr_fold(svc.af, p.daddr) for p in packets],
                          dtype=np.uint32)
        res = bs.schedule_batch(folds, ports, dfolds, count=count)
        bs.write_back()
        return [int(x) for x in res]


__all__ = ["Dest", "Service", "make", "pkt", "ip", "idx", "PyDriver",
           "CDriver", "link_dest", "unlink_dest", "update_dest", "bind_conn"]
