"""What every scheduler needs: constants, the service/dest protocol, helpers.

Kernel sources: ``include/net/ip_vs.h`` (``struct ip_vs_scheduler``,
``ip_vs_dest_conn_overhead``), ``include/uapi/linux/ip_vs.h`` (flag values)
and ``net/netfilter/ipvs/ip_vs_ctl.c`` (where destinations are linked into
``svc->destinations`` and which hook runs when).

The service and dest protocol
-----------------------------
Schedulers read these attributes and nothing else (names follow the netlink
attribute suffixes, as the control plane's ``Service``/``Dest`` do):

``svc.af``            2 (AF_INET) or 10 (AF_INET6)
``svc.protocol``      6 / 17 / 132 (0 for fwmark services)
``svc.addr`` ``svc.port`` ``svc.fwmark``   identity, for error messages
``svc.flags``         IP_VS_SVC_F_* bits; sh/mh read SCHED1/SCHED2
``svc.dests``         the dests in *kernel list order* (see below); the
                      kernel's name, ``svc.destinations``, works too
``svc.sched_data``    opaque per-service scheduler state, owned by the hooks

``dest.addr`` ``dest.port``            the real server (port in host order)
``dest.weight``                         int, >= 0
``dest.last_weight``                    latest non-zero weight (mh only;
                                        falls back to ``weight`` if absent)
``dest.flags``                          IP_VS_DEST_F_OVERLOAD (and
                                        IP_VS_DEST_F_AVAILABLE, unless the
                                        dest has an ``available`` bool)
``dest.activeconns`` ``dest.inactconns``   connection counters

Kernel list order: ``__ip_vs_update_dest()`` links a new dest with
``list_add_rcu(&dest->n_list, &svc->destinations)``, i.e. at the *head*, and
then calls ``add_dest``; ``__ip_vs_unlink_dest()`` unlinks first and then
calls ``del_dest``; an edit calls ``upd_dest``.  :func:`link_dest`,
:func:`unlink_dest` and :func:`update_dest` do exactly that on a Python list,
including the kernel's ``last_weight``/flags bookkeeping.

Addresses may be ints (the host-order value, ``int(ipaddress.ip_address(s))``),
strings, bytes or ``ipaddress`` objects; ports are host-order ints.
"""
from __future__ import annotations

import dataclasses
import errno
import ipaddress
import logging
import time
from math import gcd as _gcd
from typing import Any, Callable, Optional, Protocol

__all__ = [
    "AF_INET", "AF_INET6", "IPPROTO_TCP", "IPPROTO_UDP", "IPPROTO_SCTP",
    "IP_VS_DEST_F_AVAILABLE", "IP_VS_DEST_F_OVERLOAD",
    "IP_VS_SVC_F_PERSISTENT", "IP_VS_SVC_F_HASHED", "IP_VS_SVC_F_ONEPACKET",
    "IP_VS_SVC_F_SCHED1", "IP_VS_SVC_F_SCHED2", "IP_VS_SVC_F_SCHED3",
    "IP_VS_SVC_F_SCHED_SH_FALLBACK", "IP_VS_SVC_F_SCHED_SH_PORT",
    "IP_VS_SVC_F_SCHED_MH_FALLBACK", "IP_VS_SVC_F_SCHED_MH_PORT",
    "IP_VS_SCHEDNAME_MAXLEN", "HZ",
    "ServiceLike", "DestLike", "PacketInfo", "Scheduler", "SchedulerError",
    "SchedulerNotFound", "s32", "u32", "c_div", "gcd", "addr_fold",
    "dests_of", "is_available",
    "dest_conn_overhead", "hash_port", "scheduler_err", "jiffies", "svc_now",
    "sysctl", "link_dest", "unlink_dest", "update_dest", "bind_conn",
    "unbind_conn", "trace_note",
]

AF_INET = 2
AF_INET6 = 10
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_SCTP = 132

# include/uapi/linux/ip_vs.h
IP_VS_DEST_F_AVAILABLE = 0x0001     # server is available
IP_VS_DEST_F_OVERLOAD = 0x0002      # server is overloaded
IP_VS_SVC_F_PERSISTENT = 0x0001
IP_VS_SVC_F_HASHED = 0x0002
IP_VS_SVC_F_ONEPACKET = 0x0004
IP_VS_SVC_F_SCHED1 = 0x0008
IP_VS_SVC_F_SCHED2 = 0x0010
IP_VS_SVC_F_SCHED3 = 0x0020
IP_VS_SVC_F_SCHED_SH_FALLBACK = IP_VS_SVC_F_SCHED1
IP_VS_SVC_F_SCHED_SH_PORT = IP_VS_SVC_F_SCHED2
IP_VS_SVC_F_SCHED_MH_FALLBACK = IP_VS_SVC_F_SCHED1   # ip_vs_mh.c
IP_VS_SVC_F_SCHED_MH_PORT = IP_VS_SVC_F_SCHED2
IP_VS_SCHEDNAME_MAXLEN = 16          # includes the NUL: names <= 15 chars

#: Timer frequency of the modelled kernel (Debian's CONFIG_HZ=250).  Only
#: lblc/lblcr look at time, in jiffies = floor(seconds * HZ).
HZ = 250

log = logging.getLogger("ipvs_py.schedulers")


class ServiceLike(Protocol):
    af: int
    protocol: int
    addr: Any
    port: int
    fwmark: int
    flags: int
    dests: list                 # or ``destinations``
    sched_data: Any


class DestLike(Protocol):
    addr: Any
    port: int
    weight: int
    flags: int
    activeconns: int
    inactconns: int


@dataclasses.dataclass(frozen=True, slots=True)
class PacketInfo:
    """The parts of the first packet of a new connection a scheduler reads.

    ``inverse`` is the kernel's ``ip_vs_iph_inverse(iph)`` (ICMP errors about
    a reply): sh and mh then hash ``daddr``/``dport`` instead of the source.
    ``now`` is the virtual clock in seconds (lblc/lblcr expiry); None means
    "ask the service" (:func:`svc_now`).
    """

    saddr: Any
    sport: int = 0
    daddr: Any = 0
    dport: int = 0
    protocol: int = IPPROTO_TCP
    inverse: bool = False
    now: Optional[float] = None
    #: explain: a list the scheduler appends notes of its decision to
    #: (:func:`trace_note`); None (the default) records nothing
    trace: Optional[list] = None


def trace_note(pkt, what, **fields):
    """Record one step of a decision for ``ipvs-py explain`` when the
    packet carries a trace list (``pkt.trace``); free otherwise."""
    if pkt is not None and pkt.trace is not None:
        pkt.trace.append({"step": what, **fields})


Hook = Optional[Callable[..., Any]]


@dataclasses.dataclass(frozen=True, eq=False)
class Scheduler:
    """One scheduler: ``struct ip_vs_scheduler`` minus list/refcnt/module.

    Every hook is optional, as in the kernel.  ``schedule(svc, pkt)`` returns
    a dest of ``svc.destinations`` or None.  ``tick(svc, now)`` is the
    model's stand-in for a scheduler's own ``timer_list`` (lblc/lblcr): the
    netns calls it when its virtual clock moves; ``schedule`` also runs any
    timer that fell due before the packet.
    """

    name: str
    init_service: Hook = None    # create svc.sched_data
    done_service: Hook = None    # release it
    add_dest: Hook = None        # dest just linked at the list head
    del_dest: Hook = None        # dest just unlinked
    upd_dest: Hook = None        # dest weight/thresholds edited
    schedule: Hook = None        # (svc, pkt) -> dest or None
    tick: Hook = None            # (svc, now): run due timers (model only)
    doc: str = ""
    uses_netns: bool = False     # init_service(svc, netns=...) for clock/sysctl

    def __repr__(self):
        return f"<Scheduler {self.name}>"


class SchedulerError(OSError):
    """A scheduler operation failed the way the kernel call would (errno)."""

    def __init__(self, err, msg):
        super().__init__(err, msg)


class SchedulerNotFound(SchedulerError, LookupError):
    """No scheduler of that name (the kernel's -ENOENT)."""

    def __init__(self, name):
        super().__init__(errno.ENOENT,
                         f"Scheduler module ip_vs_{name} not found")
        self.sched_name = name


def dests_of(svc):
    """The dests of ``svc`` in kernel list order (``svc.dests``, the control
    plane's name, or ``svc.destinations``, the kernel's)."""
    try:
        return svc.dests
    except AttributeError:
        return svc.destinations


def is_available(dest):
    """IP_VS_DEST_F_AVAILABLE: set while the dest is linked in a service.
    The control plane keeps it as ``dest.available``; else the flags bit."""
    a = getattr(dest, "available", None)
    if a is None:
        return bool(dest.flags & IP_VS_DEST_F_AVAILABLE)
    return bool(a)


def _set_available(dest, on):
    if hasattr(dest, "available"):
        dest.available = on
    elif on:
        dest.flags |= IP_VS_DEST_F_AVAILABLE
    else:
        dest.flags &= ~IP_VS_DEST_F_AVAILABLE


# ------------------------------------------------------------ arithmetic

def s32(x):
    """``x`` wrapped to a C ``int`` (the kernel builds with -fno-strict-overflow)."""
    return ((x + 0x80000000) & 0xFFFFFFFF) - 0x80000000


def u32(x):
    """``x`` wrapped to a C ``unsigned int``."""
    return x & 0xFFFFFFFF


def c_div(a, b):
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def gcd(a, b):
    """``lib/math/gcd.c`` for the positive ints the schedulers pass."""
    return _gcd(a, b)


def _addr_int(addr):
    if type(addr) is int:
        return addr
    if isinstance(addr, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return int(addr)
    if isinstance(addr, (bytes, bytearray, memoryview)):
        return int.from_bytes(bytes(addr), "big")
    return int(ipaddress.ip_address(addr))


def addr_fold(af, addr):
    """``ntohl(addr_fold)`` of sh/dh/mh/lblc: the IPv4 address, or the XOR of
    the four 32-bit words of an IPv6 address, as a host-order u32."""
    a = _addr_int(addr)
    if af == AF_INET6:
        return ((a >> 96) ^ (a >> 64) ^ (a >> 32) ^ a) & 0xFFFFFFFF
    return a & 0xFFFFFFFF


def addr_key(addr):
    """A hashable, comparable form of an address (``ip_vs_addr_equal``)."""
    return _addr_int(addr)


def dest_conn_overhead(dest):
    """``ip_vs_dest_conn_overhead()``: ``(activeconns << 8) + inactconns``
    as a C int (wraps for absurd counts exactly as the kernel does)."""
    return s32((dest.activeconns << 8) + dest.inactconns)


def hash_port(svc, pkt):
    """``ip_vs_{sh,mh}_get_port()``: the source port (destination port for
    inverse packets) of TCP/UDP/SCTP, else 0."""
    if pkt.protocol in (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP):
        return pkt.dport if pkt.inverse else pkt.sport
    return 0


def _proto_name(p):
    return {IPPROTO_TCP: "TCP", IPPROTO_UDP: "UDP", IPPROTO_SCTP: "SCTP",
            }.get(p, "IP")


def scheduler_err(svc, name, msg):
    """``ip_vs_scheduler_err()``: the shared error line, logged at WARNING
    and rate-limited like the kernel's ``IP_VS_ERR_RL``.

    Returns the formatted text (tests compare it)."""
    fwmark = getattr(svc, "fwmark", 0)
    if fwmark:
        text = f"{name}: FWM {fwmark} 0x{fwmark:08X} - {msg}"
    elif getattr(svc, "af", AF_INET) == AF_INET6:
        a = ipaddress.IPv6Address(_addr_int(svc.addr)).compressed
        text = f"{name}: {_proto_name(svc.protocol)} [{a}]:{svc.port} - {msg}"
    else:
        a = ipaddress.IPv4Address(_addr_int(svc.addr))
        text = f"{name}: {_proto_name(svc.protocol)} {a}:{svc.port} - {msg}"
    now = time.monotonic()
    if now - _rl[0] >= RATELIMIT_INTERVAL:
        if _rl[2]:
            log.warning("IPVS: %d scheduler messages suppressed", _rl[2])
        _rl[:] = [now, 0, 0]
    if _rl[1] < RATELIMIT_BURST:
        _rl[1] += 1
        log.warning("IPVS: %s", text)
    else:
        _rl[2] += 1
    return text


#: IP_VS_ERR_RL is printk_ratelimited: 10 messages per 5 s, then silence.
RATELIMIT_INTERVAL = 5.0
RATELIMIT_BURST = 10
_rl = [float("-inf"), 0, 0]      # window start, printed, suppressed


# ------------------------------------------------------------ time

def jiffies(seconds):
    """Virtual seconds -> jiffies (floor)."""
    return int(seconds * HZ)


def _holders(svc, netns=None):
    return (netns, svc, getattr(svc, "netns", None))


def svc_now(svc, netns=None):
    """The virtual clock in seconds as the service sees it: from ``netns``
    (the one the scheduler was bound in: ``.now``, or ``.jiffies / .hz``),
    else ``svc.now``/``svc.netns``, else 0."""
    for holder in _holders(svc, netns):
        if holder is None:
            continue
        v = getattr(holder, "now", None)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return v
        j, hz = getattr(holder, "jiffies", None), getattr(holder, "hz", None)
        if isinstance(j, int) and isinstance(hz, int) and hz:
            return j / hz
    return 0.0


def sysctl(svc, name, default, netns=None):
    """A per-netns sysctl (``netns.sysctl[name]``, ``svc.sysctl``...)."""
    for holder in _holders(svc, netns):
        table = getattr(holder, "sysctl", None)
        if table is not None:
            try:
                return table[name]
            except (KeyError, TypeError):
                pass
    return default


# ------------------------------------------------------------ list helpers

def link_dest(svc, dest, sched=None):
    """Add ``dest`` as ``__ip_vs_update_dest(add=1)`` does: set
    ``last_weight``, mark it available, link it at the list head, then call
    the scheduler's ``add_dest``."""
    if hasattr(dest, "last_weight"):
        dest.last_weight = dest.weight
    _set_available(dest, True)
    dests_of(svc).insert(0, dest)
    if sched is not None and sched.add_dest is not None:
        sched.add_dest(svc, dest)


def update_dest(svc, dest, sched=None, *, weight=None, u_thresh=None):
    """Edit ``dest`` as ``__ip_vs_update_dest(add=0)`` does, then call
    ``upd_dest``.  ``last_weight`` keeps the latest non-zero weight; a new
    upper threshold of 0, or one above the old, clears OVERLOAD."""
    if weight is not None:
        if weight != 0 and hasattr(dest, "last_weight"):
            dest.last_weight = weight
        dest.weight = weight
    _set_available(dest, True)
    if u_thresh is not None:
        old = getattr(dest, "u_thresh", 0)
        if u_thresh == 0 or u_thresh > old:
            dest.flags &= ~IP_VS_DEST_F_OVERLOAD
        dest.u_thresh = u_thresh
    if sched is not None and sched.upd_dest is not None:
        sched.upd_dest(svc, dest)


def unlink_dest(svc, dest, sched=None):
    """Remove ``dest`` as ``__ip_vs_unlink_dest(svcupd=1)`` does: clear
    AVAILABLE, unlink, then call ``del_dest``."""
    _set_available(dest, False)
    dests = dests_of(svc)
    for i, d in enumerate(dests):
        if d is dest:
            del dests[i]
            break
    else:
        raise SchedulerError(errno.ENOENT, "destination not found")
    if sched is not None and sched.del_dest is not None:
        sched.del_dest(svc, dest)


# ------------------------------------------------------------ counters

def bind_conn(dest, active=False):
    """``ip_vs_bind_dest()`` for a new (non-template) connection: count it
    (new connections start INACTIVE; pass ``active`` for one counted as
    established) and set OVERLOAD once ``activeconns + inactconns`` reaches
    a non-zero upper threshold."""
    if active:
        dest.activeconns += 1
    else:
        dest.inactconns += 1
    u = getattr(dest, "u_thresh", 0)
    if u and u32(dest.activeconns + dest.inactconns) >= u:
        dest.flags |= IP_VS_DEST_F_OVERLOAD


def unbind_conn(dest, active=False):
    """``ip_vs_unbind_dest()``: uncount a connection and clear OVERLOAD by
    the kernel's rules (below l_thresh; else below 3/4 of u_thresh; else
    unconditionally)."""
    if active:
        dest.activeconns -= 1
    else:
        dest.inactconns -= 1
    total = dest.activeconns + dest.inactconns
    lo = getattr(dest, "l_thresh", 0)
    hi = getattr(dest, "u_thresh", 0)
    if lo:
        if total < lo:
            dest.flags &= ~IP_VS_DEST_F_OVERLOAD
    elif hi:
        if total * 4 < hi * 3:
            dest.flags &= ~IP_VS_DEST_F_OVERLOAD
    else:
        dest.flags &= ~IP_VS_DEST_F_OVERLOAD
