"""Overflow-connection, after ``net/netfilter/ipvs/ip_vs_ovf.c``.

Like fo -- the highest weight wins, the first of equals -- but a dest is
passed over while its *active* connections exceed its weight, so traffic
overflows to the next-heaviest dest.  OVERLOADed dests and weight 0 are
skipped.  (Only active connections count, so the kernel warns it may not
suit UDP, whose connections stay inactive.)
"""
from .base import (IP_VS_DEST_F_OVERLOAD, Scheduler, dests_of, scheduler_err)
from .sched import register_scheduler

NAME = "ovf"


def schedule(svc, pkt=None):
    h = None
    hw = 0
    for d in dests_of(svc):
        w = d.weight
        if (d.flags & IP_VS_DEST_F_OVERLOAD) or d.activeconns > w or w == 0:
            continue
        if h is None or w > hw:
            h, hw = d, w
    if h is None:
        scheduler_err(svc, NAME, "no destination available")
    return h


scheduler = register_scheduler(Scheduler(name=NAME, schedule=schedule,
                                         doc=__doc__))
