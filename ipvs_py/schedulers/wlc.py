"""Weighted least-connection, after ``net/netfilter/ipvs/ip_vs_wlc.c``.

The load of a dest is ``overhead / weight`` with overhead ``(activeconns <<
8) + inactconns`` (a C int).  Without floats the kernel compares
``loh * dw > doh * lw`` in 64 bits.  The first dest that is not OVERLOADed
and has weight > 0 is the initial candidate; later dests replace it only
when strictly less loaded (ties keep the earlier one).  Later dests of
weight 0 are *not* skipped explicitly: ``loh * 0 > doh * lw`` is false for
any non-negative overhead, so they never win.
"""
from .base import (IP_VS_DEST_F_OVERLOAD, Scheduler, dest_conn_overhead,
                   dests_of, scheduler_err)
from .sched import register_scheduler

NAME = "wlc"


def least_loaded(dests):
    """The wlc choice among ``dests`` (shared with lblc/lblcr)."""
    it = iter(dests)
    for least in it:
        if not (least.flags & IP_VS_DEST_F_OVERLOAD) and least.weight > 0:
            break
    else:
        return None
    loh = dest_conn_overhead(least)
    lw = least.weight
    for d in it:
        if d.flags & IP_VS_DEST_F_OVERLOAD:
            continue
        doh = dest_conn_overhead(d)
        if loh * d.weight > doh * lw:
            least, loh, lw = d, doh, d.weight
    return least


def schedule(svc, pkt=None):
    least = least_loaded(dests_of(svc))
    if least is None:
        scheduler_err(svc, NAME, "no destination available")
    return least


scheduler = register_scheduler(Scheduler(name=NAME, schedule=schedule,
                                         doc=__doc__))
