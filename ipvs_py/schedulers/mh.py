"""Maglev hashing, after ``net/netfilter/ipvs/ip_vs_mh.c``.

Each dest gets a preference list over a 4093-entry lookup table and the
table is filled from those lists (Eisenbud et al., "Maglev", NSDI '16,
section 3.4; details in :mod:`._mh_table`).  A new connection is sent to
``lookup[hsiphash(ntohs(port) + ntohl(addr_fold), hash1) % 4093]``, port
only with ``mh-port``.  The table uses ``last_weight`` -- the latest non-zero
weight -- so setting a weight to 0 quiesces a dest without moving anyone
else's keys; the slots of a quiesced or OVERLOADed dest yield no dest, or
with ``mh-fallback`` the first usable dest at ``hash(offset + ihash) %
4093`` for offset 0..4092.  Every add/del/edit rebuilds the table; a
rebuild moves few keys (the Maglev property).
"""
from . import _mh_table as T
from .base import (IP_VS_DEST_F_OVERLOAD, IP_VS_SVC_F_SCHED_MH_FALLBACK,
                   IP_VS_SVC_F_SCHED_MH_PORT, Scheduler, SchedulerError,
                   addr_fold, dests_of, hash_port, scheduler_err)
from .sched import register_scheduler

NAME = "mh"
TAB_SIZE = T.TAB_SIZE


def last_weight(d):
    lw = getattr(d, "last_weight", None)
    return d.weight if lw is None else lw


class MHState:
    """``struct ip_vs_mh_state``: ``lookup`` holds dest objects or None."""

    __slots__ = ("lookup", "gcd", "rshift")


def _reassign(svc, st):
    dests = dests_of(svc)
    weights = [last_weight(d) for d in dests]
    st.gcd = T.gcd_weight(weights)
    st.rshift = T.shift_weight(weights, st.gcd)
    if len(dests) > TAB_SIZE:
        return False
    fp = [(addr_fold(svc.af, d.addr), d.port) for d in dests]
    idx = T.build(fp, weights, st.gcd, st.rshift)
    st.lookup = [None if i is None else dests[i] for i in idx]
    return True


def init_service(svc):
    st = MHState()
    st.lookup = [None] * TAB_SIZE
    if not _reassign(svc, st):
        raise SchedulerError(22, "mh: more destinations than table slots")
    svc.sched_data = st


def dest_changed(svc, dest):
    _reassign(svc, svc.sched_data)


def is_unavailable(d):
    return d.weight <= 0 or bool(d.flags & IP_VS_DEST_F_OVERLOAD)


def lookup(lookup_table, fold, port, fallback):
    ihash = T.hashkey(fold, port, T.HASH1) % TAB_SIZE
    d = lookup_table[ihash]
    if d is None:
        return None
    if not is_unavailable(d):
        return d
    if not fallback:
        return None
    for offset in range(TAB_SIZE):
        roffset = (offset + ihash) % TAB_SIZE
        d = lookup_table[T.hashkey(fold, port, T.HASH1, roffset) % TAB_SIZE]
        if d is None:
            break
        if not is_unavailable(d):
            return d
    return None


def schedule(svc, pkt):
    flags = svc.flags
    port = hash_port(svc, pkt) if flags & IP_VS_SVC_F_SCHED_MH_PORT else 0
    fold = addr_fold(svc.af, pkt.daddr if pkt.inverse else pkt.saddr)
    d = lookup(svc.sched_data.lookup, fold, port,
               flags & IP_VS_SVC_F_SCHED_MH_FALLBACK)
    if d is None:
        scheduler_err(svc, NAME, "no destination available")
    return d


scheduler = register_scheduler(Scheduler(
    name=NAME, init_service=init_service, add_dest=dest_changed,
    del_dest=dest_changed, upd_dest=dest_changed, schedule=schedule,
    doc=__doc__))
