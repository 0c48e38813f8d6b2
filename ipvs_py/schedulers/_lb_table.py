"""The cache table shared by lblc and lblcr (``ip_vs_lblc.c``/``ip_vs_lblcr.c``).

Both keep a 1024-bucket hash table (``hash_32(addr_fold, 10)``, newest entry
first in its bucket) of destination addresses, an entry count that is the
kernel's (not the number of entries: lblc's replace path does not decrement
it), a rover and a 60 s timer: every 30th run is a full check against
``lbl{c,cr}_expiration``; otherwise, above 16384 entries, entries idle for
6 minutes are dropped bucket by bucket from the rover until ``(entries -
16384) * 4/3``, at most 8192, are gone.
"""
from .base import addr_fold, dests_of, s32, svc_now, sysctl

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
