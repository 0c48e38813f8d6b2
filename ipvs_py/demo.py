"""``ipvs-py demo``: a short tour of the model.

It builds one network namespace from an example ipvsadm rules file, shows
the kernel texts the model renders for it, which real server the kernel's
schedulers give each client, the netlink plan that would put the same
configuration into a kernel, and the kernel's hash functions at work with
their speed.  It needs no root and no kernel IPVS: everything is the model.
"""
import ipaddress
import pathlib
import random
import socket
import struct
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from . import hashing
from .netns import Netns

RULES = pathlib.Path(__file__).with_name("examples") / "lb.rules"


def _be32(addr):
    """The raw 32-bit word of an IPv4 address as the kernel holds it
    (network byte order in memory, read as a native little-endian u32)."""
    return struct.unpack("<I", socket.inet_aton(addr))[0]


def _be16(port):
    return struct.unpack("<H", struct.pack(">H", port))[0]


def _examples(console, key):
    """The kernel's table hashes applied to one service and one connection."""
    k0 = int.from_bytes(key[:8], "little") & 0xFFFFFFFF
    vip, vport, proto = "192.0.2.10", 80, socket.IPPROTO_TCP
    cip, cport = "198.51.100.7", 40000
    # ip_vs_svc_hashval: jhash_3words(ntohs(port), protocol, addr, key[0])
    svc = hashing.jhash_3words(vport, proto, _be32(vip), k0)
    # ip_vs_conn_hashkey (IPv4): siphash_2u64(proto<<16 | port | addr<<32,
    #                                         laddr<<32 | lport, key)
    conn = hashing.siphash_2u64(proto << 16 | _be16(cport) | _be32(cip) << 32,
                                _be32(vip) << 32 | _be16(vport), key)
    # ip_vs_sh_hashkey: hash_32(ntohs(port) + ntohl(addr), 8), port 0
    # unless the sh-port flag is set.
    sh_slot = hashing.hash_32(int(ipaddress.IPv4Address(cip)), 8)

    t = Table(title="Kernel hashes on IPVS keys (random table key)")
    t.add_column("use")
    t.add_column("kernel function")
    t.add_column("value", justify="right")
    t.add_column("lands in", justify="right")
    for use, fn, val, where in [
        (f"service TCP {vip}:{vport}", "jhash_3words", svc,
         f"bucket {svc & 0x7FFFFFFF & 15} of 16"),
        (f"conn {cip}:{cport} -> {vip}:{vport}", "siphash_2u64", conn,
         f"bucket {conn & 0x7FFFFFFF & 4095} of 4096"),
        (f"sh scheduler, client {cip}", "hash_32(addr, 8)", sh_slot,
         f"slot {sh_slot} of 256"),
    ]:
        t.add_row(use, fn, f"0x{val:x}", where)
    console.print(t)


def _time_best(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _speed(console, key, n_keys, rng):
    u64 = rng.integers(0, 2**63, size=(n_keys, 2), dtype=np.uint64)
    u32 = rng.integers(0, 2**32, size=(n_keys, 3), dtype=np.uint32)
    few = [tuple(map(int, row)) for row in u64[:20000]]
    rows = [
        ("siphash_2u64 (conn key)",
         lambda: hashing.siphash_u64_batch(u64, key),
         lambda: [hashing.siphash_2u64(a, b, key) for a, b in few]),
        ("jhash_3words (service key)",
         lambda: hashing.jhash_words_batch(u32, 7),
         lambda: [hashing.jhash_3words(a & 0xFFFFFFFF, b & 0xFFFFFFFF, 6, 7)
                  for a, b in few]),
        ("hsiphash_3u32",
         lambda: hashing.hsiphash_u32_batch(u32, key),
         lambda: [hashing.hsiphash_3u32(a & 0xFFFFFFFF, b & 0xFFFFFFFF, 6, key)
                  for a, b in few]),
        ("hash_32 (sh/dh slot)",
         lambda: hashing.hash_32_batch(u32[:, 0], 8),
         lambda: [hashing.hash_32(a & 0xFFFFFFFF, 8) for a, _ in few]),
    ]
    t = Table(title=f"Speed on this machine ({n_keys:,} keys per batch)")
    t.add_column("function")
    t.add_column("batch ns/key", justify="right")
    t.add_column("one call from Python ns", justify="right")
    t.add_column("batch speed-up", justify="right")
    for name, batch, scalar in rows:
        b = _time_best(batch) / n_keys * 1e9
        s = _time_best(scalar) / len(few) * 1e9
        t.add_row(name, f"{b:.1f}", f"{s:.0f}", f"{s / b:.0f}x")
    console.print(t)


def _control_plane(console):
    """The example rules in a model namespace, and its kernel texts."""
    net = Netns()
    net.restore(RULES.read_text())
    console.print(f"[bold]Rules[/bold] ({RULES}), restored into "
                  f"Netns(kernel=\"7.1\"); `ipvsadm -Ln` of the model:")
    console.print(net.list_text(), markup=False, highlight=False, end="")
    console.print("[bold]/proc/net/ip_vs_status[/bold] of the model "
                  "(per-net resizable tables):")
    console.print(net.status(), markup=False, highlight=False, end="")
    return net


def _who_gets_what(console, net):
    """Which real server the kernel's scheduler picks for a few clients."""
    from .schedulers import lookup_scheduler
    from .schedulers.base import PacketInfo

    clients = [("198.51.100.7", 40001), ("198.51.100.7", 40002),
               ("198.51.100.8", 40001), ("203.0.113.9", 51515),
               ("203.0.113.10", 51515)]
    t = Table(title="Which real server each new connection gets "
                    "(the kernel's schedulers, in order)")
    t.add_column("client")
    svcs = [s for s in net.services() if s.af == 2]
    for svc in svcs:
        t.add_column(f"{svc.addr}:{svc.port} ({svc.sched_name})")
    rows = {c: [] for c in clients}
    for svc in svcs:
        sched = lookup_scheduler(svc.sched_name)
        for addr, port in clients:
            dest = sched.schedule(svc, PacketInfo(
                ipaddress.ip_address(addr), port, svc.addr, svc.port,
                svc.protocol))
            rows[(addr, port)].append(f"{dest.addr}:{dest.port}" if dest
                                      else "-")
    for (addr, port), picks in rows.items():
        t.add_row(f"{addr}:{port}", *picks)
    console.print(t)
    console.print("wrr steps 3:1 (the weight-0 server never gets one); sh "
                  "hashes address and port (sh-port); mh uses Maglev's "
                  "4093-slot table.")


def _sync_plan(console, net):
    """The netlink plan that would put this configuration into a kernel."""
    from .netlink import config_of_model, plan
    steps = plan({}, config_of_model(net))
    console.print(f"[bold]`ipvs-py sync {RULES.name} --dry-run`[/bold] "
                  f"against an empty kernel would send {len(steps)} "
                  f"changes; the first five:")
    for step in steps[:5]:
        console.print("  " + step.ipvsadm(), markup=False, highlight=False)


def _replay_sweep(console, n_conns, seed, out_dir):
    """Replay new connections through the packet path at a few
    conn_lfactor values: the tuning table (ipvs_py.tune), its plots, and
    the conn table's ip_vs_status after the last run."""
    from . import workload
    from .tune import settings_for, write_plots
    from .tune.cli import progress_bar, report
    from .tune.measure import new_netns, replay_setting

    rules = RULES.read_text()
    batch = workload.new_connections(n_conns, packets_per_conn=1, rate=1e6,
                                     vips=(("192.0.2.10", 80),), seed=seed)
    settings = settings_for((-4, -2, 0, 2, 4), (20,))
    rows = []
    with progress_bar(console) as progress:
        task = progress.add_task("replaying", total=len(settings) * 8)
        for s in settings:
            progress.update(task, description=f"replaying ({s.label})")
            net = new_netns(rules, s, seed)
            rows.append(replay_setting(
                batch, rules, s, chunks=8, timing_rows=100_000, seed=seed,
                net=net, on_chunk=lambda: progress.advance(task)))
    front, rec = report(
        console, rows, max_chain=1.5,
        title=f"{n_conns:,} new connections replayed through the packet "
              f"path (conn_tab_bits=20; NAT conns are two hash nodes)")
    console.print("Replay speed: " + ", ".join(
        f"{r.lfactor:+d}: {n_conns / r.replay_s / 1e6:.2f} Mconn/s"
        for r in rows), highlight=False)
    paths = write_plots(rows, out_dir, front=front,
                        pick=rec.index if rec else None,
                        cost_name="walk_mean")
    console.print(f"[bold]Plots written to {out_dir}/[/bold]: "
                  + ", ".join(p.name for p in paths.values())
                  + "  (`ipvs-py tune --help` sweeps your own workload)",
                  highlight=False)
    console.print("The ip_vs_status of the last run:")
    console.print(net.status(), markup=False, highlight=False, end="")


def run(n_keys=1_000_000, seed=1, console=None, n_conns=1_000_000,
        out_dir="ipvs-py-demo-out"):
    """Print the tour (plots go to ``out_dir``); returns the exit code."""
    console = console or Console()
    if n_keys < 1:
        console.print("[red]--keys must be at least 1[/red]")
        return 2
    if n_conns < 0:
        console.print("[red]--conns must be 0 or more[/red]")
        return 2
    rng = np.random.default_rng(seed)
    key = random.Random(seed).randbytes(16)
    console.rule("[bold]ipvs_py demo")
    net = _control_plane(console)
    _who_gets_what(console, net)
    _sync_plan(console, net)
    if n_conns:
        _replay_sweep(console, n_conns, seed, out_dir)
    from .bpf.demo_section import fastpath_section
    fastpath_section(console)
    console.rule("[bold]kernel-exact hashing")
    console.print("Each per-net IPVS table has its own random 128-bit key; "
                  f"this run's key: {key.hex()}")
    _examples(console, key)
    _speed(console, key, n_keys, rng)
    console.print("Kernel-exact: checked against lib/siphash_kunit.c and "
                  "lookup3 vectors by the test suite (tests/core).")
    return 0
