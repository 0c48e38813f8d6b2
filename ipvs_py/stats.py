"""Per-object traffic counters (struct ip_vs_stats / ip_vs_kstats).

The packet path (issue 6) adds to ``kstats``; ``zero()`` is ipvsadm -Z:
the kernel keeps the raw counters and records a zero point (``kstats0``),
and the rates restart from 0.
"""

__all__ = ["Stats", "COUNTERS", "RATES"]

COUNTERS = ("conns", "inpkts", "outpkts", "inbytes", "outbytes")
RATES = ("cps", "inpps", "outpps", "inbps", "outbps")


class Stats:
    __slots__ = COUNTERS + RATES + ("_zero",)

    def __init__(self):
        for name in COUNTERS + RATES:
            setattr(self, name, 0)
        self._zero = (0,) * len(COUNTERS)

    def zero(self):
        """ip_vs_zero_stats(): counters from now on, rates zeroed."""
        self._zero = tuple(getattr(self, n) for n in COUNTERS)
        for name in RATES:
            setattr(self, name, 0)

    def shown(self):
        """ip_vs_copy_stats(): what user space sees, as a dict."""
        out = {n: getattr(self, n) - z for n, z in zip(COUNTERS, self._zero)}
        for name in RATES:
            out[name] = getattr(self, name)
        return out

    def __repr__(self):
        return "Stats(%s)" % ", ".join(f"{k}={v}" for k, v in
                                       self.shown().items())
