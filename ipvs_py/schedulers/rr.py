"""Round-robin, after ``net/netfilter/ipvs/ip_vs_rr.c``.

State: the list position of the last dest chosen (``sched_data`` points at
``svc->destinations`` itself, "the head", right after ``init_service``).
``schedule`` walks on from there, wrapping past the head, and takes the first
dest that is not OVERLOADed and has weight > 0; the dest it started from is
the last candidate, so a lone available dest is picked again.  Started from
the head, one pass over the list is made.

Because new dests are linked at the *head* (``__ip_vs_update_dest``), a dest
added after the walk has passed the head is only reached on the next wrap.

``del_dest`` runs after the dest is unlinked; if it was the current position
the kernel steps back to its predecessor (``p->next->prev``).  The model keeps
a copy of the list order, refreshed by ``add_dest``/``del_dest``, to know
that predecessor (the kernel's ``add_dest`` is NULL; ours changes no
decision).
"""
from .base import (IP_VS_DEST_F_OVERLOAD, Scheduler, dests_of, scheduler_err)
from .sched import register_scheduler

NAME = "rr"


class RRState:
    """``svc->sched_data``: ``cur`` is the last dest chosen, None = head."""

    __slots__ = ("cur", "idx", "order")

    def __init__(self, svc):
        self.cur = None
        self.idx = -1
        self.order = list(dests_of(svc))

    def position(self, dests):
        """Index of ``cur`` in ``dests`` (-1 = head)."""
        cur = self.cur
        if cur is None:
            return -1
        i = self.idx
        if 0 <= i < len(dests) and dests[i] is cur:
            return i
        for i, d in enumerate(dests):
            if d is cur:
                self.idx = i
                return i
        self.cur, self.idx = None, -1     # unlinked behind our back
        return -1


def init_service(svc):
    svc.sched_data = RRState(svc)


def add_dest(svc, dest):
    svc.sched_data.order = list(dests_of(svc))


def del_dest(svc, dest):
    st = svc.sched_data
    if st.cur is dest:
        prev = None
        for i, d in enumerate(st.order):
            if d is dest:
                prev = st.order[i - 1] if i > 0 else None
                break
        st.cur, st.idx = prev, -1
    st.order = list(dests_of(svc))


def schedule(svc, pkt=None):
    dests = dests_of(svc)
    st = svc.sched_data
    start = st.position(dests)
    n = len(dests)
    # list_for_each_entry_continue from start, then (if start is a dest)
    # from the head up to and including start itself.
    order = range(start + 1, n) if start < 0 else \
        list(range(start + 1, n)) + list(range(0, start + 1))
    for i in order:
        d = dests[i]
        if not (d.flags & IP_VS_DEST_F_OVERLOAD) and d.weight > 0:
            st.cur, st.idx = d, i
            return d
    scheduler_err(svc, NAME, "no destination available")
    return None


scheduler = register_scheduler(Scheduler(
    name=NAME, init_service=init_service, add_dest=add_dest,
    del_dest=del_dest, schedule=schedule, doc=__doc__))
