"""Shortest expected delay, after ``net/netfilter/ipvs/ip_vs_sed.c``.

Expected delay of a new job on dest i: ``(Ci + 1) / Ui`` with ``Ci`` its
*active* connections and ``Ui`` its weight (Weinrib and Shenker, "Greed is
not enough", INFOCOM '88).  Compared as ``loh * dw > doh * lw`` in 64 bits
with ``unsigned int`` overheads; otherwise exactly wlc's walk (first
available dest of weight > 0, strict improvement, OVERLOAD skipped).
"""
from .base import (IP_VS_DEST_F_OVERLOAD, Scheduler, dests_of, scheduler_err,
                   u32)
from .sched import register_scheduler

NAME = "sed"


def schedule(svc, pkt=None):
    it = iter(dests_of(svc))
    for least in it:
        if not (least.flags & IP_VS_DEST_F_OVERLOAD) and least.weight > 0:
            break
    else:
        scheduler_err(svc, NAME, "no destination available")
        return None
    loh = u32(least.activeconns + 1)
    for d in it:
        if d.flags & IP_VS_DEST_F_OVERLOAD:
            continue
        doh = u32(d.activeconns + 1)
        if loh * d.weight > doh * least.weight:
            least, loh = d, doh
    return least


scheduler = register_scheduler(Scheduler(name=NAME, schedule=schedule,
                                         doc=__doc__))
