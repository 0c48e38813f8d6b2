"""The packet path of one Netns: the C engine kept in step with the control
plane (``ipvs_py._core.conntab``), verdicts, conn texts.

``Netns.packet()``/``replay()``/``advance()`` come here.  Both entry points
run the same C code (``ipvs_in``/``ipvs_out`` of ``include/ipvs_conn.h``);
``packet()`` is a batch of one, so the two agree row by row by
construction (tests/unit/test_conn.py checks it anyway).

Ownership: the engine owns the conn counters of every dest (activeconns,
inactconns, persistconns, refcnt, OVERLOAD, traffic stats); after each call
they are copied to the Python ``Dest``/``Service`` objects, which the
schedulers, texts and the dest_trash read.  The C schedulers (rr wrr lc wlc
sed nq fo ovf sh dh mh) run inside the engine; their state is taken from
``svc.sched_data`` when the configuration changes and written back after
each call.  Other schedulers are called back in Python (with the GIL).
"""
import ipaddress
import weakref
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ._core import conntab
from ._core.conntab import ConnEngine, SCTP_STATES, TCP_STATES
from ._core.sched import BatchScheduler, KINDS
from ._weak import weak_method
from .icmp import icmp_packet
from .packets import PacketBatch, parse_proto, parse_tcp_flags
from .schedulers.base import PacketInfo, is_available
from .schedulers.sched import lookup_scheduler
from .stats import COUNTERS

__all__ = ["ConnPath", "Verdict", "ReplayResult", "CF_TEMPLATE"]

CF_TEMPLATE = 0x1000
_PROTO_NAME = {0: "IP", 6: "TCP", 17: "UDP", 132: "SCTP", 1: "ICMP"}
_DIRS = {"in": 0, "out": 1, 0: 0, 1: 1}


@dataclass(frozen=True)
class Verdict:
    """What the model did with one packet: ``action`` is "forward",
    "drop" or "pass"; ``dest`` the real server (addr, port) or None;
    ``conn`` the conn id in the engine (or None).  ICMP packets also get
    ``reason``: what the kernel did and why, naming the conn and dest
    (ipvs_py.icmp)."""
    action: str
    dest: Optional[Tuple[str, int]]
    conn: Optional[int]
    reason: Optional[str] = None


class ReplayResult:
    """Per-row results of :meth:`ConnPath.replay`: ``dest[i]`` is
    (addr, port) or None, ``action[i]`` a string; ``dest_index``/``codes``
    are the raw arrays (engine dest id, 0 pass / 1 forward / 2 drop)."""

    _NAMES = ("pass", "forward", "drop", "error")

    def __init__(self, path, dest_index, codes):
        self.dest_index = dest_index
        self.codes = codes
        self._path = path
        self.dest = _LazyList(lambda i: path._dest_tuple(int(dest_index[i])),
                              len(codes))
        names = self._NAMES     # not self: a cycle kept every result's
        # columns (10 MB per 2M rows) alive until the cyclic GC ran, so a
        # replay's new columns were fresh pages or recycled ones depending
        # on when the GC last ran (docs/multicore.md)
        self.action = _LazyList(lambda i: names[codes[i]], len(codes))

    def __len__(self):
        return len(self.codes)


class _LazyList:
    def __init__(self, fn, n):
        self._fn, self._n = fn, n

    def __len__(self):
        return self._n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._fn(j) for j in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        return self._fn(i)

    def __iter__(self):
        return (self._fn(i) for i in range(self._n))


def _raw16(addr):
    return ipaddress.ip_address(addr).packed.ljust(16, b"\0")


def _mask16(svc):
    if svc.af == 10:
        bits = int(svc.netmask)
        return ((1 << 128) - (1 << (128 - bits))).to_bytes(16, "big")
    return int(svc.netmask & 0xFFFFFFFF).to_bytes(4, "big").ljust(16, b"\0")


class ConnPath:
    """The packet path of ``net`` (created on first use)."""

    def __init__(self, net):
        self._net = weakref.ref(net)    # net owns this path (ipvs_py._weak)
        if net.kernel == "6.1":     # one fixed 2^conn_tab_bits table
            lo = hi = net.conn_tab_bits
            lf = 0
        else:
            lo, hi = 8, net.conn_tab_bits
            lf = net.sysctl["conn_lfactor"]
        self.e = ConnEngine(net.hz, lo, hi, lf)
        seed = net._rng.getrandbits(64)
        self.e.seed(seed)
        #: 6.1: the model's (size_t)ipvs >> 8 in the conn hash; else None
        self.salt61 = None
        if net.kernel == "6.1":
            self.salt61 = salt61(net.svc_salt, seed)
            conntab.use_61_hashing(self.e, self.salt61)
        self._lfactor = lf
        self._gen = None
        self._dest_ids = {}         # Dest -> engine id
        self._dests = []            # engine id -> Dest
        self._svc_ids = {}          # Service -> engine index
        self._svcs = []
        self._bs = {}               # engine svc index -> BatchScheduler
        #: explain (ipvs_py.ops.explain): a list the Python schedulers
        #: note their decisions in, None (no tracing) otherwise
        self.py_trace = None
        self.e.set_sched_callback(weak_method(self._py_schedule))
        #: called after every engine call (ipvs_py.bpf.feed drains the
        #: engine's session events here); None: nothing to do
        self.after_engine = None
        self.datapath = None        # multicore.configure() settings
        self.mt_stats = None        # last multi-threaded replay's counters

    @property
    def net(self):
        """The Netns of this path (which owns it)."""
        return self._net()

    # -- configuration -------------------------------------------------------
    def _dest_id(self, d):
        i = self._dest_ids.get(d)
        if i is None:
            i = self._dest_ids[d] = len(self._dests)
            self._dests.append(d)
        return i

    def sync_config(self):
        """Mirror services, dests, timeouts and sysctls into the engine
        when the configuration changed (Netns.config_gen)."""
        net = self.net
        sc = net.sysctl
        self.e.set_sysctls(
            secure_tcp=net.drop_defense_on("secure_tcp"),
            conn_reuse_mode=sc["conn_reuse_mode"],
            expire_nodest_conn=sc["expire_nodest_conn"],
            expire_quiescent_template=sc["expire_quiescent_template"],
            sloppy_tcp=sc["sloppy_tcp"], sloppy_sctp=sc["sloppy_sctp"],
            drop_rate=net.drop_rate)
        conntab.set_schedule_icmp(self.e, sc["schedule_icmp"])
        if net.kernel != "6.1" and sc["conn_lfactor"] != self._lfactor:
            self._lfactor = sc["conn_lfactor"]
            self.e.set_lfactor(self._lfactor)
        if self._gen == net.config_gen:
            return
        self._gen = net.config_gen
        t = net.conn_timeouts()
        self.e.set_timeouts(t["tcp"], t["udp"], t["sctp"])
        for s in self._svcs:        # deleted services keep their index
            if s is not None:
                self.e.set_service(self._svc_ids[s], _raw16(s.addr), s.port,
                                   s.af, s.protocol, s.fwmark, s.flags,
                                   s.timeout, _mask16(s), live=False)
        for svc in net.svc_table.walk():
            si = self._svc_ids.get(svc)
            if si is None:
                si = self._svc_ids[svc] = len(self._svcs)
                self._svcs.append(svc)
            for d in svc.dests:
                self.e.set_dest(self._dest_id(d), d.addr_bytes.ljust(16, b"\0"),
                                d.port, d.af, d.fwd_method, d.weight,
                                d.u_thresh, d.l_thresh, is_available(d), si)
                conntab.set_dest_tunnel(self.e, self._dest_id(d), d.tun_type,
                                        d.tun_port)
            bs = None
            rows = ()
            if svc.sched_name in KINDS:
                bs = BatchScheduler(svc, svc.sched_name, from_python=True)
                rows = [self._dest_id(d) for d in bs.dests]
                self._bs[si] = bs
            else:
                self._bs.pop(si, None)
            self.e.set_service(si, _raw16(svc.addr), svc.port, svc.af,
                               svc.protocol, svc.fwmark, svc.flags,
                               svc.timeout, _mask16(svc), bs, rows)
        for d, i in self._dest_ids.items():   # dests gone to the trash
            if not d.available:
                self.e.set_dest(i, d.addr_bytes.ljust(16, b"\0"), d.port,
                                d.af, d.fwd_method, d.weight, d.u_thresh,
                                d.l_thresh, False, -1)

    def _py_schedule(self, si, af, proto, saddr, sport, daddr, dport, fwmark):
        svc = self._svcs[si]
        self.sync_back(False)       # lc-like schedulers read the counters
        sched = lookup_scheduler(svc.sched_name)
        if sched is None or sched.schedule is None:
            return -1
        n = 4 if af == 2 else 16
        pkt = PacketInfo(ipaddress.ip_address(saddr[:n]), sport,
                         ipaddress.ip_address(daddr[:n]), dport, proto,
                         now=self.net.now, trace=self.py_trace)
        if self.py_trace is not None:   # its inputs, as it reads them
            self.py_trace.append({"step": "rows", "rows": [
                (self._dest_id(x), x.weight, x.flags, x.activeconns,
                 x.inactconns, x.u_thresh) for x in svc.dests]})
        d = sched.schedule(svc, pkt)
        return -1 if d is None else self._dest_id(d)

    def sync_back(self, engine_done=True):
        """Copy scheduler positions and the engine's counters to Python;
        then, unless called from inside the engine, run after_engine.

        Only what moved is copied: the services and dests the engine
        changed since the last copy (ConnEngine.changed_svcs/_dests, a C
        compare), so a replay costs the same against 10 services or
        100,000 (copying all of them took 0.23-0.64 s per call at 100,000,
        bench/bench_ctl.py).  A scheduler's state (rr/wrr positions) is
        written back for every service that moved; its dests' counters
        and overload flag come from the engine alone (the scheduler's rows
        may hold older ones), for every dest of such a service."""
        dests = self.e.changed_dests()
        svcs = set(self.e.changed_svcs())
        svcs.update(self.e.dest_svc(i) for i in dests)
        svcs.discard(-1)
        for si in svcs:
            bs = self._bs.get(si)
            if bs is not None:
                bs.write_back(dests=False)
        reread = self.e.row_dests(svcs)
        reread.update(dests)
        self.e.copy_svc_counters(svcs, self._svcs)
        self.e.copy_dest_counters(reread, self._dests)
        for name, v in zip(COUNTERS, self.e.tot_counters()):
            setattr(self.net.tot_stats, name, v)
        self.net.conn_count = self.e.nconns
        if engine_done and self.after_engine is not None:
            self.after_engine()

    # -- packets -------------------------------------------------------------
    def conn_info(self, cid):
        """Conn ``cid`` as (af, proto, caddr, cport, vaddr, vport, daddr,
        dport, flags, state, expires, in_pkts) with address strings, or
        None when it is not a live conn."""
        info = conntab.conn_info(self.e, cid)
        if info is None:
            return None
        af, proto, ca, cp, va, vp, da, dp, *rest = info
        n = 16 if af == 10 else 4
        return (af, proto, str(ipaddress.ip_address(ca[:n])), cp,
                str(ipaddress.ip_address(va[:n])), vp,
                str(ipaddress.ip_address(da[:n])), dp, *rest)

    def _dest_tuple(self, did):
        if did < 0:
            return None
        d = self._dests[did]
        return (str(d.addr), d.port)

    def packet(self, proto, saddr, sport, daddr, dport, tcp_flags="S",
               fwmark=0, direction="in", length=0, icmp=None):
        """One packet now; see Netns.packet."""
        if icmp is not None or (isinstance(proto, str) and
                                proto.lower().startswith("icmp")):
            act, did, cid, why = icmp_packet(self, proto, saddr, daddr, icmp,
                                             fwmark, direction, length)
            return Verdict(act, self._dest_tuple(did),
                           None if cid < 0 else cid, why)
        p = parse_proto(proto)
        if not (0 < int(sport) < 65536 and 0 < int(dport) < 65536):
            raise ValueError(f"ports must be 1..65535, got {sport}, {dport}")
        sa, da = ipaddress.ip_address(saddr), ipaddress.ip_address(daddr)
        if sa.version != da.version:
            raise ValueError("mixed address families")
        # as PacketBatch.from_rows: TCP flag letters, or an SCTP chunk name
        flags = parse_tcp_flags(tcp_flags)
        self.sync_config()
        try:
            act, did, cid = self.e.packet(
                10 if sa.version == 6 else 2, p, sa.packed.ljust(16, b"\0"),
                int(sport), da.packed.ljust(16, b"\0"), int(dport), flags,
                int(fwmark), int(length), _DIRS[direction], self.net.jiffies)
        finally:
            self.sync_back()
        return Verdict(act, self._dest_tuple(did), None if cid < 0 else cid)

    def replay(self, batch, workers=None):
        """Every row of ``batch`` in order, the clock following its time
        column; see Netns.replay.  ``workers``: None for the
        single-threaded path, else that many threads sharing the engine
        (ipvs_py.multicore; 1 runs that machinery on one thread)."""
        if not isinstance(batch, PacketBatch):
            batch = PacketBatch.from_rows(batch)
        if workers is not None and batch.icmp is not None:
            raise ValueError("ICMP rows replay on the single-threaded path "
                             "only (workers=None)")
        n = len(batch)
        hz = self.net.hz
        floor = self.net.jiffies
        self.sync_config()
        try:
            if workers is None:
                times = conntab.jiffies_column(batch.time, hz, floor)
                dest = np.full(n, -1, np.int32)
                codes = np.zeros(n, np.uint8)
                self.e.replay(batch, times, dest, codes)
            else:
                from .multicore import configure, replay_engine
                if self.datapath is None:       # stripes on: 8, the kernel's
                    configure(self.net)
                # the workers convert the times and write every row: no
                # per-run temporaries (docs/multicore.md)
                dest = np.empty(n, np.int32)
                codes = np.empty(n, np.uint8)
                self.mt_stats = replay_engine(
                    self.e, batch, None, workers, self.shard_mask(), dest,
                    codes, hz=hz, floor=floor)
        finally:
            self.sync_back()
        if n:       # the last row's jiffies, converted as the rows were
            last = conntab.mt_jiffies(float(batch.time[-1]), hz, floor)
            self.net.jiffies = max(self.net.jiffies, last)
        return ReplayResult(self, dest, codes)

    def replay_queues(self, batches):
        """One worker thread per batch of ``batches`` (the RSS queues of
        a trace: multicore.rss_queues), sharing the engine; each worker
        writes its own queue's verdicts.  Returns a ReplayResult per
        queue; see Netns.replay_queues."""
        from .multicore import configure
        batches = [b if isinstance(b, PacketBatch) else
                   PacketBatch.from_rows(b) for b in batches]
        for k, b in enumerate(batches):
            if b.icmp is not None:
                raise ValueError(f"queue {k}: ICMP rows replay on the "
                                 f"single-threaded path only")
        hz = self.net.hz
        floor = self.net.jiffies
        self.sync_config()
        dests = [np.empty(len(b), np.int32) for b in batches]
        codes = [np.empty(len(b), np.uint8) for b in batches]
        try:
            if self.datapath is None:           # stripes on: 8, the kernel's
                configure(self.net)
            self.mt_stats = conntab.replay_mt_queues(
                self.e, batches, self.shard_mask(), dests, codes, hz, floor)
        finally:
            self.sync_back()
        last = [float(b.time[-1]) for b in batches if len(b)]
        if last:
            self.net.jiffies = max(self.net.jiffies,
                                   conntab.mt_jiffies(max(last), hz, floor))
        return [ReplayResult(self, d, c) for d, c in zip(dests, codes)]

    def shard_mask(self):
        """16-byte mask of the client address the multi-core replay shards
        by: the AND of every persistent service's netmask (all ones when
        there is none), so that clients sharing a template share a worker."""
        m = (1 << 128) - 1
        for svc in self.net.svc_table.walk():
            if svc.flags & 0x0001:
                m &= int.from_bytes(_mask16(svc), "big")
        return m.to_bytes(16, "big")

    def defense_work(self):
        """defense_work_handler(): update the defense level, then one
        random drop-entry scan while dropentry is on."""
        self.net.update_defense_level()
        self.sync_config()
        if self.net.dropentry_on:
            self.e.random_dropentry()
        self.sync_back()

    def run_timers(self, until):
        self.sync_config()
        self.e.run_timers(until)
        self.sync_back()

    # -- texts ---------------------------------------------------------------
    def conn_rows(self):
        """/proc/net/ip_vs_conn rows (ip_vs_conn_seq_show), walk order."""
        out = []
        now = self.net.jiffies
        hz = self.net.hz
        for (cid, af, proto, ca, cp, va, vp, da, dp, state, flags, exp,
             did, ctl, nctl, daf) in self.e.conns():
            left = max(0, (exp - now) & 0xFFFFFFFF) if exp >= now else 0
            secs = left * 1000 // hz // 1000
            pname = _PROTO_NAME.get(proto, "IP_%u" % proto)
            sname = _state_name(proto, 0 if flags & CF_TEMPLATE else state)
            if af == 10:
                c, v = (str(ipaddress.IPv6Address(ca)),
                        str(ipaddress.IPv6Address(va)))
            else:
                c, v = "%08X" % int.from_bytes(ca[:4], "big"), \
                    "%08X" % int.from_bytes(va[:4], "big")
            d = (str(ipaddress.IPv6Address(da)) if daf == 10
                 else "%08X" % int.from_bytes(da[:4], "big"))
            out.append("%-3s %s %04X %s %04X %s %04X %-11s %7u\n"
                       % (pname, c, cp, v, vp, d, dp, sname, secs))
        return out


def salt61(svc_salt, seed):
    """The model's (size_t)ipvs >> 8 for the 6.1 conn hash: the low 8
    bits are the netns's ``svc_salt`` (the same pointer's bits 8..15,
    which the 6.1 service hash mixes in); the higher bits, which masks of
    up to 2^27 buckets also see, come from the engine seed."""
    return ((seed >> 32) & 0xFFFFFF00 | svc_salt) & 0xFFFFFFFF


def _state_name(proto, state):
    """ip_vs_state_name()"""
    if proto == 6:
        return TCP_STATES[state] if state < len(TCP_STATES) else "ERR!"
    if proto == 17:
        return "UDP" if state == 0 else "ERR!"
    if proto == 132:
        return SCTP_STATES[state] if state < len(SCTP_STATES) else "ERR!"
    return "NONE" if proto == 0 else "ERR!"
