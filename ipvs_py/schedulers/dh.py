"""Destination hashing, after ``net/netfilter/ipvs/ip_vs_dh.c``.

A 256-bucket table maps ``hash_32(ntohl(addr_fold(daddr)), 8)`` to a dest.
Unlike sh the table is *not* weighted: the dests take one bucket each in
list order, round and round.  It is rebuilt on add and del only -- dh has
no ``upd_dest`` -- so a weight edit changes only whether a bucket's dest is
usable: weight <= 0, OVERLOAD, or not AVAILABLE yields no dest (no
fallback).  Useful with fwmark services that cover many destinations.
"""
from .base import (IP_VS_DEST_F_OVERLOAD, Scheduler, addr_fold, dests_of,
                   is_available, scheduler_err)
from .sched import register_scheduler

NAME = "dh"
TAB_BITS = 8
TAB_SIZE = 1 << TAB_BITS
GOLDEN_RATIO_32 = 0x61C88647


def hashkey(fold):
    return ((fold * GOLDEN_RATIO_32) & 0xFFFFFFFF) >> (32 - TAB_BITS)


def build_table(dests):
    """``ip_vs_dh_reassign()``."""
    if not dests:
        return [None] * TAB_SIZE
    n = len(dests)
    return [dests[i % n] for i in range(TAB_SIZE)]


def init_service(svc):
    svc.sched_data = build_table(dests_of(svc))


def dest_changed(svc, dest):
    svc.sched_data = build_table(dests_of(svc))


def schedule(svc, pkt):
    d = svc.sched_data[hashkey(addr_fold(svc.af, pkt.daddr))]
    if d is None or not is_available(d) \
            or d.weight <= 0 or (d.flags & IP_VS_DEST_F_OVERLOAD):
        scheduler_err(svc, NAME, "no destination available")
        return None
    return d


scheduler = register_scheduler(Scheduler(
    name=NAME, init_service=init_service, add_dest=dest_changed,
    del_dest=dest_changed, schedule=schedule, doc=__doc__))
