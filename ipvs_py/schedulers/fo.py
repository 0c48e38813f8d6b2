"""Weighted fail-over, after ``net/netfilter/ipvs/ip_vs_fo.c``.

All new connections go to the not-OVERLOADed dest with the highest weight;
among equal weights the first in list order (strict ``>``).  Weight 0 never
wins.  Connection counts play no part.
"""
from .base import (IP_VS_DEST_F_OVERLOAD, Scheduler, dests_of, scheduler_err)
from .sched import register_scheduler

NAME = "fo"


def schedule(svc, pkt=None):
    best = None
    hw = 0
    for d in dests_of(svc):
        if not (d.flags & IP_VS_DEST_F_OVERLOAD) and d.weight > hw:
            best, hw = d, d.weight
    if best is None:
        scheduler_err(svc, NAME, "no destination available")
    return best


scheduler = register_scheduler(Scheduler(name=NAME, schedule=schedule,
                                         doc=__doc__))
