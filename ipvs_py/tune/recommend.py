"""Pick a setting from the sweep, and the lines that apply it.

Each setting is a point (memory, cost): memory = bytes of table + conns,
cost = the measured ns per lookup (``lookup_ns``).  A point is
Pareto-optimal when no other point is at least as good in both and better
in one.  The rules:

- ``memory_budget`` alone: the cheapest lookup among settings that fit the
  budget (ties: the smaller memory);
- a lookup target alone (``max_lookup_ns`` on the measured ns, and/or
  ``max_chain`` on the mean nodes walked per lookup): the smallest memory
  among settings that meet it (ties: the cheaper lookup);
- both: the smallest memory among settings that fit and meet the target.

The cost the rules minimise and the Pareto front is drawn on is
``lookup_ns``, or ``walk_mean`` when ``max_chain`` is the only lookup
target (:func:`cost_of`).  The pick is Pareto-optimal in (memory, cost)
among all settings when at most one lookup target is given (a point that
dominated it would fit the same budget and target and win the rule), and
among the settings within ``max_chain`` when both targets are given.
"""
import dataclasses


def dominates(a, b):
    """Point ``a`` dominates ``b``: no worse in every coordinate, better
    in at least one."""
    return all(x <= y for x, y in zip(a, b)) and any(
        x < y for x, y in zip(a, b))


def pareto_front(points):
    """Indices of the non-dominated points (ties: equal points are all
    kept), in input order.  O(n log n): sort by the first coordinate, keep
    points that lower the best second coordinate so far."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0],
                                                      points[i][1]))
    keep = []
    best = None
    i = 0
    while i < len(order):
        # all points with the same (x, y) are kept or dropped together
        j = i
        while j < len(order) and points[order[j]] == points[order[i]]:
            j += 1
        y = points[order[i]][1]
        if best is None or y < best:
            keep.extend(order[i:j])
            best = y
        i = j
    return sorted(keep)


def cost_of(max_lookup_ns=None, max_chain=None):
    """The cost function of the rules: mean nodes walked when
    ``max_chain`` is the only lookup target, else ns per lookup."""
    if max_chain is not None and max_lookup_ns is None:
        return lambda r: r.walk_mean
    return lambda r: r.lookup_ns


def points_of(rows, cost=None):
    """(memory bytes, cost) of each row (cost: ns per lookup by default)."""
    cost = cost or cost_of()
    return [(r.total_bytes, cost(r)) for r in rows]


@dataclasses.dataclass
class Recommendation:
    """``index`` into the rows (None: no setting qualifies), the rule
    applied and a one-line reason."""

    index: object
    rule: str
    reason: str

    def as_dict(self):
        return dataclasses.asdict(self)


def recommend(rows, *, memory_budget=None, max_lookup_ns=None,
              max_chain=None):
    """Apply the module's rules; returns a :class:`Recommendation` or None
    when no target was given."""
    if memory_budget is None and max_lookup_ns is None and max_chain is None:
        return None
    for name, v in (("memory budget", memory_budget),
                    ("max lookup ns", max_lookup_ns),
                    ("max chain", max_chain)):
        if v is not None and not v > 0:
            raise ValueError(f"{name} must be > 0, got {v}")

    def fits(r):
        return memory_budget is None or r.total_bytes <= memory_budget

    def meets(r):
        return ((max_lookup_ns is None or r.lookup_ns <= max_lookup_ns) and
                (max_chain is None or r.walk_mean <= max_chain))

    ok = [i for i, r in enumerate(rows) if fits(r) and meets(r)]
    target = " and ".join(t for t in (
        memory_budget is not None and f"memory <= {memory_budget} bytes",
        max_lookup_ns is not None and f"lookup <= {max_lookup_ns:g} ns",
        max_chain is not None and f"mean chain walked <= {max_chain:g}")
        if t)
    cost = cost_of(max_lookup_ns, max_chain)
    if max_lookup_ns is None and max_chain is None:
        rule = "cheapest lookup within the memory budget"
        key = (lambda i: (cost(rows[i]), rows[i].total_bytes))
    else:
        rule = "smallest memory meeting the lookup target"
        if memory_budget is not None:
            rule += " within the memory budget"
        key = (lambda i: (rows[i].total_bytes, cost(rows[i])))
    if not ok:
        return Recommendation(None, rule, f"no setting has {target}")
    pick = min(ok, key=key)
    r = rows[pick]
    return Recommendation(pick, rule, (
        f"{_label(r)}: {r.total_bytes / 2**20:.1f} MiB, "
        f"{r.lookup_ns:.0f} ns/lookup, {r.walk_mean:.2f} nodes walked "
        f"(target: {target})"))


def _label(r):
    if r.lfactor is None:
        return f"conn_tab_bits {r.conn_tab_bits}"
    return f"conn_lfactor {r.lfactor:+d} (conn_tab_bits {r.conn_tab_bits})"


def apply_lines(row, *, bits_swept=False):
    """The commands that apply ``row``'s setting, as comment-led lines.

    7.1 (8d7de5477e47): ``net.ipv4.vs.conn_lfactor`` (-8..8), per network
    namespace; conn_tab_bits is the ip_vs module parameter (the table's
    maximum).  6.1 has no lfactor sysctls: only conn_tab_bits, which fixes
    the one global table's size, set when the module loads."""
    lines = []
    if row.lfactor is None:
        lines.append("# kernel 6.1 has no conn_lfactor/svc_lfactor sysctls "
                     "(added in 7.1); its conn table is fixed at "
                     "2^conn_tab_bits buckets, set when ip_vs loads:")
        bits_swept = True
    else:
        lines += ["# now, in the namespace that runs IPVS:",
                  f"sysctl -w net.ipv4.vs.conn_lfactor={row.lfactor}",
                  "# and at boot:",
                  f"echo 'net.ipv4.vs.conn_lfactor = {row.lfactor}' > "
                  f"/etc/sysctl.d/90-ipvs-lfactor.conf"]
    if bits_swept:
        lines += [f"echo 'options ip_vs conn_tab_bits={row.conn_tab_bits}' > "
                  f"/etc/modprobe.d/ip_vs.conf",
                  "# (takes effect when the ip_vs module is next loaded)"]
    return lines
