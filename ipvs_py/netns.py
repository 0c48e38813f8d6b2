"""One network namespace's IPVS configuration (struct netns_ipvs).

Holds the service table, the destinations, the dest_trash, the sysctls, the
service-type counters and a virtual clock.  Every configuration change goes
through one path: :func:`ipvs_py.kernel_checks.check` decides whether the
kernel would accept it, ``_apply`` does what net/netfilter/ipvs/ip_vs_ctl.c
does.  ``restore()`` checks a whole rule file against an overlay first and
applies it only when every line passes (all-or-nothing).

Two kernel profiles: ``kernel="7.1"`` (the 2026 per-net resizable tables,
default) and ``kernel="6.1"`` (Debian 12: fixed tables, no lfactor sysctls,
no /proc/net/ip_vs_status).
"""
import heapq
import ipaddress
import itertools
import random

from . import kernel_checks, text
from ._weak import weak_method
from .dest import Dest, DEST_F_OVERLOAD
from .errors import IPVSError, NoSuchFile
from .packets import parse_addr
from .requests import DestReq, SvcReq
from .service import (AF_INET, AF_INET6, FTPPORT, IPPROTO_SCTP, IPPROTO_TCP,
                      IPPROTO_UDP, PE_CONN_OUT, SCHEDULERS, Service,
                      svc_key)
from .schedulers.sched import sched_hook
from .stats import Stats
from .svctable import ServiceTable
from .sysctl import Sysctl

__all__ = ["Netns", "KERNELS"]

KERNELS = ("7.1", "6.1")
CONN_TAB_MIN_BITS = 8           # 2fa7cc9c7025: conn_tab 2^8..2^conn_tab_bits
CONN_TAB_MAX_BITS = 27          # ip_vs_conn_tab_bits limit on 64-bit
IP_VS_DEST_TRASH_PERIOD = 120   # seconds (120 * HZ)
MAX_TIMEOUT = 86400 * 31        # ipvsadm.c: the largest --set value
_AF_INDEX = {AF_INET: 0, AF_INET6: 1}
_PROTOS = {"tcp": IPPROTO_TCP, "udp": IPPROTO_UDP, "sctp": IPPROTO_SCTP}
_FWD = {"masq": 0, "m": 0, "local": 1, "tunnel": 2, "ipip": 2, "i": 2,
        "route": 3, "droute": 3, "gatewaying": 3, "g": 3}


class _Timer:
    __slots__ = ("expires", "fn", "active")

    def __init__(self, fn):
        self.fn, self.expires, self.active = fn, 0, False


def _packed_address(af, text):
    """The packed bytes of address ``text`` (packets.parse_addr) when it
    is of family ``af``; ValueError naming it otherwise."""
    text_af, raw = parse_addr(text)
    if text_af != af:
        raise ValueError(f"{text!r} is not an address of family {af}")
    return raw[:4] if af == AF_INET else raw


def _note(trace, lookup, ran, counter, counters, idx):
    """One find_service() trace entry: (lookup, ran, counter, value)."""
    trace.append((lookup, bool(ran), counter, counters[counter][idx]))


class Netns:
    """One network namespace.  See ARCHITECTURE.md for the public contract.

    Extra keyword-only parameters (model knobs, not kernel state):

    ``seed``      seeds the random table keys (reproducible runs).
    ``hz``        CONFIG_HZ (Debian: 250): persistence timeouts are kept in
                  ticks and /proc/net/ip_vs prints ticks.
    ``cpus``      CPUs of the modelled machine (est_cpulist, stats threads).
    ``svc_salt``  6.1 only: bits 8..15 of the kernel's netns_ipvs pointer,
                  which the old service hash mixes in; decides the order of
                  /proc/net/ip_vs and of ipvsadm's input.  Random if None.
    """

    def __init__(self, conn_tab_bits=12, kernel="7.1", init_net=True, *,
                 seed=None, hz=250, cpus=4, svc_salt=None):
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, not "
                             f"{kernel!r}")
        if (isinstance(conn_tab_bits, bool)
                or not isinstance(conn_tab_bits, int)
                or not CONN_TAB_MIN_BITS <= conn_tab_bits
                <= CONN_TAB_MAX_BITS):
            raise ValueError(f"conn_tab_bits must be {CONN_TAB_MIN_BITS}.."
                             f"{CONN_TAB_MAX_BITS}, not {conn_tab_bits!r}")
        self.kernel = kernel
        self.init_net = bool(init_net)
        self.conn_tab_bits = conn_tab_bits
        self.hz = hz
        self.cpus = cpus
        self._rng = random.Random(seed)
        self.sysctl = Sysctl(kernel, self.init_net, cpus)
        if svc_salt is None:
            svc_salt = self._rng.getrandbits(8)
        self.svc_salt = svc_salt & 0xFF
        # the parts below refer back to this Netns weakly (ipvs_py._weak)
        sysctl = self.sysctl
        lf = ((lambda: sysctl["svc_lfactor"]) if kernel != "6.1"
              else (lambda: 0))
        self.svc_table = ServiceTable(kernel, self._rng, lf, self.svc_salt)
        if kernel != "6.1":
            sysctl.on_write["svc_lfactor"] = weak_method(
                self._svc_lfactor_written)
        # proc_do_defense_mode(): a write runs update_defense_level() at once
        defense = weak_method(self.update_defense_level)
        for name in ("drop_entry", "drop_packet", "secure_tcp"):
            sysctl.on_write[name] = lambda value: defense()
        self.dest_trash = []          # tail = head of the kernel list
        self.counters = {name: [0, 0] for name in (
            "num_services", "fwm_services", "nonfwm_services",
            "ftpsvc_counter", "nullsvc_counter", "conn_out_counter")}
        self.mixed_address_family_dests = 0
        self.sync_state = 0
        #: scheduler modules that load (Debian's 6.1 lacks ip_vs_twos:
        #: CONFIG_IP_VS_TWOS is not set)
        self.schedulers = tuple(s for s in SCHEDULERS
                                if kernel != "6.1" or s != "twos")
        self.enable = False
        self.tot_stats = Stats()
        self.timeouts = {"tcp": 900, "tcp_fin": 120, "udp": 300}
        #: the timeouts a rules file or set_timeouts() named (``ipvsadm
        #: --set``; 0 = unchanged, so only non-zero values are declared):
        #: sync sets these and leaves the kernel's other timeouts alone
        self.declared_timeouts = {}
        #: per-state timeouts in seconds (ip_vs_proto_*.c defaults);
        #: ``ipvsadm --set`` writes TCP ESTABLISHED/FIN_WAIT and UDP
        self.state_timeouts = {
            "tcp": [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120],
            "sctp": [2, 4, 61, 61, 61, 61, 61, 61, 900, 61, 61, 61, 4, 61]}
        self.conn_count = 0           # mirrored from the conn engine
        self.config_gen = 0           # bumped by every configuration change
        self.drop_rate = 0            # ip_vs_todrop() (drop_packet defense)
        self.drop_counter = 0
        self.dropentry_on = False     # ipvs->dropentry
        self.secure_tcp_on = False    # tcp_states_dos selected
        #: the model's memory figure for update_defense_level(): free +
        #: buffered pages = mem_pages minus the conns' memory
        self.mem_pages = 262144
        self._conn = None             # ipvs_py.conn.ConnPath, on first use
        # 7.1: conn_tab is allocated by the first service add (2^8 buckets,
        # the conn_lfactor of that moment) and only freed with the netns
        # (ip_vs_conn_flush); issue 6 grows it with the connections.
        self.conn_tab_size_ = 0
        self.conn_tab_lfactor = 0
        self._conn_work_due = None
        # estimator kthreads (ip_vs_est.c; 7.1 status rows): calibrated at
        # run time in the kernel, so plain attributes here
        self.est_kt_count = 1
        self.est_max_threads = 0
        self.est_chain_max = 16
        # virtual clock
        self.jiffies = 0
        self._timers = []
        self._timer_seq = itertools.count()
        self._trash_timer = _Timer(weak_method(self._dest_trash_expire))

    # ------------------------------------------------------------------
    # virtual clock
    @property
    def now(self):
        """Virtual time in seconds."""
        return self.jiffies / self.hz

    def _mod_timer(self, timer, expires):
        timer.expires = expires
        timer.active = True
        heapq.heappush(self._timers, (expires, next(self._timer_seq), timer))

    def advance(self, seconds):
        """Move the virtual clock forward; due timers run in order (the
        dest_trash timer here; issue 6 adds connection timers)."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        target = self.jiffies + int(round(seconds * self.hz))
        if self._conn is not None:
            sc = self.sysctl
            if sc["drop_entry"] or sc["drop_packet"] or sc["secure_tcp"]:
                # defense_work_handler() every second (DEFENSE_TIMER_PERIOD)
                t = (self.jiffies // self.hz + 1) * self.hz
                while t <= target:
                    self._conn.run_timers(t)
                    self.jiffies = t
                    self._conn.defense_work()
                    t += self.hz
            self._conn.run_timers(target)
        self._conn_resize_work(target)
        while self._timers and self._timers[0][0] <= target:
            expires, _, timer = heapq.heappop(self._timers)
            if not timer.active or timer.expires != expires:
                continue              # re-armed or deleted
            timer.active = False
            self.jiffies = max(self.jiffies, expires)
            timer.fn()
        self.jiffies = target
        self.svc_table.run_pending()

    # ------------------------------------------------------------------
    # lookups (also the view kernel_checks uses)
    def has_service(self, key):
        return self._find_key(key) is not None

    def has_dest(self, key, dkey):
        svc = self._find_key(key)
        return svc is not None and self._lookup_dest(svc, dkey) is not None

    def _find_key(self, key):
        if len(key) == 2:
            return self.svc_table.find_fwm(key[0], key[1])
        af, protocol, addr_bytes, port = key
        return self.svc_table.find(af, protocol, addr_bytes, port)

    @staticmethod
    def _lookup_dest(svc, dkey):
        """ip_vs_lookup_dest()"""
        af, addr_bytes, port = dkey
        for d in svc.dests:
            if d.af == af and d.port == port and d.addr_bytes == addr_bytes:
                return d
        return None

    def find_service(self, af, protocol, addr, port, fwmark=0, trace=None):
        """ip_vs_service_find() as the packet path calls it: fwmark first,
        then <proto,addr,port>, the FTP-data and port-zero fallbacks; the
        service-type counters skip lookups that cannot match.  ``addr``:
        an ipaddress object, its packed bytes or a string.  ``trace``:
        a list that gets (lookup, ran, counter, value) per lookup."""
        # The trace notes are guarded inline, not made by a helper closure:
        # a closure built per call made every untraced lookup 1.5x slower
        # (402 vs 260 ns, bench/bench_ctl.py at 10 services, idle machine).
        idx = _AF_INDEX[af]
        c = self.counters
        t = self.svc_table
        every = self.kernel == "6.1"         # 6.1 has no service counters
        if fwmark:
            on = every or c["fwm_services"][idx]
            if trace is not None:
                _note(trace, "fwmark", on, "fwm_services", c, idx)
            if on:
                svc = t.find_fwm(af, fwmark)
                if svc is not None:
                    return svc
        on = every or c["nonfwm_services"][idx]
        if trace is not None:
            _note(trace, "proto_addr_port", on, "nonfwm_services", c, idx)
        if not on:
            return None
        if hasattr(addr, "packed"):
            ab = addr.packed
        elif isinstance(addr, str):
            ab = _packed_address(af, addr)
        else:
            ab = addr
        svc = t.find(af, protocol, ab, port)
        if svc is not None:
            return svc
        on = (protocol == IPPROTO_TCP and c["ftpsvc_counter"][idx]
              and (port == 20 or port >= 1024))
        if trace is not None:
            _note(trace, "ftp_data", on, "ftpsvc_counter", c, idx)
        if on:
            svc = t.find(af, protocol, ab, FTPPORT)
            if svc is not None:
                return svc
        on = c["nullsvc_counter"][idx]
        if trace is not None:
            _note(trace, "port_zero", on, "nullsvc_counter", c, idx)
        if on:
            return t.find(af, protocol, ab, 0)
        return None

    # ------------------------------------------------------------------
    # the one apply path
    def _run(self, op, sreq=None, dreq=None):
        kernel_checks.check(op, sreq, dreq, self)
        self.config_gen += 1
        self._apply(op, sreq, dreq)
        self.svc_table.run_pending()

    def _apply(self, op, sreq, dreq):
        if op == "flush":
            self._flush()
            return
        if op == "set_timeout":
            for k, v in sreq.items():
                if v:
                    self.timeouts[k] = v
                    self.declared_timeouts[k] = v
            return
        if op == "zero":
            if sreq is None:
                for svc in self.svc_table.walk():
                    self._zero_service(svc)
                self.tot_stats.zero()
            else:
                self._zero_service(self._find_key(sreq.key))
            return
        if op == "add_service":
            self._add_service(sreq)
            return
        svc = self._find_key(sreq.key)
        if op == "edit_service":
            self._edit_service(svc, sreq)
        elif op == "del_service":
            self._del_service(svc)
        elif op == "add_dest":
            self._add_dest(svc, dreq)
        elif op == "edit_dest":
            dest = self._lookup_dest(svc, dreq.key)
            self._update_dest(svc, dest, dreq, add=False)
        elif op == "del_dest":
            dest = self._lookup_dest(svc, dreq.key)
            self._unlink_dest(svc, dest, svcupd=True)
            self._del_dest(dest)
        else:
            raise ValueError(f"unknown operation {op!r}")

    # -- services --------------------------------------------------------
    def _count(self, svc, delta):
        idx = _AF_INDEX[svc.af]
        c = self.counters
        c["num_services"][idx] += delta
        c["fwm_services" if svc.fwmark else "nonfwm_services"][idx] += delta
        if svc.port == FTPPORT:
            c["ftpsvc_counter"][idx] += delta
        # 6.1 counts fwmark services (port 0) as port-zero services too
        elif svc.port == 0 and (self.kernel == "6.1" or not svc.fwmark):
            c["nullsvc_counter"][idx] += delta
        if svc.pe_name in PE_CONN_OUT:
            c["conn_out_counter"][idx] += delta

    def _add_service(self, u):
        """ip_vs_add_service()"""
        svc = Service(u.af, u.protocol, u.addr, u.port, u.fwmark,
                      u.sched_name, u.flags, u.timeout, u.netmask, u.pe_name)
        if self.kernel != "6.1" and not self.conn_tab_size_:
            self.conn_tab_size_ = 1 << CONN_TAB_MIN_BITS
            self.conn_tab_lfactor = self.sysctl["conn_lfactor"]
            # conn_resize_work re-checks the table every 2 s
            self._conn_work_due = self.jiffies + 2 * self.hz
        self._count(svc, +1)
        self.svc_table.insert(svc)
        self._sched_hook("init_service", svc)
        if not self.enable:
            self.enable = True        # "Now there is a service - full throttle"
            self.est_max_threads = 4 * self.cpus
        return svc

    def _edit_service(self, svc, u):
        """ip_vs_edit_service()"""
        if u.sched_name != svc.sched_name:
            self._sched_hook("done_service", svc)
            svc.sched_name = u.sched_name
            self._sched_hook("init_service", svc)
        svc.flags = u.flags
        svc.timeout = u.timeout
        svc.netmask = u.netmask
        if u.pe_name != svc.pe_name:
            idx = _AF_INDEX[svc.af]
            new_out, old_out = u.pe_name in PE_CONN_OUT, svc.pe_name in \
                PE_CONN_OUT
            if new_out and not old_out:
                self.counters["conn_out_counter"][idx] += 1
            if old_out and not new_out:
                self.counters["conn_out_counter"][idx] -= 1
            svc.pe_name = u.pe_name

    def _del_service(self, svc):
        """ip_vs_unlink_service() + __ip_vs_del_service()"""
        self.svc_table.remove(svc)
        self._count(svc, -1)
        self._sched_hook("done_service", svc)
        for dest in list(svc.dests):
            self._unlink_dest(svc, dest, svcupd=False)
            self._del_dest(dest)

    def _flush(self):
        """ip_vs_flush(): every service, in table walk order."""
        for svc in list(self.svc_table.walk()):
            self._del_service(svc)

    def _zero_service(self, svc):
        for d in svc.dests:
            d.stats.zero()
        svc.stats.zero()

    # -- destinations ----------------------------------------------------
    def _add_dest(self, svc, u):
        """ip_vs_add_dest(): revive from the dest_trash or create."""
        dest = self._trash_get_dest(svc, u)
        if dest is None:
            dest = Dest(svc, u.af, u.addr, u.port)
        self._update_dest(svc, dest, u, add=True)
        return dest

    def _update_dest(self, svc, dest, u, add):
        """__ip_vs_update_dest()"""
        if add and u.af != svc.af:
            self.mixed_address_family_dests += 1
        if add or u.weight != 0:
            dest.last_weight = u.weight
        dest.weight = u.weight
        dest.fwd_method = u.fwd_method
        dest.tun_type, dest.tun_port, dest.tun_flags = (u.tun_type,
                                                        u.tun_port,
                                                        u.tun_flags)
        if dest.svc is not svc:
            dest.stats.zero()
            dest.svc = svc
        dest.available = True
        if dest.u_thresh != u.u_thresh or dest.l_thresh != u.l_thresh:
            dest.u_thresh, dest.l_thresh = u.u_thresh, u.l_thresh
            dest.l_thresh_val = u.l_thresh or (u.u_thresh
                                               - (u.u_thresh >> 2))
            dest.update_overload(0)
        dest.af = u.af
        if add:
            svc.dests.insert(0, dest)           # list_add_rcu: at the head
            self._sched_hook("add_dest", svc, dest)
        else:
            self._sched_hook("upd_dest", svc, dest)

    def _unlink_dest(self, svc, dest, svcupd):
        """__ip_vs_unlink_dest()"""
        dest.available = False
        svc.dests.remove(dest)
        if dest.af != svc.af:
            self.mixed_address_family_dests -= 1
        if svcupd:
            self._sched_hook("del_dest", svc, dest)

    def _del_dest(self, dest):
        """__ip_vs_del_dest(): into the dest_trash, arm its timer."""
        if not self.dest_trash:
            self._mod_timer(self._trash_timer, self.jiffies
                            + (IP_VS_DEST_TRASH_PERIOD * self.hz >> 1))
        self.dest_trash.append(dest)            # list_add: at the head
        dest.idle_start = 0

    def _trash_get_dest(self, svc, u):
        """ip_vs_trash_get_dest(): same dest of the same service identity."""
        ab = u.addr.packed
        trash = self.dest_trash
        for i in range(len(trash) - 1, -1, -1):  # head first
            d = trash[i]
            if (d.af == u.af and d.addr_bytes == ab and d.port == u.port
                    and d.vfwmark == svc.fwmark
                    and d.protocol == svc.protocol
                    and (svc.fwmark or (d.vaddr_bytes == svc.addr_bytes
                                        and d.vport == svc.port))):
                del trash[i]
                return d
        return None

    def _dest_trash_expire(self):
        """ip_vs_dest_trash_expire(): free dests idle for a whole period."""
        now = self.jiffies
        period = IP_VS_DEST_TRASH_PERIOD * self.hz
        keep = []
        for d in reversed(self.dest_trash):     # head first
            if d.refcnt > 0:
                keep.append(d)
                continue
            if d.idle_start:
                if now < d.idle_start + period:
                    keep.append(d)
                    continue
            else:
                d.idle_start = max(1, now)
                keep.append(d)
                continue
            d.svc = None                        # ip_vs_dest_free()
        keep.reverse()
        self.dest_trash = keep
        if keep:
            self._mod_timer(self._trash_timer, now + (period >> 1))

    def _conn_resize_work(self, until):
        """conn_resize_work_handler() every 2 s; without connections the
        desired size stays 2^8, so only a new conn_lfactor rebuilds.  The
        connection table itself (sizes with conns) is issue 6's."""
        due = self._conn_work_due
        if due is None or due > until:
            return
        lf = self.sysctl["conn_lfactor"]
        if self._conn is not None:
            self._conn.e.maybe_resize()   # the worker's 2 s re-check
            self.conn_tab_size_, _, self.conn_tab_lfactor = \
                self._conn.e.table_info()
        elif self.conn_count == 0 and lf != self.conn_tab_lfactor:
            self.conn_tab_size_ = 1 << CONN_TAB_MIN_BITS
            self.conn_tab_lfactor = lf
        period = 2 * self.hz
        self._conn_work_due = due + ((until - due) // period + 1) * period

    def conn_chain_lengths(self):
        """Chain-length histogram of the conn table: [empty, len-1, ...,
        len-7+] (hash nodes: a NAT conn counts twice)."""
        if self._conn is None:
            return [self.conn_tab_size_] + [0] * 7
        return self._conn.e.histogram()

    # ------------------------------------------------------------------
    # packet path (ipvs_py.conn)
    def _path(self):
        if self._conn is None:
            from .conn import ConnPath
            self._conn = ConnPath(self)
        return self._conn

    def conn_timeouts(self):
        """Per-state timeouts (seconds) with the ``--set`` values."""
        tcp = list(self.state_timeouts["tcp"])
        tcp[1] = self.timeouts["tcp"]          # ESTABLISHED
        tcp[4] = self.timeouts["tcp_fin"]      # FIN_WAIT
        return {"tcp": tcp, "udp": self.timeouts["udp"],
                "sctp": list(self.state_timeouts["sctp"])}

    def set_state_timeout(self, proto, state, seconds):
        """Set one protocol state's timeout (``proto`` "tcp"/"sctp",
        ``state`` a kernel state name such as "TIME_WAIT")."""
        from ._core.conntab import SCTP_STATES, TCP_STATES
        names = TCP_STATES if proto == "tcp" else SCTP_STATES
        i = names.index(state.upper())
        if proto == "tcp" and i in (1, 4):
            self.timeouts["tcp" if i == 1 else "tcp_fin"] = int(seconds)
        else:
            self.state_timeouts[proto][i] = int(seconds)
        self.config_gen += 1

    def avail_mem_pages(self):
        """Free + buffered pages as update_defense_level() reads them."""
        from ._core.conntab import CONN_BYTES
        used = (self.conn_count * CONN_BYTES) >> 12
        return max(0, self.mem_pages - used)

    def update_defense_level(self):
        """update_defense_level() (ip_vs_ctl.c): modes 1/2 follow memory
        (2 while short, back to 1 when not), 3 is always on."""
        sc = self.sysctl
        avail = self.avail_mem_pages()
        amem = max(sc["amemthresh"], 0)
        nomem = avail < amem
        de = sc["drop_entry"]
        if de == 1 and nomem:
            sc._values["drop_entry"] = de = 2
        elif de == 2 and not nomem:
            sc._values["drop_entry"] = 1
        self.dropentry_on = de == 3 or (de == 2 and nomem)
        dp = sc["drop_packet"]
        if dp in (1, 2):
            if nomem:
                self.drop_rate = self.drop_counter = amem // (amem - avail)
                sc._values["drop_packet"] = 2
            else:
                self.drop_rate = 0
                sc._values["drop_packet"] = 1
        else:
            self.drop_rate = sc["am_droprate"] if dp == 3 else 0
        st = sc["secure_tcp"]
        if st == 1 and nomem:
            sc._values["secure_tcp"] = st = 2
        elif st == 2 and not nomem:
            sc._values["secure_tcp"] = st = 1
        self.secure_tcp_on = st >= 2
        self.config_gen += 0

    def drop_defense_on(self, name):
        """Whether secure_tcp's state table is in use."""
        return self.secure_tcp_on

    def packet(self, proto, saddr, sport, daddr, dport, tcp_flags="S",
               fwmark=0, *, direction="in", length=0, icmp=None):
        """One packet through ip_vs_in (``direction="in"``, client ->
        VIP) or ip_vs_out (``"out"``, real server -> client) at the current
        virtual time.  Returns a Verdict (.action, .dest, .conn).  Raises
        ValueError for an unknown protocol or a port outside 1..65535.
        ICMP: proto "icmp"/"icmpv6" with ``icmp=ipvs_py.icmp.IcmpError``
        (ports ignored); the Verdict's .reason says what happened."""
        return self._path().packet(proto, saddr, sport, daddr, dport,
                                   tcp_flags, fwmark, direction, length, icmp)

    def replay(self, batch, workers=None):
        """A PacketBatch (or rows) in order without the GIL; the clock
        follows the time column.  res.dest[i]/res.action[i] equal what
        packet() returns row by row.  ``workers=N`` shards the rows by
        client over N threads sharing the engine (docs/multicore.md)."""
        return self._path().replay(batch, workers)

    def replay_queues(self, queues):
        """Replay a trace already split into RSS queues, one worker thread
        per queue sharing the engine: ``queues`` is what
        ``ipvs_py.multicore.rss_queues(net, batch, n)`` returns (or its
        list of PacketBatches).  Each worker reads only its own queue and
        writes its own verdicts, as CPUs fed by a NIC's queues do.
        Returns a ReplayResult per queue (rows in queue order;
        ``queues.merge(results)`` puts them in trace order), equal to
        ``replay(batch)``'s wherever ``replay(batch, workers=N)``'s are
        (docs/multicore.md).  A row whose client belongs to another
        queue is a ValueError naming it, before anything changes."""
        return self._path().replay_queues(getattr(queues, "batches", queues))

    def explain(self, proto, saddr, sport, daddr, dport, tcp_flags="S",
                fwmark=0):
        """packet() with the decision trace on: which real server the
        packet gets and why (an ipvs_py.ops.explain.Explanation: .dest,
        .text(), .as_dict()).  The packet is processed as packet() does."""
        from .ops.explain import explain
        return explain(self, proto, saddr, sport, daddr, dport, tcp_flags,
                       fwmark)

    def list_conn_text(self, persistent_conn=False):
        """The text of ``ipvsadm -Lnc`` (``--persistent-conn``)."""
        return text.list_conn(self, persistent_conn)

    def conn_rows(self):
        """/proc/net/ip_vs_conn rows (without the header)."""
        return [] if self._conn is None else self._conn.conn_rows()

    def _sched_hook(self, name, svc, dest=None):
        """Run the service's scheduler hook ``name`` (init_service,
        done_service, add_dest, del_dest, upd_dest), as ip_vs_ctl.c does."""
        sched_hook(self, name, svc, dest)

    def _svc_lfactor_written(self, value):
        self.svc_table.kick()
        self.svc_table.run_pending()

    # ------------------------------------------------------------------
    # Python API: requests from keyword arguments
    def _svc_req(self, protocol="tcp", addr=None, port=0, *, fwmark=0,
                 af=None, sched_name="wlc", persistent=None, netmask=None,
                 ops=False, pe_name="", sched_flags=0):
        if isinstance(protocol, str):
            protocol = _PROTOS[protocol.lower()]
        if fwmark:
            af = af or AF_INET
            addr = (ipaddress.IPv6Address(0) if af == AF_INET6
                    else ipaddress.IPv4Address(0))
            protocol, port = IPPROTO_TCP, 0
        else:
            addr = ipaddress.ip_address(addr)
            af = AF_INET6 if addr.version == 6 else AF_INET
        flags = sched_flags
        timeout = 0
        if persistent is not None and persistent is not False:
            flags |= 0x0001
            timeout = 360 if persistent is True else int(persistent)
        if ops:
            flags |= 0x0004
        if netmask is None:
            netmask = 128 if af == AF_INET6 else 0xFFFFFFFF
        elif isinstance(netmask, str):
            netmask = int(ipaddress.IPv4Address(netmask))
        return SvcReq(af, protocol, addr, port, fwmark, sched_name, flags,
                      timeout, netmask, pe_name)

    @staticmethod
    def _dest_req(addr, port=0, *, fwd_method="route", weight=1, u_thresh=0,
                  l_thresh=0, tun_type=0, tun_port=0, tun_flags=0):
        addr = ipaddress.ip_address(addr)
        if isinstance(fwd_method, str):
            fwd_method = _FWD[fwd_method.lower()]
        return DestReq(AF_INET6 if addr.version == 6 else AF_INET, addr,
                       port, fwd_method, weight, u_thresh, l_thresh,
                       tun_type, tun_port, tun_flags)

    def add_service(self, protocol="tcp", addr=None, port=0, **kw):
        """Add a virtual service (ipvsadm -A); returns the Service.
        ``net.add_service("tcp", "10.0.0.1", 80, sched_name="rr")`` or
        ``net.add_service(fwmark=5, af=10)``.  Raises IPVSError."""
        u = self._svc_req(protocol, addr, port, **kw)
        self._run("add_service", u)
        return self._find_key(u.key)

    def edit_service(self, protocol="tcp", addr=None, port=0, **kw):
        """ipvsadm -E: every field is replaced, as ipvsadm sends them all."""
        u = self._svc_req(protocol, addr, port, **kw)
        self._run("edit_service", u)
        return self._find_key(u.key)

    def del_service(self, protocol="tcp", addr=None, port=0, *, fwmark=0,
                    af=None):
        """ipvsadm -D"""
        self._run("del_service", self._svc_req(protocol, addr, port,
                                               fwmark=fwmark, af=af))

    def flush(self):
        """ipvsadm -C"""
        self._run("flush")

    def zero(self, protocol="tcp", addr=None, port=0, *, fwmark=0, af=None):
        """ipvsadm -Z [service]"""
        if addr is None and not fwmark:
            self._run("zero")
        else:
            self._run("zero", self._svc_req(protocol, addr, port,
                                            fwmark=fwmark, af=af))

    def _svc_of(self, service):
        if isinstance(service, Service):
            return self._svc_req(service.protocol, service.addr, service.port,
                                 fwmark=service.fwmark, af=service.af)
        if isinstance(service, dict):
            return self._svc_req(**service)
        return self._svc_req(*service)

    def add_dest(self, service, addr, port=0, **kw):
        """ipvsadm -a; ``service`` is a Service, a (proto, addr, port)
        tuple or a dict of add_service() arguments.  Returns the Dest."""
        s = self._svc_of(service)
        u = self._dest_req(addr, port, **kw)
        self._run("add_dest", s, u)
        return self._lookup_dest(self._find_key(s.key), u.key)

    def edit_dest(self, service, addr, port=0, **kw):
        """ipvsadm -e"""
        s = self._svc_of(service)
        u = self._dest_req(addr, port, **kw)
        self._run("edit_dest", s, u)
        return self._lookup_dest(self._find_key(s.key), u.key)

    def del_dest(self, service, addr, port=0):
        """ipvsadm -d"""
        self._run("del_dest", self._svc_of(service),
                  self._dest_req(addr, port))

    def set_timeouts(self, tcp=0, tcpfin=0, udp=0):
        """``ipvsadm --set tcp tcpfin udp`` in seconds; 0 leaves that
        timeout unchanged (as in ipvsadm and the kernel).  The values set
        become declared configuration: ``sync`` sets them in the kernel and
        ``save(timeouts=True)`` writes them as a ``--set`` line."""
        vals = {"tcp": tcp, "tcp_fin": tcpfin, "udp": udp}
        for k, v in vals.items():
            if isinstance(v, bool) or not isinstance(v, int) \
                    or not 0 <= v <= MAX_TIMEOUT:
                raise ValueError(f"{k} timeout must be 0..{MAX_TIMEOUT} "
                                 f"seconds, not {v!r}")
        self._run("set_timeout", vals)

    def get_service(self, protocol="tcp", addr=None, port=0, *, fwmark=0,
                    af=None):
        """The Service with that identity, or None."""
        return self._find_key(self._svc_req(protocol, addr, port,
                                            fwmark=fwmark, af=af).key)

    def services(self, sort=True):
        """Services as ipvsadm lists them (sort=True) or in the kernel's
        table walk order (sort=False)."""
        svcs = list(self.svc_table.walk())
        return text.sort_services(svcs) if sort else svcs

    def dests(self, service, sort=True):
        """A service's destinations, ipvsadm order or kernel list order."""
        return text.sort_dests(list(service.dests)) if sort else \
            list(service.dests)

    # ------------------------------------------------------------------
    # rules and texts
    def restore(self, rules):
        """Apply ipvsadm-restore lines; all-or-nothing (RuleError)."""
        from . import rules as _rules
        _rules.restore(self, rules)

    def save(self, timeouts=False):
        """The text of ``ipvsadm -S -n``; with ``timeouts=True`` and
        declared timeouts, preceded by their ``--set tcp tcpfin udp`` line
        (ipvsadm -S never writes one; ipvsadm -R accepts it)."""
        head = ""
        if timeouts and self.declared_timeouts:
            d = self.declared_timeouts
            head = "--set %d %d %d\n" % (d.get("tcp", 0), d.get("tcp_fin", 0),
                                         d.get("udp", 0))
        return head + text.save(self)

    def list_text(self, stats=False, rate=False, thresholds=False,
                  persistent_conn=False, exact=False):
        """The text of ``ipvsadm -Ln`` (with --stats, --rate, ...)."""
        return text.list_all(self, stats=stats, rate=rate,
                             thresholds=thresholds,
                             persistent_conn=persistent_conn, exact=exact)

    def proc_ip_vs(self):
        """/proc/net/ip_vs"""
        return text.proc_ip_vs(self)

    def proc_ip_vs_stats(self):
        """/proc/net/ip_vs_stats"""
        return text.proc_ip_vs_stats(self)

    def proc_ip_vs_conn(self):
        """/proc/net/ip_vs_conn (the header until issue 6 adds conns)."""
        return text.proc_ip_vs_conn(self)

    def status(self):
        """/proc/net/ip_vs_status (kernel 7.1 only)."""
        if self.kernel == "6.1":
            raise NoSuchFile("/proc/net/ip_vs_status: not in kernel 6.1")
        return text.status(self)

    @property
    def conn_tab_size(self):
        """Conn table size shown as ``size=`` (6.1: the fixed global
        2^conn_tab_bits; 7.1: the per-net table, 0 until the first service
        is added, then 2^8 while there are no connections)."""
        if self.kernel == "6.1":
            return 1 << self.conn_tab_bits
        if self._conn is not None:      # the engine's current array
            self.conn_tab_size_, _, self.conn_tab_lfactor = \
                self._conn.e.table_info()
        return self.conn_tab_size_

    def __repr__(self):
        return (f"<Netns kernel={self.kernel} services={len(self.svc_table)}"
                f" trash={len(self.dest_trash)} t={self.now:g}s>")
