"""Power of two choices, after ``net/netfilter/ipvs/ip_vs_twos.c`` (Linux
6.7+; Debian 12's 6.1 has no ip_vs_twos).

Two dests are drawn at random, each with probability proportional to its
weight, and the one with the lower ``overhead / weight`` wins (Mitzenmacher
et al., "The Power of Two Random Choices").  Exactly as the kernel: the
total weight of usable dests (not OVERLOADed, weight > 0) plus one bounds
two draws ``r = u32 % (total + 1)``; walking the list, each usable dest
subtracts its weight and the first to bring ``r`` to <= 0 is chosen (so the
first usable dest has ``w + 1`` chances in ``total + 1``).  choice2 replaces
choice1 when ``weight2 * overhead1 > weight1 * overhead2`` (C ints).

The kernel draws from ``get_random_u32()``; no model can reproduce those
draws, so decisions cannot be compared with a running kernel one by one.
The model draws from a seedable generator instead (``random.Random``, seed
from ``svc.sched_seed`` or :func:`seed`, default 0) and the tests check the
*distribution* of its choices.
"""
import random

from .base import (IP_VS_DEST_F_OVERLOAD, Scheduler, dest_conn_overhead,
                   dests_of, s32, scheduler_err, trace_note)
from .sched import register_scheduler

NAME = "twos"


class TwosState:
    __slots__ = ("rng",)

    def __init__(self, seed_value):
        self.rng = random.Random(seed_value)

    def u32(self):
        return self.rng.getrandbits(32)


def init_service(svc):
    svc.sched_data = TwosState(getattr(svc, "sched_seed", 0) or 0)


def seed(svc, value):
    """Reseed the service's generator (reproducible runs)."""
    svc.sched_data = TwosState(value)


def schedule(svc, pkt=None):
    st = svc.sched_data
    if st is None:                    # bound before the model kept state
        init_service(svc)
        st = svc.sched_data
    total = 0
    choice1 = choice2 = None
    for d in dests_of(svc):
        if not (d.flags & IP_VS_DEST_F_OVERLOAD) and d.weight > 0:
            total = s32(total + d.weight)
            choice1 = d
    if choice1 is None:
        scheduler_err(svc, NAME, "no destination available")
        return None
    total = s32(total + 1)
    r1 = s32(st.u32() % (total & 0xFFFFFFFF))
    r2 = s32(st.u32() % (total & 0xFFFFFFFF))
    draws = (r1, r2)
    w1 = w2 = -1
    oh1 = oh2 = 0
    for d in dests_of(svc):
        if d.flags & IP_VS_DEST_F_OVERLOAD:
            continue
        w = d.weight
        if w <= 0:
            continue
        r1 = s32(r1 - w)
        r2 = s32(r2 - w)
        if r1 <= 0 and w1 == -1:
            choice1, w1, oh1 = d, w, dest_conn_overhead(d)
        if r2 <= 0 and w2 == -1:
            choice2, w2, oh2 = d, w, dest_conn_overhead(d)
        if w1 != -1 and w2 != -1:
            break
    second = choice2 is not None and s32(w2 * oh1) > s32(w1 * oh2)
    trace_note(pkt, "twos", total=total, draws=draws,
               choices=[(choice1, w1, oh1), (choice2, w2, oh2)],
               picked=2 if second else 1)
    return choice2 if second else choice1


scheduler = register_scheduler(Scheduler(
    name=NAME, init_service=init_service, schedule=schedule, doc=__doc__))
