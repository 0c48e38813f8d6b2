"""``ipvs-py drain``: the drain with a rich progress bar and a summary.

The bar goes to stderr (stdout keeps the result, for scripts); its total
is the connection count at the start, raised if new connections arrive
(persistence templates still send clients to a quiesced destination).
"""
import json
import sys

from rich.console import Console
from rich.progress import (BarColumn, Progress, TextColumn,
                           TimeElapsedColumn)

from ..netlink import IPVSConnection
from .drain import drain
from .nsfiles import read_sysctl

EXIT_INTERRUPTED = 130


def run_drain(args):
    if args.deadline is not None and args.deadline < 0:
        raise ValueError("--deadline must be >= 0 seconds")
    if args.interval <= 0:
        raise ValueError("--interval must be > 0 seconds")
    console = Console(stderr=True)
    try:
        with IPVSConnection(args.netns) as conn:
            if args.dry_run:
                res = drain(conn, args.service, args.dest, proto=args.proto,
                            deadline=args.deadline, dry_run=True)
            else:
                res = _with_progress(conn, args, console)
    except KeyboardInterrupt:
        # drain() handles Ctrl-C once it may have changed something; one
        # that lands earlier (while looking the targets up) changed nothing
        print("interrupted before any change: the kernel is unchanged",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.json:
        print(json.dumps(res.as_dict(), indent=2))
    else:
        print(_summary(res, args.deadline))
        if res.cut:
            print(_after_cut(args.netns))
    if res.outcome == "interrupted":
        return EXIT_INTERRUPTED
    return 1 if res.outcome == "vanished" else 0


def _with_progress(conn, args, console):
    progress = Progress(TextColumn("[bold]draining[/] {task.description}"),
                        BarColumn(bar_width=20),
                        TextColumn("{task.fields[counts]}"),
                        TimeElapsedColumn(), console=console, transient=False)
    state = {"task": None}

    def tick(active, inactive, persistent, elapsed):
        now = active + inactive
        counts = (f"ActiveConn {active}  InActConn {inactive}"
                  + (f"  persist {persistent}" if persistent else ""))
        if args.deadline is not None:
            counts += f"  deadline in {max(0.0, args.deadline - elapsed):.0f}s"
        if state["task"] is None:
            # started on the first poll, so an error before it (unknown
            # service) prints one clean line and no empty bar
            progress.start()
            state["total"] = max(now, 1)
            state["task"] = progress.add_task(
                f"{args.dest} of {args.service}", total=state["total"],
                counts=counts)
        state["total"] = max(state["total"], now)
        progress.update(state["task"], total=state["total"],
                        completed=state["total"] - now, counts=counts)

    try:
        return drain(conn, args.service, args.dest, proto=args.proto,
                     deadline=args.deadline, interval=args.interval,
                     on_tick=tick)
    finally:
        if state["task"] is not None:
            progress.stop()


def _after_cut(netns):
    """What happens to the cut connections, from the namespace's sysctl."""
    try:
        expire = read_sysctl(netns, "expire_nodest_conn")
    except OSError:
        expire = None
    if expire is None:
        return "  their packets now find no destination and are dropped"
    if expire:
        return ("  expire_nodest_conn=1: each cut entry is expired by its "
                "next packet, so clients see the failure at once")
    return ("  expire_nodest_conn=0: their packets are dropped until the "
            "entries time out; clients hang until then")


def _summary(res, deadline):
    who = f"{res.destination} of {res.service}"
    if res.outcome == "dry-run":
        return (f"dry run: would drain {who} (weight {res.weight_before}, "
                f"{res.active} active / {res.inactive} inactive connections)"
                f" then delete it"
                + (f" (at the latest after {deadline:g}s)" if deadline
                   is not None else "") + ":\n  " + "\n  ".join(res.commands))
    if res.outcome == "drained":
        return (f"drained {who} in {res.elapsed:.1f}s: no connections left, "
                f"destination deleted (0 cut)")
    if res.outcome == "deadline":
        return (f"deadline reached after {res.elapsed:.1f}s: deleted {who} "
                f"with {res.cut} connection(s) cut ({res.active} active, "
                f"{res.inactive} inactive)")
    if res.outcome == "vanished":
        return f"{who}: {res.state}"
    return f"interrupted after {res.elapsed:.1f}s: {who}: {res.state}"
