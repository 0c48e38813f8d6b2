"""Source hashing, after ``net/netfilter/ipvs/ip_vs_sh.c``.

A 256-bucket table maps ``hash_32(ntohs(port) + ntohl(addr_fold), 8)`` of
the client address (and port with ``sh-port``; ``addr_fold`` XORs the four
words of an IPv6 address) to a dest.  The table is filled in list order,
each dest taking ``weight`` consecutive buckets (at least one, so weight-0
dests hold buckets too) and wrapping round the list until all 256 are set;
every add/del/edit refills it from scratch.

A bucket whose dest has weight 0 or is OVERLOADed yields no dest -- unless
``sh-fallback`` is set: then the kernel probes ``(offset + 2*ihash) & 255``
for offset 0..255 (its ``roffset`` is added to the hash once more), taking
the first usable dest.  ``inverse`` packets (ICMP about a reply) hash the
destination address/port instead.
"""
from .base import (IP_VS_DEST_F_OVERLOAD, IP_VS_SVC_F_SCHED_SH_FALLBACK,
                   IP_VS_SVC_F_SCHED_SH_PORT, Scheduler, addr_fold, dests_of,
                   hash_port, scheduler_err)
from .sched import register_scheduler

NAME = "sh"
TAB_BITS = 8
TAB_SIZE = 1 << TAB_BITS
TAB_MASK = TAB_SIZE - 1
GOLDEN_RATIO_32 = 0x61C88647


def hashkey(fold, port, offset=0):
    """``ip_vs_sh_hashkey()``: bucket of a folded address and port."""
    h = (((port + fold) & 0xFFFFFFFF) * GOLDEN_RATIO_32 & 0xFFFFFFFF) \
        >> (32 - TAB_BITS)
    return (offset + h) & TAB_MASK


def build_table(dests):
    """``ip_vs_sh_reassign()``: the 256 buckets (dest or None)."""
    if not dests:
        return [None] * TAB_SIZE
    table = []
    n = len(dests)
    p = 0
    d_count = 0
    for _ in range(TAB_SIZE):
        d = dests[p]
        table.append(d)
        d_count += 1
        if d_count >= d.weight:     # don't move on until filling weight
            p = (p + 1) % n
            d_count = 0
    return table


def is_unavailable(d):
    return d.weight <= 0 or bool(d.flags & IP_VS_DEST_F_OVERLOAD)


def init_service(svc):
    svc.sched_data = build_table(dests_of(svc))


def dest_changed(svc, dest):
    svc.sched_data = build_table(dests_of(svc))


def lookup(table, fold, port, fallback):
    """The dest for a folded address/port, or None (shared with the tests)."""
    ihash = hashkey(fold, port)
    d = table[ihash]
    if d is None:
        return None
    if not is_unavailable(d):
        return d
    if not fallback:
        return None
    for offset in range(TAB_SIZE):
        roffset = (offset + ihash) % TAB_SIZE
        d = table[hashkey(fold, port, roffset)]
        if d is None:
            break
        if not is_unavailable(d):
            return d
    return None


def schedule(svc, pkt):
    flags = svc.flags
    port = hash_port(svc, pkt) if flags & IP_VS_SVC_F_SCHED_SH_PORT else 0
    fold = addr_fold(svc.af, pkt.daddr if pkt.inverse else pkt.saddr)
    d = lookup(svc.sched_data, fold, port,
               flags & IP_VS_SVC_F_SCHED_SH_FALLBACK)
    if d is None:
        scheduler_err(svc, NAME, "no destination available")
    return d


scheduler = register_scheduler(Scheduler(
    name=NAME, init_service=init_service, done_service=None,
    add_dest=dest_changed, del_dest=dest_changed, upd_dest=dest_changed,
    schedule=schedule, doc=__doc__))
