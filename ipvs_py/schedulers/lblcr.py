"""Locality-based least-connection with replication, after
``net/netfilter/ipvs/ip_vs_lblcr.c``.

Like lblc, but each destination address maps to a *set* of dests (newest
first).  A hit takes the set's wlc-least-loaded usable member; if the set
has more than one member and was last changed more than
``lblcr_expiration`` ago (sysctl, default 24 h), its most-loaded member
(weight > 0) is dropped.  If no member is usable, or the chosen one is
overloaded in lblc's sense, wlc over the whole service picks a dest that
joins the set.  Table, timer and expiry are lblc's (see :mod:`.lblc`).
"""
from .base import (IP_VS_DEST_F_OVERLOAD, Scheduler, addr_key,
                   dest_conn_overhead, dests_of, is_available, jiffies,
                   scheduler_err, svc_now, trace_note)
from ._lb_table import Table, expiration_j, hashkey, is_overloaded, now_of
from .sched import register_scheduler
from .wlc import least_loaded

NAME = "lblcr"


class DestSet:
    """``struct ip_vs_dest_set``: members newest first, ``lastmod``."""

    __slots__ = ("dests", "lastmod")

    def __init__(self):
        self.dests = []
        self.lastmod = 0

    def insert(self, dest, now_j, check=True):
        if check and any(d is dest for d in self.dests):
            return
        self.dests.insert(0, dest)
        self.lastmod = now_j

    def erase(self, dest, now_j):
        for i, d in enumerate(self.dests):
            if d is dest:
                del self.dests[i]
                self.lastmod = now_j
                return

    def min(self):
        """``ip_vs_dest_set_min()``: weighted least-connection member."""
        it = iter(self.dests)
        for least in it:
            if least.flags & IP_VS_DEST_F_OVERLOAD:
                continue
            if least.weight > 0 and is_available(least):
                break
        else:
            return None
        loh = dest_conn_overhead(least)
        for d in it:
            if d.flags & IP_VS_DEST_F_OVERLOAD:
                continue
            doh = dest_conn_overhead(d)
            if loh * d.weight > doh * least.weight \
                    and is_available(d):
                least, loh = d, doh
        return least

    def max(self):
        """``ip_vs_dest_set_max()``: weighted most-connection member."""
        it = iter(self.dests)
        for most in it:
            if most.weight > 0:
                break
        else:
            return None
        moh = dest_conn_overhead(most)
        for d in it:
            doh = dest_conn_overhead(d)
            if moh * d.weight < doh * most.weight and d.weight > 0:
                most, moh = d, doh
        return most


class Entry:
    __slots__ = ("key", "set", "lastuse")

    def __init__(self, key, lastuse):
        self.key, self.set, self.lastuse = key, DestSet(), lastuse


def init_service(svc, netns=None):
    svc.sched_data = Table(jiffies(svc_now(svc, netns)), netns)


def done_service(svc):
    tbl = svc.sched_data
    tbl.dead = True
    for b in tbl.bucket:
        tbl.entries -= len(b)
        b.clear()
    tbl.index.clear()


def tick(svc, now):
    svc.sched_data.run_timers(jiffies(now),
                              expiration_j(svc, "lblcr_expiration"))


def schedule(svc, pkt):
    tbl = svc.sched_data
    now_j = jiffies(now_of(svc, pkt))
    exp_j = expiration_j(svc, "lblcr_expiration")
    tbl.run_timers(now_j, exp_j)
    key = addr_key(pkt.daddr)
    en = tbl.get(key)
    if en is not None:
        en.lastuse = now_j
        d = en.set.min()
        s = en.set
        if len(s.dests) > 1 and now_j - (s.lastmod + exp_j) > 0:
            m = s.max()
            if m is not None:
                s.erase(m, now_j)
        overloaded = d is not None and is_overloaded(d, svc)
        trace_note(pkt, "lblcr_set", key=pkt.daddr, members=list(s.dests),
                   least=d, overloaded=overloaded)
        if d is not None and not overloaded:
            return d
        d = least_loaded(dests_of(svc))
        trace_note(pkt, "least_loaded", dest=d)
        if d is None:
            scheduler_err(svc, NAME, "no destination available")
            return None
        if not tbl.dead:
            s.insert(d, now_j, check=True)
        return d
    d = least_loaded(dests_of(svc))
    trace_note(pkt, "lblcr_set", key=pkt.daddr, members=[], least=None,
               overloaded=False)
    trace_note(pkt, "least_loaded", dest=d)
    if d is None:
        return None                  # the kernel only logs at debug level
    if not tbl.dead:
        en = Entry(key, now_j)
        en.set.insert(d, now_j, check=False)
        tbl.insert(hashkey(svc.af, pkt.daddr), en)
    return d


scheduler = register_scheduler(Scheduler(
    name=NAME, init_service=init_service, done_service=done_service,
    schedule=schedule, tick=tick, doc=__doc__, uses_netns=True))
