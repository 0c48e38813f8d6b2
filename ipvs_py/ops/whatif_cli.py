"""``ipvs-py whatif``: a rich table of a what-if's figures, ``--json``,
and ``--png`` (matplotlib, Agg) of connections per destination over
time with the change marked."""
import json
import sys

from rich.console import Console
from rich.table import Table

from ..errors import RuleError
from .whatif import WhatIfError, config_of, what_if

#: workload generators the command offers (ipvs_py.workload.generators)
WORKLOADS = ("long_short_mix", "new_connections", "many_clients_few_vips")


def add_arguments(parser):
    """The whatif subcommand's arguments."""
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--rules", metavar="FILE",
                     help="ipvsadm-save/restore rules (- for stdin)")
    src.add_argument("--netns", metavar="NAME",
                     help="start from the live kernel configuration")
    traffic = parser.add_mutually_exclusive_group(required=True)
    traffic.add_argument("--pcap", metavar="FILE", help="replay a capture")
    traffic.add_argument("--workload", choices=WORKLOADS,
                         help="generate traffic to the first service")
    parser.add_argument("--flows", type=int, default=200, metavar="N",
                        help="generated flows (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=60.0,
                        metavar="S", help="generated traffic span "
                                          "(default: %(default)s s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--at", type=float, required=True, metavar="T",
                        help="seconds into the workload to apply the change")
    parser.add_argument("--change", required=True, action="append",
                        metavar="CHANGE",
                        help="ipvsadm-restore line(s) (-e/-d/-a/-E/--set) "
                             "or 'sysctl NAME=VALUE'; repeatable")
    parser.add_argument("--step", type=float, default=1.0, metavar="S",
                        help="sampling period (default: %(default)s s)")
    parser.add_argument("--horizon", type=float, default=300.0, metavar="S",
                        help="how long to wait for old dests to drain "
                             "after the last packet (default: %(default)s s)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--png", metavar="FILE",
                        help="plot connections per destination over time")


def _config(args):
    if args.netns is not None:
        from ..netlink import read_kernel
        from .nsfiles import read_packet_sysctls
        net = read_kernel(args.netns)
        for name, value in read_packet_sysctls(args.netns):
            net.sysctl[name] = value
        return config_of(net)
    name = "<stdin>" if args.rules == "-" else args.rules
    text = sys.stdin.read() if args.rules == "-" else open(args.rules).read()
    from ..netns import Netns
    try:
        Netns().restore(text)
    except RuleError as exc:
        raise WhatIfError(f"{name}:{exc.line}: {exc.message}") from None
    return text, ()


def _workload(args, rules):
    if args.pcap:
        from ..workload.pcap import read_pcap
        batch, _ = read_pcap(args.pcap)
        return batch
    from ..netns import Netns
    from ..workload import generators
    net = Netns()
    net.restore(rules)
    svc = next((s for s in net.services() if not s.fwmark), None)
    if svc is None:
        raise WhatIfError("--workload needs a service with an address "
                          "and port in the rules")
    vips = ((str(svc.addr), svc.port),)
    proto = {6: "tcp", 17: "udp", 132: "sctp"}[svc.protocol]
    if svc.af != 2:
        raise WhatIfError("--workload generates IPv4 traffic only; use "
                          "--pcap for IPv6 services")
    n = args.flows
    if args.workload == "long_short_mix":
        return generators.long_short_mix(max(1, n // 4), n - n // 4,
                                         duration=args.duration, vips=vips,
                                         proto=proto, seed=args.seed)
    rate = n / max(args.duration, 1e-3)
    if args.workload == "new_connections":
        return generators.new_connections(n, rate=rate, vips=vips,
                                          proto=proto, seed=args.seed)
    return generators.many_clients_few_vips(max(1, n // 5), 5, rate=rate,
                                            vips=vips, proto=proto,
                                            seed=args.seed)


def render_table(rep, console):
    """The figures and the per-destination load as rich tables."""
    t = Table(title=f"what if at t={rep.at:g}s: {rep.change}")
    t.add_column("figure")
    t.add_column("value", justify="right")
    for name, value in (
            ("flows before the change", rep.flows_before),
            ("flows continuing past it", rep.flows_continuing),
            ("flows moved to another dest", rep.moved),
            ("flows with packets dropped", rep.dropped),
            ("packets dropped", rep.dropped_packets),
            ("flows broken (packets no longer served)", rep.broken),
            ("flows stuck on a removed/quiesced dest", rep.stuck),
            ("clients that lost persistence", rep.lost_persistence)):
        t.add_row(name, str(value))
    for d, secs in rep.drain_time.items():
        t.add_row(f"{d} drained after", "not within the horizon"
                  if secs is None else f"{secs:g} s")
    console.print(t)
    load = Table(title="new flows per destination")
    for col in ("destination", "before", "after", "after without change"):
        load.add_column(col, justify="right" if col != "destination"
                        else "left")
    for d, v in rep.load.items():
        load.add_row(d, str(v["before"]), str(v["after"]),
                     str(v["after_without_change"]))
    console.print(load)


def plot(rep, path):
    """PNG of ActiveConn + InActConn per destination over time."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, vals in sorted(rep.series.items()):
        ax.plot(rep.series_times, vals, label=name)
    ax.axvline(rep.at, color="k", linestyle="--", linewidth=1)
    ax.annotate("change", (rep.at, ax.get_ylim()[1]), ha="left", va="top",
                xytext=(4, -4), textcoords="offset points")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("connections (ActiveConn + InActConn)")
    ax.set_title(rep.change, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(args):
    """Entry point of ``ipvs-py whatif``; returns the exit status."""
    rules, sysctls = _config(args)
    batch = _workload(args, rules)
    rep = what_if(rules, batch, args.at, "\n".join(args.change),
                  sysctls=sysctls, step=args.step, horizon=args.horizon)
    if args.png:
        plot(rep, args.png)
    if args.json:
        json.dump(rep.as_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render_table(rep, Console(width=100))
    return 0
