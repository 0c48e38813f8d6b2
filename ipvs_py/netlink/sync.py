"""Read kernel IPVS into the model, and sync the kernel to a desired model.

``read_kernel(netns)`` returns an ``ipvs_py.Netns`` holding what the
kernel of that namespace holds (services, destinations with their
counters and stats, timeouts), so every model renderer works on live
state: ``read_kernel().save()`` is ``ipvsadm -S -n``.

``sync(desired, netns)`` plans the fewest changes (see plan.py), shows
them (``dry_run``) or applies them with rollback.
"""
import dataclasses
import platform
import re

from ..netns import Netns
from ..service import AF_INET6, F_ONEPACKET, F_PERSISTENT, F_SCHED_MASK
from .config import dest_from_kernel, service_from_kernel, state_of
from .plan import apply, plan, plan_timeouts
from .socket import IPVSConnection


def kernel_profile(release=None):
    """The model profile for a kernel release string: "7.1" for kernels
    with the per-net resizable tables (7.1 and later), else "6.1"."""
    release = release or platform.release()
    m = re.match(r"(\d+)\.(\d+)", release)
    if not m:
        raise ValueError(f"cannot read a kernel version from {release!r}")
    return "7.1" if (int(m.group(1)), int(m.group(2))) >= (7, 1) else "6.1"


def read_kernel(netns=None, conn=None):
    """The kernel's IPVS state of ``netns`` as an ``ipvs_py.Netns``."""
    own = conn is None
    conn = conn or IPVSConnection(netns)
    try:
        info = conn.info()
        bits = max(1, (info["conn_tab_size"] or 4096).bit_length() - 1)
        net = Netns(conn_tab_bits=bits, kernel=kernel_profile(),
                    init_net=netns is None)
        replies = conn.snapshot().replies() if hasattr(conn, "snapshot") else \
            [(s, conn.dests(s)) for s in conn.services()]
        for s, dests in replies:
            sc = service_from_kernel(s)
            kw = dict(sched_name=sc.sched_name, af=sc.af,
                      sched_flags=sc.flags & F_SCHED_MASK,
                      ops=bool(sc.flags & F_ONEPACKET), pe_name=sc.pe_name,
                      netmask=sc.netmask)
            if sc.flags & F_PERSISTENT:
                kw["persistent"] = sc.timeout
            if sc.fwmark:
                svc = net.add_service(fwmark=sc.fwmark, **kw)
            else:
                svc = net.add_service(sc.protocol, sc.addr, sc.port, **kw)
            _copy_stats(svc.stats, s)
            for d in dests:
                dc = dest_from_kernel(d, sc.af)
                dest = net.add_dest(svc, dc.addr, dc.port,
                                    fwd_method=dc.fwd_method, weight=dc.weight,
                                    u_thresh=dc.u_thresh, l_thresh=dc.l_thresh,
                                    tun_type=dc.tun_type, tun_port=dc.tun_port,
                                    tun_flags=dc.tun_flags)
                dest.activeconns = d.get("activeconns", 0)
                dest.inactconns = d.get("inactconns", 0)
                dest.persistconns = d.get("persistconns", 0)
                _copy_stats(dest.stats, d)
        net.kernel_timeouts = conn.timeouts()
        # the kernel's timeouts are part of its configuration: read back as
        # declared, so save(timeouts=True) and a re-sync carry them
        t = net.kernel_timeouts
        net.timeouts = {"tcp": t["tcp"], "tcp_fin": t["tcpfin"],
                        "udp": t["udp"]}
        net.declared_timeouts = dict(net.timeouts)
        net.kernel_info = info
        return net
    finally:
        if own:
            conn.close()


def _copy_stats(stats, obj):
    src = obj.get("stats64") or obj.get("stats") or {}
    for name, value in src.items():
        if hasattr(stats, name):
            setattr(stats, name, value)


@dataclasses.dataclass
class SyncResult:
    """What a sync did (or, with ``dry_run``, would do)."""

    steps: list
    applied: int

    def commands(self):
        """The plan as ipvsadm command lines."""
        return [s.ipvsadm() for s in self.steps]


def sync(desired, netns=None, *, dry_run=False, prune=False, graceful=False,
         conn=None):
    """Make the kernel of ``netns`` hold ``desired`` (a Netns or a Config).

    A Netns's declared timeouts (``--set`` lines, ``set_timeouts()``) are
    set too, first; timeouts it does not declare are left as they are.

    Returns a :class:`SyncResult`; raises ``SyncError`` (kernel rolled back)
    if the kernel rejects a step.  Re-running a sync that is in effect
    plans zero steps.
    """
    own = conn is None
    conn = conn or IPVSConnection(netns)
    try:
        # only services whose fingerprints differ are decoded and planned:
        # the others would give no steps (plan() is per service)
        state = state_of(conn)
        keys, want = state.differing(desired, prune=prune)
        have = state.config([k for k in keys if k in state.fingerprints])
        drained = None
        if graceful:
            counts = _conn_counts(conn, have)
            drained = lambda sk, dk: counts.get((sk, dk), 0) == 0  # noqa: E731
        steps = plan(have, want, prune=prune, graceful=graceful,
                     drained=drained)
        declared = getattr(desired, "declared_timeouts", None)
        if declared:
            t = conn.timeouts()
            steps = plan_timeouts({"tcp": t["tcp"], "tcp_fin": t["tcpfin"],
                                   "udp": t["udp"]}, declared) + steps
        applied = 0 if dry_run else apply(conn, steps)
        return SyncResult(steps, applied)
    finally:
        if own:
            conn.close()


def _conn_counts(conn, have):
    out = {}
    for sk, (sc, _) in have.items():
        for d in conn.dests(sc.to_netlink()):
            dc = dest_from_kernel(d, sc.af)
            out[(sk, dc.key)] = d.get("activeconns", 0) + d.get("inactconns", 0)
    return out


__all__ = ["read_kernel", "sync", "SyncResult", "kernel_profile",
           "AF_INET6"]
