"""Never queue, after ``net/netfilter/ipvs/ip_vs_nq.c``.

Two speeds: the first idle dest (no *active* connections) in list order wins
at once; otherwise it is sed's choice, ``(activeconns + 1) / weight``
smallest, ties to the earlier dest.  OVERLOADed dests and weight 0 are
skipped.
"""
from .base import (IP_VS_DEST_F_OVERLOAD, Scheduler, dests_of, scheduler_err,
                   u32)
from .sched import register_scheduler

NAME = "nq"


def schedule(svc, pkt=None):
    least = None
    loh = 0
    for d in dests_of(svc):
        if (d.flags & IP_VS_DEST_F_OVERLOAD) or not d.weight:
            continue
        doh = u32(d.activeconns + 1)
        if d.activeconns == 0:          # idle: return it directly
            return d
        if least is None or loh * d.weight > doh * least.weight:
            least, loh = d, doh
    if least is None:
        scheduler_err(svc, NAME, "no destination available")
    return least


scheduler = register_scheduler(Scheduler(name=NAME, schedule=schedule,
                                         doc=__doc__))
