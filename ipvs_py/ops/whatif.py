"""What-if: replay a workload, make one configuration change at time t,
and measure what the change does to the traffic.

Two namespaces start from the same configuration (rules text and
sysctls, the same seed).  The *changed* one replays the packets before
``at``, has the change applied through the public API (``restore()`` for
ipvsadm-restore lines, ``sysctl[...]`` for sysctls), then replays the
rest; the *unchanged* one replays everything, for the "without the
change" load.  Both replay window by window (``step`` seconds; the clock
is advanced to each window's end so timers run as in a kernel) and the
changed one goes on after the last packet, up to ``horizon`` seconds,
until the destinations the change removed or quiesced have drained.

Figures (:class:`WhatIfReport`, all computed from the per-packet
verdicts of the replay and the dest counters between windows):

* ``moved``: flows with packets on both sides of ``at`` whose packets
  after ``at`` were forwarded to another dest than their last one before;
* ``dropped``: flows with a packet dropped after ``at``;
* ``broken``: flows forwarded before ``at`` with a packet after it that
  IPVS let pass (no conn any more and not one that may start one: the
  real host's stack answers it, typically with a RST);
* ``stuck``: flows forwarded after ``at`` to a dest the change removed
  or set to weight 0 (the "old" dests);
* ``lost_persistence``: client addresses of persistent services that got a
  dest after ``at`` they had not used before it;
* ``drain_time``: per old dest, seconds from ``at`` until its ActiveConn +
  InActConn first reads 0 at a window end (None: not within the horizon);
* ``load``: per dest, new flows (first forwarded packet) before ``at``,
  after it, and after it without the change;
* ``series``: per dest, ActiveConn + InActConn at every window end (the
  PNG's data).

``ipvs-py whatif`` (:mod:`.whatif_cli`) prints them as a rich table,
``--json``, and ``--png`` plots the series.
"""
import dataclasses
import ipaddress
import math

import numpy as np

from ..errors import RuleError
from .target import PROTO_NAMES

_FORWARD = 1
_DROP = 2


class WhatIfError(ValueError):
    """A change or workload that cannot be used (one line: what)."""


@dataclasses.dataclass(frozen=True)
class Change:
    """One configuration change: ipvsadm-restore ``lines`` (``-e``, ``-d``,
    ``-a``, ``-E``, ``--set``...) and ``sysctls`` (name -> value)."""
    lines: tuple = ()
    sysctls: tuple = ()

    @classmethod
    def parse(cls, text):
        """``"-e -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 0"``, ``"sysctl
        expire_nodest_conn=1"``; several separated by ``;`` or newlines."""
        lines, sysctls = [], []
        for part in text.replace(";", "\n").splitlines():
            part = part.strip()
            if not part:
                continue
            if part.startswith("sysctl "):
                name, sep, value = part[7:].strip().partition("=")
                if not sep or not value.strip().lstrip("-").isdigit():
                    raise WhatIfError(f"bad change {part!r}: expected "
                                      f"sysctl NAME=INTEGER")
                sysctls.append((name.strip(), int(value)))
            else:
                lines.append(part)
        if not lines and not sysctls:
            raise WhatIfError("empty change: give ipvsadm-restore lines or "
                              "sysctl NAME=VALUE")
        return cls(tuple(lines), tuple(sysctls))

    def apply(self, net):
        """Apply to ``net`` through the public API; all or nothing."""
        for name, value in self.sysctls:
            if name not in net.sysctl:
                raise WhatIfError(f"bad change: no sysctl {name!r}")
        old = {name: net.sysctl[name] for name, _ in self.sysctls}
        try:
            for name, value in self.sysctls:
                net.sysctl[name] = value
            if self.lines:
                net.restore("\n".join(self.lines) + "\n")
        except (RuleError, ValueError) as exc:
            for name, value in old.items():
                net.sysctl[name] = value
            msg = (f"line {exc.line}: {exc.message}"
                   if isinstance(exc, RuleError) else str(exc))
            raise WhatIfError(f"bad change: {msg}") from None

    def text(self):
        return "; ".join(list(self.lines) + [f"sysctl {n}={v}"
                                             for n, v in self.sysctls])


@dataclasses.dataclass
class WhatIfReport:
    """The figures of one what-if (see the module docstring)."""
    at: float
    change: str
    flows_before: int
    flows_continuing: int
    moved: int
    dropped: int
    dropped_packets: int
    broken: int
    stuck: int
    lost_persistence: int
    old_dests: list
    drain_time: dict
    load: dict
    series_times: list
    series: dict

    def as_dict(self):
        return dataclasses.asdict(self)


def _dest_name(d):
    return f"[{d.addr}]:{d.port}" if d.af == 10 else f"{d.addr}:{d.port}"


def _namer(dests):
    """Dest -> report name: ``RIP:PORT``, with `` of <service>`` added when
    dests of several services share a RIP:PORT."""
    def svc_of(d):
        if d.vfwmark:
            return f"FWM {d.vfwmark}"
        vip = ipaddress.ip_address(d.vaddr_bytes)
        v = f"[{vip}]" if vip.version == 6 else str(vip)
        return f"{PROTO_NAMES.get(d.protocol, d.protocol)} {v}:{d.vport}"
    seen = {}
    for d in dests:
        seen.setdefault(_dest_name(d), set()).add(svc_of(d))

    def name(d):
        n = _dest_name(d)
        return n if len(seen[n]) == 1 else f"{n} of {svc_of(d)}"
    return name


def build(rules, sysctls=(), *, kernel="7.1", seed=0):
    """A fresh Netns with ``rules`` (ipvsadm-restore text) and sysctls."""
    from ..netns import Netns
    net = Netns(kernel=kernel, seed=seed)
    try:
        for name, value in sysctls:
            net.sysctl[name] = value
        net.restore(rules)
    except RuleError as exc:
        raise WhatIfError(f"rules line {exc.line}: {exc.message}") from None
    return net


def config_of(net):
    """(rules text, sysctls) that rebuild ``net``'s configuration."""
    from ..sysctl import Sysctl
    fresh = Sysctl(net.kernel, net.init_net, net.cpus)
    changed = tuple((k, net.sysctl[k]) for k in net.sysctl
                    if net.sysctl[k] != fresh[k])
    return net.save(timeouts=True), changed


def _windows(at, step, end):
    """Window end times: every ``step`` s past the last packet (the last
    one strictly after it), with ``at`` one of them."""
    n = int(end // step) + 1
    edges = {round(k * step, 9) for k in range(1, n + 1)}
    if at > 0:
        edges.add(round(at, 9))
    return sorted(edges)


class _Replayer:
    """Replays a batch window by window; keeps verdicts and a series."""

    def __init__(self, net, batch):
        self.net, self.batch = net, batch
        self.times = np.asarray(batch.time, dtype=float)
        self.dest = np.full(len(batch), -1, np.int64)
        self.codes = np.zeros(len(batch), np.uint8)
        self.pos = 0
        self.series_t, self.series = [], {}

    def until(self, t):
        """Replay the packets before ``t``; advance the clock to ``t``."""
        hi = int(np.searchsorted(self.times, t, side="left"))
        if hi > self.pos:
            res = self.net.replay(self.batch[self.pos:hi])
            self.dest[self.pos:hi] = res.dest_index
            self.codes[self.pos:hi] = res.codes
            self.pos = hi
        if t > self.net.now:
            self.net.advance(t - self.net.now)
        self.sample(t)

    def sample(self, t):
        """ActiveConn + InActConn of every dest, also of dests the change
        removed (their counters stay in step until they are freed)."""
        self.series_t.append(round(t, 9))
        n = len(self.series_t)
        live = [d for svc in self.net.services() for d in svc.dests]
        for d in list(self.series) + [d for d in live
                                      if d not in self.series]:
            vals = self.series.setdefault(d, [])
            vals.extend([0] * (n - 1 - len(vals)))   # added later: 0 before
            vals.append(d.activeconns + d.inactconns)


def what_if(rules, workload, at, change, *, sysctls=(), kernel="7.1",
            seed=0, step=1.0, horizon=300.0):
    """Replay ``workload`` (a PacketBatch, times sorted) on ``rules``,
    apply ``change`` (a :class:`Change` or its text) at ``at`` seconds;
    returns a :class:`WhatIfReport`.  Raises :class:`WhatIfError`."""
    if isinstance(change, str):
        change = Change.parse(change)
    if not isinstance(rules, str):              # a Netns: its configuration
        rules, sysctls = config_of(rules)
    times = np.asarray(workload.time, dtype=float)
    if len(times) == 0:
        raise WhatIfError("the workload has no packets")
    if np.any(np.diff(times) < 0):
        raise WhatIfError("workload times must be sorted")
    if not (isinstance(at, (int, float)) and math.isfinite(at) and at >= 0):
        raise WhatIfError(f"bad time {at!r}: seconds >= 0")
    if not step > 0 or not horizon >= 0:
        raise WhatIfError("step must be > 0 and horizon >= 0 seconds")
    end = max(float(times[-1]), at)
    edges = _windows(at, step, end)
    changed = build(rules, sysctls, kernel=kernel, seed=seed)
    plain = build(rules, sysctls, kernel=kernel, seed=seed)
    before_weights = {(d.svc, d): d.weight for s in changed.services()
                      for d in s.dests}
    # persistence as configured before the change (a change may end it)
    persistent = [(s.addr.packed.ljust(16, b"\0"), s.port)
                  for s in changed.services() if s.flags & 1 and not s.fwmark]
    a = _Replayer(changed, workload)
    b = _Replayer(plain, workload)
    if at == 0:
        change.apply(changed)
    for t in edges:                 # packets before `at`, then the change
        a.until(t)
        b.until(t)
        if t == round(at, 9) and at > 0:
            change.apply(changed)
    old = _old_dests(changed, before_weights)
    drain = {}
    t = a.series_t[-1]
    while t < end + horizon and any(
            d.activeconns + d.inactconns for d in old):
        t = round(t + step, 9)
        a.until(t)
    name = _namer(list(a.series) + list(b.series))
    for d in old:
        drain[name(d)] = _drain_time(a, d, at)
    return _figures(a, b, changed, at, change, old, drain, persistent, name)


def _old_dests(net, before_weights):
    """Dests the change removed or set to weight 0."""
    live = {d for s in net.services() for d in s.dests}
    return [d for (svc, d), w in before_weights.items()
            if w > 0 and (d not in live or d.weight == 0)]


def _drain_time(rep, d, at):
    vals = rep.series.get(d, [])
    for t, v in zip(rep.series_t, vals):
        if t >= at and v == 0:
            return round(t - at, 9)
    return None


def _figures(a, b, net, at, change, old, drain, persistent, name):
    batch = a.batch
    fid = batch.flow_ids()
    times = a.times
    after = times >= at
    fwd = a.codes == _FORWARD
    path = net._path()
    n_flows = int(fid.max()) + 1 if len(fid) else 0
    # last forwarded dest of each flow before `at`
    last_before = np.full(n_flows, -1, np.int64)
    idx = np.nonzero(fwd & ~after)[0]
    last_before[fid[idx]] = a.dest[idx]          # later rows win
    seen_before = np.zeros(n_flows, bool)
    seen_before[fid[~after]] = True
    seen_after = np.zeros(n_flows, bool)
    seen_after[fid[after]] = True
    moved = np.zeros(n_flows, bool)
    idx = np.nonzero(fwd & after)[0]
    lb = last_before[fid[idx]]
    moved[fid[idx][(lb >= 0) & (a.dest[idx] != lb)]] = True
    dropped = np.zeros(n_flows, bool)
    didx = np.nonzero((a.codes == _DROP) & after)[0]
    dropped[fid[didx]] = True
    passed = np.zeros(n_flows, bool)
    passed[fid[np.nonzero((a.codes == 0) & after)[0]]] = True
    broken = passed & (last_before >= 0)
    old_ids = np.array([path._dest_id(d) for d in old], np.int64)
    stuck = np.zeros(n_flows, bool)
    sidx = idx[np.isin(a.dest[idx], old_ids)]
    stuck[fid[sidx]] = True
    lost = _lost_persistence(a, persistent, at)
    load = {}
    for rep, key_before, key_after in ((a, "before", "after"),
                                       (b, None, "after_without_change")):
        first = _first_forward(rep, fid, n_flows)
        rp = rep.net._path()
        for f in np.nonzero(first >= 0)[0]:
            row = first[f]
            d = rp._dests[rep.dest[row]]
            entry = load.setdefault(name(d), {
                "before": 0, "after": 0, "after_without_change": 0})
            if rep.times[row] < at:
                if key_before:
                    entry[key_before] += 1
            else:
                entry[key_after] += 1
    series = {}
    for d, vals in a.series.items():
        series[name(d)] = vals
    return WhatIfReport(
        at=at, change=change.text(),
        flows_before=int(seen_before.sum()),
        flows_continuing=int((seen_before & seen_after).sum()),
        moved=int(moved.sum()), dropped=int(dropped.sum()),
        dropped_packets=int(len(didx)), broken=int(broken.sum()),
        stuck=int(stuck.sum()),
        lost_persistence=lost, old_dests=[name(d) for d in old],
        drain_time=drain, load=dict(sorted(load.items())),
        series_times=list(a.series_t), series=series)


def _first_forward(rep, fid, n_flows):
    first = np.full(n_flows, -1, np.int64)
    idx = np.nonzero(rep.codes == _FORWARD)[0]
    # reversed so the earliest row of each flow is written last
    first[fid[idx[::-1]]] = idx[::-1]
    return first


def _lost_persistence(rep, persistent, at):
    """Client addresses of the ``persistent`` (VIP16, port) services sent
    after ``at`` to a dest they had not been sent to before it."""
    c = rep.batch.columns()
    mask = np.zeros(len(rep.times), bool)
    for addr16, port in persistent:
        vip = np.frombuffer(addr16, np.uint8)
        mask |= np.all(c["daddr"] == vip, axis=1) & (c["dport"] == port)
    mask &= rep.codes == _FORWARD
    if not mask.any():
        return 0
    key = np.concatenate([c["saddr"], c["daddr"],
                          c["dport"].astype(">u2").view(np.uint8)
                          .reshape(-1, 2)], axis=1)
    _, client = np.unique(key, axis=0, return_inverse=True)
    client = client.reshape(-1)
    pair = client * (int(rep.dest.max()) + 2) + rep.dest + 1
    before = mask & (rep.times < at)
    after = mask & (rep.times >= at)
    known = np.isin(client, client[before])
    new_pair = ~np.isin(pair, pair[before])
    return int(len(np.unique(client[after & known & new_pair])))
