"""Locality-based least-connection, after ``net/netfilter/ipvs/ip_vs_lblc.c``.

A cache maps each *destination* address (``iph->daddr``; useful with fwmark
services spanning many addresses, e.g. cache clusters) to the dest chosen
for it.  A hit is used while that dest is AVAILABLE, has weight > 0 and is
not "overloaded" in lblc's sense: ``activeconns > weight`` while some dest
has ``activeconns * 2 < weight``.  Otherwise wlc picks a dest and the entry
is replaced -- the kernel frees the old entry *without* decrementing its
entry count, and so does the model.

The cache is a 1024-bucket hash table (``hash_32(addr_fold, 10)``, newest
entry first in its bucket).  A timer runs every 60 s: every 30th run is a
full check dropping entries unused for ``lblc_expiration`` (sysctl, default
24 h); otherwise, when there are more than 16384 entries, it drops entries
idle for 6 min, bucket by bucket from a rover, until ``(entries - 16384) *
4/3`` (at most 8192) are gone.  Time is the virtual clock in jiffies
(:data:`~.base.HZ`); timers fire exactly on their jiffy (the kernel's timer
wheel may run a 60 s timer up to ~2 s late).
"""
from .base import (Scheduler, addr_fold, addr_key, dests_of, is_available,
                   jiffies, s32, scheduler_err, svc_now, sysctl)
from .sched import register_scheduler
from .wlc import least_loaded

NAME = "lblc"
TAB_BITS = 10
TAB_SIZE = 1 << TAB_BITS
TAB_MASK = TAB_SIZE - 1
CHECK_EXPIRE_INTERVAL = 60          # seconds (x HZ in jiffies)
ENTRY_TIMEOUT = 6 * 60
DEFAULT_EXPIRATION = 24 * 60 * 60
COUNT_FOR_FULL_EXPIRATION = 30
GOLDEN_RATIO_32 = 0x61C88647


def hashkey(af, addr):
    return ((addr_fold(af, addr) * GOLDEN_RATIO_32) & 0xFFFFFFFF) \
        >> (32 - TAB_BITS)


class Entry:
    __slots__ = ("key", "dest", "lastuse")

    def __init__(self, key, dest, lastuse):
        self.key, self.dest, self.lastuse = key, dest, lastuse


class Table:
    """``struct ip_vs_lblc_table`` (also used by lblcr with its entries)."""

    __slots__ = ("bucket", "index", "entries", "max_size", "rover",
                 "counter", "dead", "next_timer", "netns")

    def __init__(self, now_j, netns=None):
        self.netns = netns                             # clock and sysctls
        self.bucket = [[] for _ in range(TAB_SIZE)]   # newest first
        self.index = {}                                # key -> entry
        self.entries = 0                               # the kernel's count
        self.max_size = TAB_SIZE * 16
        self.rover = 0
        self.counter = 1
        self.dead = False
        self.next_timer = now_j + CHECK_EXPIRE_INTERVAL * _hz()

    def get(self, key):
        return self.index.get(key)

    def insert(self, b, en):
        self.bucket[b].insert(0, en)
        self.index[en.key] = en
        self.entries += 1

    def unlink(self, b, en):
        lst = self.bucket[b]
        for i, e in enumerate(lst):
            if e is en:
                del lst[i]
                break
        if self.index.get(en.key) is en:
            del self.index[en.key]

    def sweep(self, keep, goal=None):
        """Walk the buckets from the rover, dropping entries ``keep``
        rejects; with ``goal``, stop after the bucket that reaches it."""
        j = self.rover
        for _ in range(TAB_SIZE):
            j = (j + 1) & TAB_MASK
            lst = self.bucket[j]
            for en in list(lst):
                if keep(en):
                    continue
                self.unlink(j, en)
                self.entries -= 1
                if goal is not None:
                    goal -= 1
            if goal is not None and goal <= 0:
                break
        self.rover = j

    def check_expire(self, now_j, expiration_j):
        """``ip_vs_lblc{,r}_check_expire()`` run at ``now_j``."""
        if self.counter % COUNT_FOR_FULL_EXPIRATION == 0:
            self.sweep(lambda en: now_j - (en.lastuse + expiration_j) < 0)
            self.counter = 1
        elif self.entries <= self.max_size:
            self.counter += 1
        else:
            goal = (self.entries - self.max_size) * 4 // 3
            if goal > self.max_size // 2:
                goal = self.max_size // 2
            timeout = ENTRY_TIMEOUT * _hz()
            self.sweep(lambda en: now_j - (en.lastuse + timeout) < 0, goal)
        self.next_timer = now_j + CHECK_EXPIRE_INTERVAL * _hz()

    def run_timers(self, now_j, expiration_j):
        while not self.dead and self.next_timer <= now_j:
            self.check_expire(self.next_timer, expiration_j)


def _hz():
    from . import base
    return base.HZ


def expiration_j(svc, name="lblc_expiration"):
    netns = getattr(svc.sched_data, "netns", None)
    return int(sysctl(svc, name, DEFAULT_EXPIRATION, netns)) * _hz()


def now_of(svc, pkt=None):
    """The packet's time, else the bound netns's clock (seconds)."""
    if pkt is not None and pkt.now is not None:
        return pkt.now
    return svc_now(svc, getattr(svc.sched_data, "netns", None))


def is_overloaded(dest, svc):
    if dest.activeconns > dest.weight:
        for d in dests_of(svc):
            if s32(d.activeconns * 2) < d.weight:
                return True
    return False


def init_service(svc, netns=None):
    svc.sched_data = Table(jiffies(svc_now(svc, netns)), netns)


def done_service(svc):
    tbl = svc.sched_data
    tbl.dead = True
    for b in tbl.bucket:
        tbl.entries -= len(b)
        b.clear()
    tbl.index.clear()


def tick(svc, now):
    svc.sched_data.run_timers(jiffies(now), expiration_j(svc))


def schedule(svc, pkt):
    tbl = svc.sched_data
    now_j = jiffies(now_of(svc, pkt))
    tbl.run_timers(now_j, expiration_j(svc))
    key = addr_key(pkt.daddr)
    en = tbl.get(key)
    if en is not None:
        en.lastuse = now_j
        d = en.dest
        if is_available(d) and d.weight > 0 \
                and not is_overloaded(d, svc):
            return d
    d = least_loaded(dests_of(svc))
    if d is None:
        scheduler_err(svc, NAME, "no destination available")
        return None
    if not tbl.dead:
        b = hashkey(svc.af, pkt.daddr)
        if en is not None:
            if en.dest is d:
                return d
            tbl.unlink(b, en)        # ip_vs_lblc_del(): entries not decremented
        tbl.insert(b, Entry(key, d, now_j))
    return d


scheduler = register_scheduler(Scheduler(
    name=NAME, init_service=init_service, done_service=done_service,
    schedule=schedule, tick=tick, doc=__doc__, uses_netns=True))
