"""Weighted round-robin, after ``net/netfilter/ipvs/ip_vs_wrr.c``.

Three quantities (the kernel's comment, in our words):

* ``di`` -- the step: the gcd of all positive weights (1 if none);
* ``mw`` -- the maximum weight, lowered by ``di - 1`` so that the last pass
  runs with ``cw = 1`` and still catches a dest whose weight fell below
  ``di`` during an update;
* ``cw`` -- the current weight.  A pass walks the list (from the dest after
  ``cl``, the last one chosen) taking the first dest that is not OVERLOADed
  with ``weight >= cw``; at the end of the list ``cw -= di`` and, at or
  below zero, it restarts at ``mw``.

Over a full cycle (``mw/di`` passes when weights are multiples of ``di``) a
dest of weight ``w`` is chosen exactly ``w/di`` times.  Every dest change
(add/del/edit) resets ``cl`` to the head and recomputes ``di``/``mw``;
``cw`` is kept if still <= ``mw`` (rounded to ``k*di + 1`` when ``di > 1``).
"""
from .base import (IP_VS_DEST_F_OVERLOAD, Scheduler, c_div, dests_of, gcd,
                   scheduler_err)
from .sched import register_scheduler

NAME = "wrr"


class WRRMark:
    """``struct ip_vs_wrr_mark``; ``cl`` is an index, -1 = the list head."""

    __slots__ = ("cl", "cw", "mw", "di")

    def __repr__(self):
        return f"WRRMark(cl={self.cl}, cw={self.cw}, mw={self.mw}, di={self.di})"


def gcd_weight(svc):
    g = 0
    for d in dests_of(svc):
        w = d.weight
        if w > 0:
            g = gcd(w, g) if g > 0 else w
    return g or 1


def max_weight(svc):
    m = 0
    for d in dests_of(svc):
        if d.weight > m:
            m = d.weight
    return m


def init_service(svc):
    mark = WRRMark()
    mark.cl = -1
    mark.di = gcd_weight(svc)
    mark.mw = max_weight(svc) - (mark.di - 1)
    mark.cw = mark.mw
    svc.sched_data = mark


def dest_changed(svc, dest):
    mark = svc.sched_data
    mark.cl = -1
    mark.di = gcd_weight(svc)
    mark.mw = max_weight(svc) - (mark.di - 1)
    if mark.cw > mark.mw or not mark.cw:
        mark.cw = mark.mw
    elif mark.di > 1:
        mark.cw = c_div(mark.cw, mark.di) * mark.di + 1


def schedule(svc, pkt=None):
    mark = svc.sched_data
    dests = dests_of(svc)
    n = len(dests)
    pos = mark.cl if mark.cl < n else -1
    if mark.mw == 0:
        scheduler_err(svc, NAME, "no destination available")
        return None
    last = pos
    stop = None                # index at which to give up, once set
    last_pass = restarted = False
    while True:
        # list_for_each_entry_continue: the dests after `pos`, then the head
        i = pos + 1
        while i < n:
            d = dests[i]
            if not (d.flags & IP_VS_DEST_F_OVERLOAD) and d.weight >= mark.cw:
                mark.cl = i
                return d
            if i == stop:
                mark.cl = i
                return _over(svc)
            i += 1
        pos = -1
        mark.cw -= mark.di
        if mark.cw <= 0:
            mark.cw = mark.mw
            if last_pass or last == -1:
                mark.cl = -1
                return _over(svc)
            restarted = True
        last_pass = mark.cw <= mark.di
        if last_pass and restarted and last != -1:
            stop = last


def _over(svc):
    scheduler_err(svc, NAME, "no destination available: "
                  "all destinations are overloaded")
    return None


scheduler = register_scheduler(Scheduler(
    name=NAME, init_service=init_service, add_dest=dest_changed,
    del_dest=dest_changed, upd_dest=dest_changed, schedule=schedule,
    doc=__doc__))
