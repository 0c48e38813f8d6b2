"""Drain one destination of a live kernel service, then delete it.

The order is the one that loses nothing that can be kept: weight 0 first
(the scheduler stops choosing the destination, existing connections and
persistence templates keep it), then wait while ActiveConn + InActConn
fall, then delete.  If a deadline passes first, the destination is
deleted anyway and the connections it still had are reported as cut:
after the delete their packets find no destination (they are dropped, or
with expire_nodest_conn=1 the entry is expired on the next packet).

Consistency under Ctrl-C: the two kernel writes (weight 0, delete) run
with SIGINT deferred, so each is either done or not; on interrupt the
destination is read back and the result states what the kernel holds
(normally: still present with weight 0, the old weight named so it can be
restored).
"""
import contextlib
import dataclasses
import signal
import threading
import time

from ..netlink.config import dest_from_kernel
from ..netlink.plan import Step
from .target import endpoint_name, find_dest, find_service, service_name


@dataclasses.dataclass
class DrainResult:
    """What a drain did.  ``outcome``: "drained" (reached zero, deleted),
    "deadline" (deleted at the deadline; ``cut_*`` connections were cut),
    "interrupted", "vanished" (someone else deleted it) or "dry-run"."""

    service: str
    destination: str
    outcome: str
    weight_before: int
    active: int = 0               # counters at the end (or at the delete)
    inactive: int = 0
    persistent: int = 0
    elapsed: float = 0.0
    deleted: bool = False
    commands: list = dataclasses.field(default_factory=list)
    state: str = ""               # the kernel state, in words

    @property
    def cut(self):
        """Connections the delete cut (0 unless deleted before zero)."""
        return self.active + self.inactive if self.outcome == "deadline" else 0

    def as_dict(self):
        d = dataclasses.asdict(self)
        d["cut"] = self.cut
        return d


@contextlib.contextmanager
def _sigint_deferred():
    """Hold SIGINT until the block ends, so a kernel write is atomic as
    seen by the user.  Only the main thread may set signal handlers; in
    other threads the block runs as is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    old = signal.signal(signal.SIGINT, lambda *a: pending.append(a))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        if pending:
            raise KeyboardInterrupt


def _counts(conn, sc, dkey):
    """(active, inactive, persistent, weight) of the destination, or None
    when it is gone."""
    for d in conn.dests(sc.to_netlink(), stats=False):
        if dest_from_kernel(d, sc.af).key == dkey:
            return (d.get("activeconns", 0), d.get("inactconns", 0),
                    d.get("persistconns", 0), d.get("weight", 0))
    return None


def drain(conn, service, destination, *, proto=None, deadline=None,
          interval=0.5, dry_run=False, on_tick=None,
          clock=time.monotonic, sleep=time.sleep):
    """Drain ``destination`` (``RIP:PORT``) of ``service`` (``VIP:PORT`` or
    ``fwmark:N``) in the kernel of ``conn`` (an IPVSConnection).

    ``deadline``: seconds to wait before deleting anyway (None: wait until
    drained).  ``on_tick(active, inactive, persistent, elapsed)`` is called
    at each poll (the CLI draws its progress bar from it).  Unknown
    service/destination raise TargetError before any change.
    """
    sc, _ = find_service(conn, service, proto)
    dc, raw = find_dest(conn, sc, destination)
    zero = dataclasses.replace(dc, weight=0)
    steps = ([Step("edit-dest", sc, zero, before=dc)] if dc.weight else []) \
        + [Step("del-dest", sc, zero)]
    res = DrainResult(service_name(sc), endpoint_name(dc.af, dc.addr, dc.port),
                      "dry-run", dc.weight, raw.get("activeconns", 0),
                      raw.get("inactconns", 0), raw.get("persistconns", 0),
                      commands=[s.ipvsadm() for s in steps])
    if dry_run:
        res.state = "unchanged (dry run)"
        return res
    start = clock()
    try:
        if dc.weight:
            with _sigint_deferred():
                conn.set_dest(sc.to_netlink(), zero.to_netlink())
        while True:
            now = _counts(conn, sc, dc.key)
            res.elapsed = clock() - start
            if now is None:
                res.outcome, res.state = "vanished", \
                    "destination already deleted by someone else"
                return res
            res.active, res.inactive, res.persistent, _ = now
            if on_tick:
                on_tick(res.active, res.inactive, res.persistent, res.elapsed)
            if res.active + res.inactive == 0:
                res.outcome = "drained"
                break
            if deadline is not None and res.elapsed >= deadline:
                res.outcome = "deadline"
                break
            sleep(interval if deadline is None
                  else max(0.0, min(interval, deadline - res.elapsed)))
        with _sigint_deferred():
            conn.del_dest(sc.to_netlink(), zero.to_netlink())
        res.deleted = True
        res.state = "destination deleted"
        return res
    except KeyboardInterrupt:
        res.outcome = "interrupted"
        res.elapsed = clock() - start
        res.state = _stated(conn, sc, dc)
        return res


def _stated(conn, sc, dc):
    """The destination's kernel state after an interrupt, read back."""
    now = _counts(conn, sc, dc.key)
    if now is None:
        return "destination deleted"
    active, inactive, _, weight = now
    if weight == 0 and dc.weight:
        undo = Step("edit-dest", sc, dc).ipvsadm()
        return (f"destination kept with weight 0 (was {dc.weight}), "
                f"{active} active / {inactive} inactive connections left; "
                f"restore with: {undo}")
    return (f"destination unchanged (weight {weight}), {active} active / "
            f"{inactive} inactive connections")
