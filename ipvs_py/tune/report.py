"""The sweep's rows as a rich terminal table, a CSV file and a JSON file.

Every number comes straight from :class:`ipvs_py.tune.sweep.Row`; the
CSV has one line per setting with the histogram spread over columns, the
JSON also carries each setting's walk histogram and size-over-time
samples, the workload's description and the recommendation.
"""
import csv
import json

from rich import box
from rich.table import Table

from .measure import HIST_LABELS

#: CSV columns, in order (``hist_*`` are bucket counts, ``pct_*`` the
#: ip_vs_status percentages).
CSV_FIELDS = (
    ["kernel", "lfactor", "conn_tab_bits", "buckets", "bits", "conns"]
    + [f"hist_{h}" for h in HIST_LABELS]
    + ["pct_empty"] + [f"pct_{h}" for h in HIST_LABELS[1:]]
    + ["lookups", "walk_mean", "walk_p99", "lookup_ns", "table_bytes",
       "entry_bytes", "total_bytes", "resizes", "pause_max_ms", "replay_s",
       "pareto"])


def p99_text(row, bins):
    """The p99 walk, with ">=" when it fell in the open last bin."""
    return (f">={row.walk_p99}" if row.walk_p99 >= bins - 1
            else str(row.walk_p99))


def mib(n):
    return f"{n / 2**20:.1f}"


def rich_table(rows, *, pareto=(), pick=None, title=None):
    """A rich Table, one line per setting, narrow enough for 80 columns:
    Pareto-optimal settings carry a *, the recommended one a >."""
    from .._core.table import WALK_BINS
    t = Table(title=title, box=box.SIMPLE_HEAD, padding=0, show_edge=False)
    for col in ("lf", "buckets", "empty%", "len1%", "len2%", "3+%", "walk",
                "p99", "ns", "MiB", "resize", "pause ms"):
        t.add_column(col, justify="right", no_wrap=True)
    for i, r in enumerate(rows):
        mark = ">" if i == pick else ("*" if i in pareto else "")
        lf = "-" if r.lfactor is None else f"{r.lfactor:+d}"
        t.add_row(mark + lf, f"2^{r.bits}", str(r.empty_pct),
                  str(r.len_pct[0]), str(r.len_pct[1]),
                  str(sum(r.len_pct[2:])), f"{r.walk_mean:.2f}",
                  p99_text(r, WALK_BINS), f"{r.lookup_ns:.0f}",
                  mib(r.total_bytes), str(r.resizes),
                  f"{r.pause_max_ms:.1f}")
    return t


def csv_rows(rows, pareto=()):
    """The CSV's lines as dicts keyed by :data:`CSV_FIELDS`."""
    out = []
    for i, r in enumerate(rows):
        d = {"kernel": r.kernel,
             "lfactor": "" if r.lfactor is None else r.lfactor,
             "conn_tab_bits": r.conn_tab_bits, "buckets": r.buckets,
             "bits": r.bits, "conns": r.conns}
        d.update({f"hist_{h}": v for h, v in zip(HIST_LABELS, r.hist)})
        d["pct_empty"] = r.empty_pct
        d.update({f"pct_{h}": v for h, v in zip(HIST_LABELS[1:], r.len_pct)})
        d.update(lookups=r.lookups, walk_mean=round(r.walk_mean, 6),
                 walk_p99=r.walk_p99, lookup_ns=round(r.lookup_ns, 3),
                 table_bytes=r.table_bytes, entry_bytes=r.entry_bytes,
                 total_bytes=r.total_bytes, resizes=r.resizes,
                 pause_max_ms=round(r.pause_max_ms, 6),
                 replay_s=round(r.replay_s, 6), pareto=int(i in pareto))
        out.append(d)
    return out


def write_csv(path, rows, pareto=()):
    """One line per setting (columns: :data:`CSV_FIELDS`)."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        w.writerows(csv_rows(rows, pareto))


def write_json(path, rows, *, workload, pareto=(), recommendation=None):
    """``{"workload": ..., "rows": [...], "pareto": [...],
    "recommendation": ...}``; rows are :meth:`Row.as_dict`."""
    doc = {"workload": workload, "rows": [r.as_dict() for r in rows],
           "pareto": sorted(pareto),
           "recommendation": recommendation}
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
