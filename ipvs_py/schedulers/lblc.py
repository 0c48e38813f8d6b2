"""Locality-based least-connection, after ``net/netfilter/ipvs/ip_vs_lblc.c``.

A cache maps each *destination* address (``iph->daddr``; useful with fwmark
services spanning many addresses, e.g. cache clusters) to the dest chosen
for it.  A hit is used while that dest is AVAILABLE, has weight > 0 and is
not "overloaded" in lblc's sense: ``activeconns > weight`` while some dest
has ``activeconns * 2 < weight``.  Otherwise wlc picks a dest and the entry
is replaced -- the kernel frees the old entry *without* decrementing its
entry count, and so does the model.

The cache table and its expiry (:mod:`._lb_table`): a timer every 60 s, a
full check against ``lblc_expiration`` (sysctl, default 24 h) every 30th
run, and a partial sweep of 6-minute-idle entries above 16384.  Time is the virtual clock in jiffies
(:data:`~.base.HZ`); timers fire exactly on their jiffy (the kernel's timer
wheel may run a 60 s timer up to ~2 s late).
"""
from ._lb_table import (COUNT_FOR_FULL_EXPIRATION, DEFAULT_EXPIRATION,  # noqa: F401
                        ENTRY_TIMEOUT, TAB_SIZE, Table, expiration_j, hashkey,
                        is_overloaded, now_of)
from .base import (Scheduler, addr_key, dests_of, is_available, jiffies,
                   scheduler_err, svc_now, trace_note)
from .sched import register_scheduler
from .wlc import least_loaded

NAME = "lblc"


class Entry:
    __slots__ = ("key", "dest", "lastuse")

    def __init__(self, key, dest, lastuse):
        self.key, self.dest, self.lastuse = key, dest, lastuse


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
    svc.sched_data.run_timers(jiffies(now), expiration_j(svc))


def schedule(svc, pkt):
    tbl = svc.sched_data
    now_j = jiffies(now_of(svc, pkt))
    tbl.run_timers(now_j, expiration_j(svc))
    key = addr_key(pkt.daddr)
    en = tbl.get(key)
    if en is not None:
        en.lastuse = now_j
        d = en.dest
        usable = is_available(d) and d.weight > 0
        overloaded = usable and is_overloaded(d, svc)
        trace_note(pkt, "lblc_entry", key=pkt.daddr, dest=d, usable=usable,
                   overloaded=overloaded)
        if usable and not overloaded:
            return d
    else:
        trace_note(pkt, "lblc_entry", key=pkt.daddr, dest=None)
    d = least_loaded(dests_of(svc))
    trace_note(pkt, "least_loaded", dest=d)
    if d is None:
        scheduler_err(svc, NAME, "no destination available")
        return None
    if not tbl.dead:
        b = hashkey(svc.af, pkt.daddr)
        if en is not None:
            if en.dest is d:
                return d
            tbl.unlink(b, en)        # ip_vs_lblc_del(): entries not decremented
        tbl.insert(b, Entry(key, d, now_j))
    return d


scheduler = register_scheduler(Scheduler(
    name=NAME, init_service=init_service, done_service=done_service,
    schedule=schedule, tick=tick, doc=__doc__, uses_netns=True))
