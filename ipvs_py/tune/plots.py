"""PNG plots of a sweep (matplotlib, Agg: no display needed).

Figures are made with ``matplotlib.figure.Figure`` rather than pyplot, so
nothing touches pyplot's global state or the user's backend choice.
"""
import pathlib

from .measure import HIST_LABELS

FILES = {"chains": "chain-lengths.png", "pareto": "memory-vs-lookup.png",
         "timeline": "table-size.png"}


def _figure(w=8.0, h=4.5):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise RuntimeError("plots need matplotlib: pip install "
                           "'ipvs_py[plot]'") from None
    return Figure(figsize=(w, h), dpi=100, layout="constrained")


def _names(rows):
    return [("bits %d" % r.conn_tab_bits) if r.lfactor is None
            else "%+d" % r.lfactor for r in rows]


def _xlabel(rows):
    if rows and rows[0].lfactor is None:
        return "conn_tab_bits (kernel 6.1)"
    bits = sorted({r.conn_tab_bits for r in rows})
    if len(bits) == 1:
        return f"conn_lfactor (conn_tab_bits {bits[0]})"
    return "conn_lfactor"


def plot_chains(rows, path):
    """Stacked bars: share of buckets empty, len-1 .. len-7+ per setting."""
    import matplotlib
    fig = _figure()
    ax = fig.add_subplot()
    names = [n if len({r.conn_tab_bits for r in rows}) == 1
             else f"{n}/{r.conn_tab_bits}" for n, r in zip(_names(rows), rows)]
    x = range(len(rows))
    bottom = [0.0] * len(rows)
    cmap = matplotlib.colormaps["viridis"]
    for k, label in enumerate(HIST_LABELS):
        share = [100.0 * r.hist[k] / max(sum(r.hist), 1) for r in rows]
        color = "#dddddd" if k == 0 else cmap((k - 1) / (len(HIST_LABELS) - 2))
        ax.bar(x, share, bottom=bottom, color=color, label=label, width=0.8)
        bottom = [b + s for b, s in zip(bottom, share)]
    ax.set_xticks(list(x), names, rotation=90 if len(rows) > 20 else 0)
    ax.set_xlabel(_xlabel(rows))
    ax.set_ylabel("% of buckets")
    ax.set_ylim(0, 100)
    ax.set_title("Conn table chain lengths after the replay")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    fig.savefig(path)


def plot_pareto(rows, path, *, front=(), pick=None, cost_name="lookup_ns"):
    """Memory (MiB, x) against lookup cost (y) per setting; the Pareto
    front joined by a line, the recommended setting ringed."""
    fig = _figure()
    ax = fig.add_subplot()
    cost = ((lambda r: r.walk_mean) if cost_name == "walk_mean"
            else (lambda r: r.lookup_ns))
    xs = [r.total_bytes / 2**20 for r in rows]
    ys = [cost(r) for r in rows]
    ax.scatter(xs, ys, color="tab:blue", zorder=3, label="setting")
    # settings with the same memory (e.g. lfactors at conn_tab_bits' cap)
    # share one label, "-8..-2", at their cheapest point
    groups = {}
    for name, x, y in zip(_names(rows), xs, ys):
        groups.setdefault(x, []).append((name, y))
    for x, members in groups.items():
        text = (members[0][0] if len(members) == 1
                else f"{members[0][0]}..{members[-1][0]}")
        ax.annotate(text, (x, min(y for _, y in members)),
                    textcoords="offset points", xytext=(4, 4),
                    fontsize="small")
    if front:
        pts = sorted((xs[i], ys[i]) for i in front)
        ax.step([p[0] for p in pts], [p[1] for p in pts], where="post",
                color="tab:red", zorder=2, label="Pareto front")
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], color="tab:red",
                   zorder=4)
    if pick is not None:
        ax.scatter([xs[pick]], [ys[pick]], s=250, facecolors="none",
                   edgecolors="black", linewidths=2, zorder=5,
                   label="recommended")
    if xs and max(xs) > 8 * min(xs):     # log only when it spans a lot
        ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("memory: table + conns (MiB)")
    ax.set_ylabel("mean nodes walked per lookup" if cost_name == "walk_mean"
                  else "measured ns per lookup")
    ax.set_title("Memory vs lookup cost")
    ax.legend(fontsize="small")
    fig.savefig(path)


def plot_timeline(rows, path):
    """Buckets over virtual time per setting (sampled at the replay's
    chunk boundaries), with the conn count for reference."""
    import matplotlib
    fig = _figure()
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["coolwarm"]
    for i, (name, r) in enumerate(zip(_names(rows), rows)):
        t = [p[0] for p in r.timeline]
        ax.step(t, [p[2] for p in r.timeline], where="post",
                color=cmap(i / max(len(rows) - 1, 1)), label=name)
    if rows:
        r = rows[0]
        ax.plot([p[0] for p in r.timeline], [p[1] for p in r.timeline],
                "k--", label="conns")
    ax.set_yscale("log", base=2)
    ax.set_xlabel("virtual time (s)")
    ax.set_ylabel("buckets")
    ax.set_title("Conn table size during the replay")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small",
              ncol=1 if len(rows) <= 18 else 2)
    fig.savefig(path)


def write_plots(rows, out_dir, *, front=(), pick=None, cost_name="lookup_ns"):
    """The three PNGs in ``out_dir`` (created); returns their paths."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / v for k, v in FILES.items()}
    plot_chains(rows, paths["chains"])
    plot_pareto(rows, paths["pareto"], front=front, pick=pick,
                cost_name=cost_name)
    plot_timeline(rows, paths["timeline"])
    return paths
