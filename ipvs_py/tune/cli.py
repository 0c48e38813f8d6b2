"""``ipvs-py tune``: sweep conn_lfactor (and conn_tab_bits) over a workload,
report, plot, recommend.

Registered in ``ipvs_py.cli.COMMANDS``; this module holds its arguments
and its run function so the shared CLI file only gains one entry.
"""
import pathlib
import re
import sys

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress,
                           TextColumn, TimeElapsedColumn)

from ..errors import RuleError
from .plots import write_plots
from .recommend import (apply_lines, cost_of, pareto_front, points_of,
                        recommend)
from .report import rich_table, write_csv, write_json
from .measure import LFACTORS, settings_for, sweep
from .workloads import GENERATORS, build, parse_vip

EXAMPLE_RULES = pathlib.Path(__file__).parent.parent / "examples" / "lb.rules"
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_bytes(text):
    """``"64M"``, ``"64MiB"``, ``"1.5G"``, ``"1000000"`` -> bytes (binary
    units); ValueError naming the text otherwise."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)(i?[bB])?\s*",
                     str(text))
    if not m:
        raise ValueError(f"bad memory size {text!r}: expected e.g. 64M, "
                         f"1.5GiB or 67108864")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_int_list(text, name):
    """``"-8..8"``, ``"-4,0,4"``, ``"12,16..18"`` -> sorted unique ints."""
    out = set()
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(-?\d+)\.\.(-?\d+)", part)
        try:
            if m:
                lo, hi = int(m.group(1)), int(m.group(2))
                if lo > hi:
                    raise ValueError
                out.update(range(lo, hi + 1))
            else:
                out.add(int(part))
        except ValueError:
            raise ValueError(f"bad {name} {text!r}: expected integers or "
                             f"ranges like -8..8 or -4,0,4") from None
    return sorted(out)


def add_arguments(parser):
    """The ``tune`` subcommand's options."""
    w = parser.add_argument_group("workload")
    w.add_argument("--workload", metavar="NAME", default=None, help="generator (default new_connections): "
                   + ", ".join(GENERATORS))
    w.add_argument("-p", "--param", action="append", default=[],
                   metavar="KEY=VALUE",
                   help="generator parameter, repeatable (e.g. -p "
                        "n_flows=10000 -p s=1.2)")
    w.add_argument("--conns", type=int, default=200_000, metavar="N",
                   help="n_conns of new_connections when not given with "
                        "-p (default: %(default)s)")
    w.add_argument("--pcap", metavar="FILE",
                   help="replay this pcap/pcapng capture instead")
    w.add_argument("--vip", action="append", metavar="ADDR:PORT",
                   help="VIPs the generator sends to, repeatable (default: "
                        "the rules' IPv4 services of its protocol); with "
                        "--pcap: keep only packets to these")
    s = parser.add_argument_group("sweep")
    s.add_argument("--rules", default=str(EXAMPLE_RULES), metavar="FILE",
                   help="ipvsadm-restore rules (default: the example "
                        "lb.rules)")
    s.add_argument("--lfactor", default=None, metavar="LIST",
                   help="conn_lfactor values, e.g. --lfactor=-8..8 or -4,0,4 "
                        "(default: all 17, -8..8)")
    s.add_argument("--bits", default=None, metavar="LIST",
                   help="conn_tab_bits values (default: 20; with --kernel "
                        "6.1: 12,14,16,18,20)")
    s.add_argument("--kernel", choices=("7.1", "6.1"), default="7.1",
                   help="model profile (6.1: fixed table, no lfactor)")
    s.add_argument("--chunks", type=int, default=40, metavar="N",
                   help="size-over-time samples per setting (default: "
                        "%(default)s)")
    s.add_argument("--timing-rows", type=int, default=200_000, metavar="N",
                   help="lookups timed per setting (default: %(default)s)")
    s.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="replay N settings at once on threads (the replay "
                        "runs without the GIL; ns is noisier; default: "
                        "%(default)s)")
    s.add_argument("--seed", type=int, default=0,
                   help="workload seed (default: %(default)s)")
    o = parser.add_argument_group("output and recommendation")
    o.add_argument("--csv", metavar="FILE", help="write the rows as CSV")
    o.add_argument("--json", metavar="FILE",
                   help="write rows, timelines and the recommendation as "
                        "JSON")
    o.add_argument("--plots", metavar="DIR",
                   help="write chain-lengths.png, memory-vs-lookup.png and "
                        "table-size.png here")
    o.add_argument("--memory-budget", metavar="BYTES",
                   help="pick the cheapest lookup within this many bytes "
                        "of table + conns (64M, 1G...)")
    o.add_argument("--max-lookup-ns", type=float, metavar="NS",
                   help="pick the smallest memory with lookups this fast")
    o.add_argument("--max-chain", type=float, metavar="N",
                   help="pick the smallest memory walking at most N nodes "
                        "per lookup on average")


def _settings(args):
    if args.kernel == "6.1" and args.lfactor is not None:
        raise ValueError("kernel 6.1 has no conn_lfactor sysctl (it came "
                         "with 7.1's resizable tables); sweep --bits "
                         "instead")
    lfs = (parse_int_list(args.lfactor, "--lfactor") if args.lfactor
           else list(LFACTORS))
    bits = (parse_int_list(args.bits, "--bits") if args.bits else
            ([12, 14, 16, 18, 20] if args.kernel == "6.1" else [20]))
    return settings_for(lfs, bits, args.kernel)


def _load(args):
    """Everything that can fail on bad input, before any replay runs."""
    from ..netns import Netns
    for name, low in (("chunks", 1), ("timing_rows", 0), ("jobs", 1)):
        if getattr(args, name) < low:
            raise ValueError(f"--{name.replace('_', '-')} must be >= {low}")
    settings = _settings(args)
    budget = (parse_bytes(args.memory_budget)
              if args.memory_budget is not None else None)
    for name in ("max_lookup_ns", "max_chain"):
        v = getattr(args, name)
        if v is not None and not v > 0:
            raise ValueError(f"--{name.replace('_', '-')} must be > 0")
    if budget is not None and budget <= 0:
        raise ValueError("--memory-budget must be > 0")
    try:
        rules = pathlib.Path(args.rules).read_text()
    except OSError as exc:
        raise ValueError(f"cannot read rules {args.rules}: "
                         f"{exc.strerror}") from None
    net = Netns(kernel=args.kernel)
    try:
        net.restore(rules)
    except RuleError as exc:
        raise ValueError(f"{args.rules}:{exc.line}: {exc.message}") from None
    vips = [parse_vip(v) for v in args.vip] if args.vip else None
    params = list(args.param)
    if (args.pcap is None and (args.workload or "new_connections")
            == "new_connections"
            and not any(p.startswith("n_conns=") for p in params)):
        if args.conns < 1:
            raise ValueError("--conns must be >= 1")
        params.append(f"n_conns={args.conns}")
    if args.pcap is not None:
        if not pathlib.Path(args.pcap).is_file():
            raise ValueError(f"pcap file {args.pcap} does not exist")
        if args.workload or args.param:
            raise ValueError("give either --workload/--param or --pcap, "
                             "not both")
        params = []
    batch, desc = build(args.workload, params, pcap=args.pcap, vips=vips,
                        net=net, seed=args.seed)
    desc["rules"] = str(args.rules)
    return settings, rules, batch, desc, budget


def progress_bar(console):
    """The rich progress bar the sweeps use (transient: gone when done)."""
    return Progress(TextColumn("{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True)


def report(console, rows, *, memory_budget=None, max_lookup_ns=None,
           max_chain=None, title=None):
    """Print the table and the recommendation; returns (front, rec)."""
    cost = cost_of(max_lookup_ns, max_chain)
    front = pareto_front(points_of(rows, cost))
    rec = recommend(rows, memory_budget=memory_budget,
                    max_lookup_ns=max_lookup_ns, max_chain=max_chain)
    pick = rec.index if rec else None
    console.print(rich_table(rows, pareto=set(front), pick=pick, title=title))
    cost_name = ("nodes walked" if max_chain is not None
                 and max_lookup_ns is None else "ns per lookup")
    console.print(f"* Pareto-optimal in (memory, {cost_name}); > "
                  "recommended.  %: as ip_vs_status (len-N of non-empty "
                  "buckets).  walk/p99: nodes compared per lookup over "
                  "every lookup of the replay; ns: timed lookups of random "
                  "workload rows after it; MiB: table + conns.",
                  highlight=False)
    if rows and rows[0].kernel == "6.1":
        console.print("Kernel 6.1 has no conn_lfactor/svc_lfactor sysctls "
                      "(net.ipv4.vs.*_lfactor came with 7.1): its table is "
                      "fixed at 2^conn_tab_bits buckets.", highlight=False)
    if rec is None:
        console.print("Give --memory-budget, --max-lookup-ns or --max-chain "
                      "for a recommendation.")
    elif rec.index is None:
        console.print(f"[red]No recommendation[/red] ({rec.rule}): "
                      f"{rec.reason}", highlight=False)
    else:
        console.print(f"[bold]Recommended[/bold] ({rec.rule}): "
                      f"{rec.reason}", highlight=False)
        bits_swept = len({r.conn_tab_bits for r in rows}) > 1
        for line in apply_lines(rows[pick], bits_swept=bits_swept):
            console.print(line, markup=False, highlight=False)
    return front, rec


def run(args, console=None):
    """Run ``ipvs-py tune``; returns the exit code (2: bad input, 1: a
    target no setting meets)."""
    console = console or Console()
    try:
        settings, rules, batch, desc, budget = _load(args)
    except (ValueError, OSError) as exc:
        print(f"ipvs-py tune: {exc}", file=sys.stderr)
        return 2
    console.print(f"Workload: {desc.get('generator') or desc['pcap']}, "
                  f"{len(batch):,} packets; rules {args.rules}; "
                  f"{len(settings)} settings (kernel {args.kernel})",
                  highlight=False)
    if "summary" in desc:
        console.print(f"pcap: {desc['summary']}", highlight=False)
    with progress_bar(console) as progress:
        rows = sweep(batch, rules, settings, chunks=args.chunks,
                     timing_rows=args.timing_rows, seed=args.seed,
                     progress=progress, jobs=args.jobs)
    front, rec = report(console, rows, memory_budget=budget,
                        max_lookup_ns=args.max_lookup_ns,
                        max_chain=args.max_chain)
    pick = rec.index if rec else None
    recd = rec.as_dict() if rec else None
    if rec is not None and rec.index is not None:
        recd["apply"] = apply_lines(
            rows[pick], bits_swept=len({r.conn_tab_bits for r in rows}) > 1)
    if args.csv:
        write_csv(args.csv, rows, set(front))
        console.print(f"CSV: {args.csv}", highlight=False)
    if args.json:
        write_json(args.json, rows, workload=desc, pareto=front,
                   recommendation=recd)
        console.print(f"JSON: {args.json}", highlight=False)
    if args.plots:
        cost_name = ("walk_mean" if args.max_chain is not None
                     and args.max_lookup_ns is None else "lookup_ns")
        paths = write_plots(rows, args.plots, front=front, pick=pick,
                            cost_name=cost_name)
        console.print("Plots: " + ", ".join(str(p) for p in paths.values()),
                      highlight=False)
    return 1 if rec is not None and rec.index is None else 0
