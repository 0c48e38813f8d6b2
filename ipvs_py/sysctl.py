"""The /proc/sys/net/ipv4/vs/ variables of one network namespace.

Names, defaults and accepted ranges follow ``vs_vars[]`` and
``ip_vs_control_net_init_sysctl()`` in net/netfilter/ipvs/ip_vs_ctl.c, the
lblc/lblcr tables in ip_vs_lblc.c / ip_vs_lblcr.c, and (kernel "7.1") the
estimator knobs and the lfactor knobs of commit 8d7de5477e47.  Debian's 6.1
is built without CONFIG_IP_VS_DEBUG, so ``debug_level`` is absent in both
profiles.

A write the kernel would refuse with EINVAL raises ``ValueError`` whose
message names the accepted range; the value is left unchanged.
"""
from collections.abc import MutableMapping

__all__ = ["Sysctl", "SPECS", "names"]

INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1
ULONG_MAX = (1 << 64) - 1


class _Spec:
    __slots__ = ("name", "kind", "lo", "hi", "default", "since")

    def __init__(self, name, kind, default, lo=INT_MIN, hi=INT_MAX,
                 since="6.1"):
        self.name, self.kind, self.default = name, kind, default
        self.lo, self.hi, self.since = lo, hi, since

    def describe(self):
        """The accepted values, as the error messages spell them."""
        if self.kind == "sync_ports":
            return "a power of two >= 1"
        if self.kind == "sync_threshold":
            return ("two integers 'threshold period', both >= 0, "
                    "threshold < period unless period is 0")
        if self.kind == "cpulist":
            return "a CPU list such as '0-3,5'"
        return f"{self.lo}..{self.hi}"


def _init_default(init_net, init_value, other_value):
    return init_value if init_net else other_value


# (name, kind, default, lo, hi, since).  ``default`` may be a callable of
# (init_net, hz, cpus) for the per-netns defaults.
SPECS = [
    _Spec("amemthresh", "int", 1024),
    _Spec("am_droprate", "int", 10),
    _Spec("drop_entry", "int", 0, 0, 3),            # proc_do_defense_mode
    _Spec("drop_packet", "int", 0, 0, 3),
    _Spec("conntrack", "int", 0),                   # CONFIG_IP_VS_NFCT=y
    _Spec("secure_tcp", "int", 0, 0, 3),
    _Spec("snat_reroute", "int", 1),
    _Spec("sync_version", "int", 1, 0, 1),          # proc_dointvec_minmax
    _Spec("sync_ports", "sync_ports", 1, 1, INT_MAX),
    _Spec("sync_persist_mode", "int", 0),
    # nr_free_buffer_pages() / 32: machine dependent; the model's value is
    # what Debian 6.1 shows in a 1 GiB qemu guest (documented difference).
    _Spec("sync_qlen_max", "ulong", 7139, 0, ULONG_MAX),
    _Spec("sync_sock_size", "int", 0),
    _Spec("cache_bypass", "int", 0),
    _Spec("expire_nodest_conn", "int", 0),
    _Spec("sloppy_tcp", "int", 0),
    _Spec("sloppy_sctp", "int", 0),
    _Spec("expire_quiescent_template", "int", 0),
    _Spec("sync_threshold", "sync_threshold", (3, 50)),
    _Spec("sync_refresh_period", "jiffies", 0),     # seconds, stored *HZ
    _Spec("sync_retries", "int", 0, 0, 3),
    _Spec("nat_icmp_send", "int", 0),
    _Spec("pmtu_disc", "int", 1),
    _Spec("backup_only", "int", 0),
    _Spec("conn_reuse_mode", "int", 1),
    _Spec("schedule_icmp", "int", 0),
    _Spec("ignore_tunneled", "int", 0),
    _Spec("run_estimation", "int", 1),
    _Spec("est_cpulist", "cpulist", None, since="7.1"),
    _Spec("est_nice", "int", 0, -20, 19, since="7.1"),
    # 8d7de5477e47: -8..8; defaults from ip_vs_{conn,svc}_default_load_factor
    _Spec("conn_lfactor", "int", lambda init: -4 if init else -2, -8, 8,
          since="7.1"),
    _Spec("svc_lfactor", "int", lambda init: -3 if init else -2, -8, 8,
          since="7.1"),
    # ip_vs_lblc.c / ip_vs_lblcr.c: DEFAULT_EXPIRATION 24*60*60*HZ, jiffies
    _Spec("lblc_expiration", "jiffies", 24 * 60 * 60),
    _Spec("lblcr_expiration", "jiffies", 24 * 60 * 60),
]
_BY_NAME = {s.name: s for s in SPECS}


def names(kernel="7.1"):
    """Every sysctl name of the given kernel profile, in vs_vars order."""
    return [s.name for s in SPECS if kernel != "6.1" or s.since == "6.1"]


def _parse_cpulist(text):
    cpus = set()
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        lo = int(lo)
        hi = int(hi) if hi else lo
        if lo < 0 or hi < lo:
            raise ValueError(part)
        cpus.update(range(lo, hi + 1))
    return cpus


def _fmt_cpulist(cpus):
    cpus = sorted(cpus)
    out, i = [], 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        out.append(str(cpus[i]) if i == j else f"{cpus[i]}-{cpus[j]}")
        i = j + 1
    return ",".join(out)


class Sysctl(MutableMapping):
    """``net.sysctl["svc_lfactor"] = -2``: validated like the kernel.

    Values are Python ints (seconds for the jiffies knobs), a tuple for
    ``sync_threshold`` and a CPU-list string for ``est_cpulist``.  Names
    cannot be added or deleted.  ``on_write`` callbacks (name -> fn(value))
    model handlers with side effects, e.g. svc_lfactor kicking the resizer.
    """

    def __init__(self, kernel="7.1", init_net=True, cpus=4):
        self._kernel = kernel
        self._cpus = cpus
        self._values = {}
        self.on_write = {}
        for name in names(kernel):
            spec = _BY_NAME[name]
            d = spec.default
            if callable(d):
                d = d(init_net)
            if spec.kind == "cpulist":
                d = _fmt_cpulist(range(cpus))
            self._values[name] = d

    # Mapping protocol ---------------------------------------------------
    def __getitem__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise KeyError(f"no /proc/sys/net/ipv4/vs/{name} in kernel "
                           f"{self._kernel}") from None

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def __delitem__(self, name):
        raise TypeError("sysctl entries cannot be deleted")

    def __setitem__(self, name, value):
        if name not in self._values:
            raise KeyError(f"no /proc/sys/net/ipv4/vs/{name} in kernel "
                           f"{self._kernel}")
        spec = _BY_NAME[name]
        new = self._validate(spec, value)
        self._values[name] = new
        cb = self.on_write.get(name)
        if cb is not None:
            cb(new)

    def _bad(self, spec, value):
        return ValueError(f"invalid value {value!r} for {spec.name}: "
                          f"EINVAL, accepted {spec.describe()}")

    def _validate(self, spec, value):
        kind = spec.kind
        if kind == "sync_threshold":
            if isinstance(value, str):
                parts = value.split()
            else:
                parts = list(value)
            try:
                a, b = (int(p) for p in parts)
            except (TypeError, ValueError):
                raise self._bad(spec, value) from None
            if a < 0 or b < 0 or (a >= b and b) or b > INT_MAX or a > INT_MAX:
                raise self._bad(spec, value)
            return (a, b)
        if kind == "cpulist":
            try:
                cpus = _parse_cpulist(value)
            except ValueError:
                raise self._bad(spec, value) from None
            # an empty list is valid: it stops the estimator kthreads
            if cpus and max(cpus) >= self._cpus:
                raise self._bad(spec, value)
            return _fmt_cpulist(cpus)
        if isinstance(value, bool) or not isinstance(value, int):
            try:
                value = int(str(value).strip())
            except ValueError:
                raise self._bad(spec, value) from None
        if not spec.lo <= value <= spec.hi:
            raise self._bad(spec, value)
        if kind == "sync_ports" and value & (value - 1):
            raise self._bad(spec, value)
        return value

    def text(self, name):
        """The text ``cat /proc/sys/net/ipv4/vs/<name>`` prints."""
        v = self[name]
        if isinstance(v, tuple):
            return "\t".join(str(x) for x in v) + "\n"
        return f"{v}\n"

    def spec(self, name):
        """(default, low, high) of one name; see :data:`SPECS`."""
        s = _BY_NAME[name]
        return s

    def __repr__(self):
        return f"Sysctl({self._values!r})"
