"""The ``ipvs-py`` command.

A thin front end: each subcommand parses its arguments and calls into the
library; no table, scheduling or kernel logic lives here.  Subcommands are
registered in ``COMMANDS`` (name -> (help, add_arguments, run)), so a new
capability adds one entry rather than editing a growing if/elif chain.
"""
import argparse
import sys

from . import __version__


def _add_demo_args(parser):
    parser.add_argument(
        "--keys", type=int, default=1_000_000, metavar="N",
        help="keys hashed per function in the speed table (default: %(default)s)")
    parser.add_argument(
        "--conns", type=int, default=1_000_000, metavar="N",
        help="new connections replayed per conn_lfactor in the packet-path "
             "sweep; 0 skips it (default: %(default)s)")
    parser.add_argument(
        "--seed", type=int, default=1,
        help="seed of the random table keys and workload (default: %(default)s)")
    parser.add_argument(
        "--out", default="ipvs-py-demo-out", metavar="DIR",
        help="where the tuning plots go (default: %(default)s)")


def _run_demo(args):
    from .demo import run
    return run(n_keys=args.keys, seed=args.seed, n_conns=args.conns,
               out_dir=args.out)


def _add_hash_args(parser):
    parser.add_argument("function", choices=sorted(_HASH_FUNCS),
                        help="kernel hash function to compute")
    parser.add_argument("words", nargs="*", default=[],
                        help="u32/u64 words (decimal or 0x hex); for "
                             "siphash/hsiphash/jhash: the data as hex bytes")
    parser.add_argument("--key", default="000102030405060708090a0b0c0d0e0f",
                        help="16-byte siphash key as 32 hex digits "
                             "(default: the kernel self-test key)")
    parser.add_argument("--initval", default="0",
                        help="jhash seed (default: 0)")
    parser.add_argument("--bits", type=int, default=32,
                        help="hash_32/hash_64 output bits (default: 32)")


_HASH_FUNCS = {
    "siphash": "bytes", "hsiphash": "bytes", "jhash": "bytes-seed",
    "siphash_1u64": "key", "siphash_2u64": "key", "siphash_3u64": "key",
    "siphash_4u64": "key", "siphash_1u32": "key", "siphash_2u32": "key",
    "siphash_3u32": "key", "siphash_4u32": "key",
    "hsiphash_1u32": "key", "hsiphash_2u32": "key", "hsiphash_3u32": "key",
    "hsiphash_4u32": "key",
    "jhash_1word": "seed", "jhash_2words": "seed", "jhash_3words": "seed",
    "jhash2": "list-seed", "hash_32": "bits", "hash_64": "bits",
}


def _run_hash(args):
    from . import hashing

    fn = getattr(hashing, args.function)
    kind = _HASH_FUNCS[args.function]
    try:
        key = bytes.fromhex(args.key)
        initval = int(args.initval, 0)
        if kind.startswith("bytes"):
            data = bytes.fromhex("".join(args.words))
            value = fn(data, initval) if kind == "bytes-seed" else fn(data, key)
        else:
            words = [int(w, 0) for w in args.words]
            if kind == "key":
                value = fn(*words, key)
            elif kind == "seed":
                value = fn(*words, initval)
            elif kind == "list-seed":
                value = fn(words, initval)
            else:
                value = fn(*words, args.bits)
    except (TypeError, ValueError) as exc:
        print(f"ipvs-py hash: {exc}", file=sys.stderr)
        return 2
    print(f"0x{value:x}")
    return 0


def _netlink_errors(fn):
    """Run ``fn``; a bridge or rules error becomes one line and exit 1."""
    from .errors import RuleError
    from .netlink import NetlinkError
    try:
        return fn()
    except RuleError as exc:
        print(f"ipvs-py: {exc}", file=sys.stderr)
        return 1
    except (NetlinkError, OSError, ValueError) as exc:
        print(f"ipvs-py: {exc}", file=sys.stderr)
        return 1


def _add_sync_args(parser):
    parser.add_argument("rules", metavar="RULES",
                        help="ipvsadm-save/restore rules file (- for stdin)")
    parser.add_argument("--netns", metavar="NAME",
                        help="network namespace (name under /var/run/netns, "
                             "pid or path; default: this process's)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan as ipvsadm commands, change nothing")
    parser.add_argument("--prune", action="store_true",
                        help="also delete kernel services the rules do not name")
    parser.add_argument("--graceful", action="store_true",
                        help="remove destinations by weight 0 first; delete "
                             "them once drained (sync again to finish)")


def _run_sync(args):
    from .errors import RuleError
    from .netlink import kernel_profile, sync
    from .netns import Netns

    def go():
        name = "<stdin>" if args.rules == "-" else args.rules
        text = sys.stdin.read() if args.rules == "-" else open(args.rules).read()
        desired = Netns(kernel=kernel_profile())
        try:
            desired.restore(text)
        except RuleError as exc:
            print(f"ipvs-py: {name}:{exc.line}: {exc.message}", file=sys.stderr)
            return 1
        res = sync(desired, args.netns, dry_run=args.dry_run,
                   prune=args.prune, graceful=args.graceful)
        for cmd in res.commands():
            print(cmd)
        verb = "would make" if args.dry_run else "made"
        print(f"# {verb} {len(res.steps)} change(s)", file=sys.stderr)
        return 0
    return _netlink_errors(go)


def _add_kernel_args(parser):
    sub = parser.add_subparsers(dest="kernel_command", metavar="ACTION",
                                required=True)
    save = sub.add_parser("save", help="the kernel's IPVS rules as "
                                       "`ipvsadm -S -n` text, after a "
                                       "`--set TCP TCPFIN UDP` timeouts line")
    save.add_argument("--no-timeouts", action="store_true",
                      help="leave out the --set line (exactly ipvsadm -S -n)")
    snap = sub.add_parser("snapshot", help="the whole IPVS state as JSON "
                                           "(schema: docs/operators.md)")
    snap.add_argument("--conns", action="store_true",
                      help="add the connections (/proc/net/ip_vs_conn)")
    snap.add_argument("--json", action="store_true",
                      help="JSON output (the only format; accepted for "
                           "scripts that spell it out)")
    metrics = sub.add_parser("metrics", help="Prometheus text exposition, "
                                             "per service and destination")
    metrics.add_argument("--conns", action="store_true",
                         help="also count connection entries per "
                              "destination and state")
    for p in (save, snap, metrics):
        p.add_argument("--netns", metavar="NAME",
                       help="network namespace (default: this process's)")


def _run_kernel(args):
    import json

    from .netlink import IPVSConnection, read_kernel
    from .ops import kernel_snapshot, render_metrics

    def go():
        if args.kernel_command == "save":
            net = read_kernel(args.netns)
            sys.stdout.write(net.save(timeouts=not args.no_timeouts))
            return 0
        with IPVSConnection(args.netns) as conn:
            doc = kernel_snapshot(conn, args.netns, conns=args.conns)
        if args.kernel_command == "snapshot":
            json.dump(doc, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            sys.stdout.write(render_metrics(doc))
        return 0
    return _netlink_errors(go)


def _add_drain_args(parser):
    parser.add_argument("service", metavar="VIP:PORT",
                        help="the service (ADDR:PORT, [V6]:PORT or fwmark:N)")
    parser.add_argument("dest", metavar="RIP:PORT",
                        help="the destination to drain and delete")
    parser.add_argument("--deadline", type=float, metavar="S",
                        help="delete after S seconds even if connections "
                             "remain (default: wait until drained)")
    parser.add_argument("--netns", metavar="NAME",
                        help="network namespace (default: this process's)")
    parser.add_argument("--dry-run", action="store_true",
                        help="say what would be done, change nothing")
    parser.add_argument("--proto", choices=("tcp", "udp", "sctp"),
                        help="the service protocol when VIP:PORT has several")
    parser.add_argument("--interval", type=float, default=0.5, metavar="S",
                        help="poll period (default: %(default)s s)")
    parser.add_argument("--json", action="store_true",
                        help="print the result as JSON")


def _run_drain(args):
    from .ops.drain_cli import run_drain
    return _netlink_errors(lambda: run_drain(args))


def _add_explain_args(parser):
    from .ops.explain_cli import add_arguments
    add_arguments(parser)


def _run_explain(args):
    from .ops.explain_cli import run
    return _netlink_errors(lambda: run(args))


def _add_whatif_args(parser):
    from .ops.whatif_cli import add_arguments
    add_arguments(parser)


def _run_whatif(args):
    from .ops.whatif_cli import run
    return _netlink_errors(lambda: run(args))


def _add_tune_args(parser):
    from .tune.cli import add_arguments
    add_arguments(parser)


def _run_tune(args):
    from .tune.cli import run
    return run(args)


COMMANDS = {
    "demo": ("tour of what the model can do (grows with each capability)",
             _add_demo_args, _run_demo),
    "hash": ("compute one kernel hash (siphash, hsiphash, jhash, hash_32...)",
             _add_hash_args, _run_hash),
    "sync": ("make kernel IPVS in a namespace match a rules file, with the "
             "fewest changes (rolled back on error)", _add_sync_args, _run_sync),
    "kernel": ("read kernel IPVS: save (rules), snapshot (JSON), metrics "
               "(Prometheus)", _add_kernel_args, _run_kernel),
    "tune": ("replay a workload at each conn_lfactor: chain lengths, "
             "lookup cost, memory, plots, a recommendation",
             _add_tune_args, _run_tune),
    "drain": ("quiesce a kernel destination (weight 0), wait for its "
              "connections to end, delete it", _add_drain_args, _run_drain),
    "explain": ("which real server one packet gets and why, step by step "
                "(rules file or live kernel)", _add_explain_args,
                _run_explain),
    "whatif": ("replay traffic, apply a change at time t, report moved, "
               "dropped and stuck flows and drain times", _add_whatif_args,
               _run_whatif),
}


def build_parser():
    """The argparse parser of ``ipvs-py`` with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="ipvs-py",
        description="A faithful userspace model of Linux IPVS: its tables, "
                    "hashes and decisions, and a bridge to the real kernel.")
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_args, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_args(p)
        p.set_defaults(run=run)
    return parser


def main(argv=None):
    """Entry point of the ``ipvs-py`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
