"""Least-connection, after ``net/netfilter/ipvs/ip_vs_lc.c``.

Picks the dest with the smallest overhead ``(activeconns << 8) +
inactconns`` -- compared as ``unsigned int``, as the kernel's ``doh``/``loh``
are -- skipping OVERLOADed dests and those of weight 0.  Ties go to the
first in list order (strict ``<``).  Weights other than 0 play no part.
"""
from .base import (IP_VS_DEST_F_OVERLOAD, Scheduler, dest_conn_overhead,
                   dests_of, scheduler_err, u32)
from .sched import register_scheduler

NAME = "lc"


def schedule(svc, pkt=None):
    least = None
    loh = 0
    for d in dests_of(svc):
        if (d.flags & IP_VS_DEST_F_OVERLOAD) or d.weight == 0:
            continue
        doh = u32(dest_conn_overhead(d))
        if least is None or doh < loh:
            least, loh = d, doh
    if least is None:
        scheduler_err(svc, NAME, "no destination available")
    return least


scheduler = register_scheduler(Scheduler(name=NAME, schedule=schedule,
                                         doc=__doc__))
