"""Control-plane benchmark: service lookup vs table size, restore() rate.

1. Service lookup cost with 10, 10,000 and 100,000 services (kernel "7.1"
   profile: the resizable table keeps ~1/8 service per bucket at the
   default svc_lfactor -3, so the cost must not grow with the count; the
   issue asks for a ratio under 1.3).  Each lookup is
   ``Netns.find_service()`` (counters, jhash, one bucket) on a random
   present service; we report ns/lookup as the best of 5 runs.  The
   three sizes take turns (10, 10,000, 100,000, 10, ...), so a slow
   phase of the shared machine does not land on one size only.
2. The packet path's service lookup: ``Netns.replay`` of SYNs from new
   clients to random services among 10, 10,000 and 100,000 (one NAT dest
   each, rr), ns per new conn (the conn itself included), best of 3.
   The C engine finds the service in its own index
   (``include/ipvs_svcindex.h``); ``--scan`` also times the scan it
   replaced (slow: 100,000 services take minutes).
3. ``restore()`` of a 100,000-line rule file (10,000 services with 9
   destinations each) into an empty netns: rules/s, best of 3.

Both are run for the service table on the core table ("core", what Netns
uses) and for the pure-Python reference table ("pyref",
``ipvs_py/_core/_pyref_svctab.py``, the model's table before issue 5 moved
it onto the core), in one process, so before/after come from one run.

    python bench/bench_ctl.py                 # both tables
    python bench/bench_ctl.py --impl core     # one of them
"""
import ipaddress
import random
import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve()
                       .parent.parent))
import ipvs_py  # noqa: E402
from _timing import best_of  # noqa: E402
from ipvs_py._core import _pyref_svctab  # noqa: E402

LOOKUPS = 200_000
IMPLS = ("pyref", "core")


def new_netns(impl, **kw):
    """A 7.1 Netns whose service table is ``impl``'s (the reference is
    swapped in while the netns is empty, fed the netns' own key source)."""
    net = ipvs_py.Netns(kernel="7.1", **kw)
    if impl == "pyref":
        net.svc_table = _pyref_svctab.SvcTable(
            net._rng, lambda: net.sysctl["svc_lfactor"])
    return net


def _addr(i):
    return ipaddress.IPv4Address(0x0A000000 + i)


def _best_ns(loop, reps=5):
    """ns per lookup of ``loop()`` (LOOKUPS lookups), best of ``reps``."""
    return best_of(loop, reps) / LOOKUPS * 1e9


def lookup_loops(n, impl="core"):
    """The timed loops for ``n`` services, each LOOKUPS lookups:
    (find_service of random present services, the table's own find of the
    same, a dict baseline, find_service cycling over 10 services, table
    size).  The hot loop separates the algorithm (bucket walk) from the
    memory hierarchy (a random service of 100,000 is a cache miss).  The
    baseline is a plain dict from the packed address to the same Service
    objects, looked up with the same keys in the same order: how much any
    hash table's lookup grows here from 10 to 100,000 entries, with the
    same objects to return."""
    net = new_netns(impl, seed=n)
    for i in range(n):
        net.add_service("tcp", str(_addr(i)), 80)
    rng = random.Random(1)
    keys = [_addr(rng.randrange(n)) for _ in range(LOOKUPS)]
    pool = [_addr(rng.randrange(n)) for _ in range(10)]
    hot_keys = [pool[i % 10] for i in range(LOOKUPS)]
    packed = [a.packed for a in keys]
    find, tfind = net.find_service, net.svc_table.find
    by_addr = {_addr(i).packed: find(2, 6, _addr(i), 80) for i in range(n)}
    get = by_addr.get
    assert find(2, 6, keys[0], 80) is get(packed[0]) is not None

    def service_loop():
        for a in keys:
            find(2, 6, a, 80)

    def table_loop():
        for k in packed:
            tfind(2, 6, k, 80)

    def dict_loop():
        for k in packed:
            get(k)

    def hot_loop():
        for a in hot_keys:
            find(2, 6, a, 80)
    service_loop.net = net          # keeps the netns alive with its loops
    return service_loop, table_loop, dict_loop, hot_loop, net.svc_table.size


SIZES = (10, 10_000, 100_000)


def lookup_table(impl="core", sizes=SIZES, rounds=3, reps=3):
    """{n: (find_service ns, table ns, dict ns, hot-10 ns, buckets)}, each
    the best of ``rounds`` x ``reps`` runs.  A round times every loop of
    every size, the sizes in turn; each loop runs ``reps`` times back to
    back, so the runs after the first find what the loop itself left in
    the caches (a lookup-heavy steady state), not what the garbage
    collection before it or another size's loops left there (200,000
    lookups visit each of 100,000 services only twice: measured alone,
    each run of the 100,000 row was mostly misses to memory, 453 ns
    against 328-382 ns back to back)."""
    loops = {n: lookup_loops(n, impl) for n in sizes}
    best = {n: [float("inf")] * 4 for n in sizes}
    for _ in range(rounds):
        for n in sizes:
            for i, loop in enumerate(loops[n][:4]):
                best[n][i] = min(best[n][i], _best_ns(loop, reps))
    return {n: (*best[n], loops[n][4]) for n in sizes}


SYNS = 100_000


def syn_batch(n_services, n, seed=1):
    """``n`` SYNs, each from a new client (bench_conn's batch), to random
    services of ``n_services`` (VIPs ``_addr(i)``, port 80)."""
    import numpy as np
    from bench_conn import batch
    b = batch(n, n, 0x02)
    vip = (0x0A000000 + np.random.default_rng(seed).integers(
        0, n_services, n)).astype(">u4")
    b._cols["daddr"][:, :4] = vip.view(np.uint8).reshape(-1, 4)
    return b


def packet_path_ns(n_services, scan=False, syns=SYNS):
    """ns per new conn through Netns.replay to random services of
    ``n_services``; ``scan``: the engine's scan instead of its index."""
    lines = []
    for i in range(n_services):
        lines.append(f"-A -t {_addr(i)}:80 -s rr")
        lines.append(f"-a -t {_addr(i)}:80 -r 172.16.{i >> 8 & 255}."
                     f"{i & 255 or 1}:8080 -m")
    best = float("inf")
    for rep in range(3):
        net = ipvs_py.Netns(kernel="7.1", seed=1)
        net.restore("\n".join(lines) + "\n")
        net._path().sync_config()
        if scan:
            net._path().e.use_service_scan(True)
        b = syn_batch(n_services, syns, seed=rep)
        t0 = time.perf_counter()
        net.replay(b)
        best = min(best, time.perf_counter() - t0)
        assert net.conn_count == syns
    return best / syns * 1e9


def rules_text(services=10_000, dests=9):
    lines = []
    for i in range(services):
        vip = f"{_addr(i)}:80"
        lines.append(f"-A -t {vip} -s wrr")
        for j in range(dests):
            lines.append(f"-a -t {vip} -r 172.{16 + j}.{i >> 8 & 255}."
                         f"{i & 255 or 1}:8080 -m -w {j + 1}")
    return "\n".join(lines) + "\n", len(lines)


def restore_rates(impls):
    """Best of 3 restore() times per table; the tables take turns, so a
    slow phase of a shared box does not land on one of them only."""
    text, n = rules_text()
    best = {impl: float("inf") for impl in impls}
    for _ in range(3):
        for impl in impls:
            net = new_netns(impl, seed=1)
            t0 = time.perf_counter()
            net.restore(text)
            best[impl] = min(best[impl], time.perf_counter() - t0)
            del net
    return n, best


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--impl", choices=IMPLS + ("both",), default="both")
    ap.add_argument("--scan", action="store_true",
                    help="also time the service scan the index replaced")
    args = ap.parse_args(argv)
    impls = IMPLS if args.impl == "both" else (args.impl,)
    print("service lookup (Netns.find_service, kernel 7.1, svc_lfactor -3)")
    print("ns/lookup and its ratio to 10 services: find_service, the "
          "table's find alone, a dict of the same Services (baseline), and "
          "find_service cycling over 10 services (hot-10)")
    print(f"{'table':>6} {'services':>10} {'buckets':>9} {'ns/lookup':>10}"
          f" {'ratio':>7} {'table ns':>9} {'ratio':>7} {'dict ns':>8}"
          f" {'ratio':>7} {'hot-10 ns':>10} {'ratio':>7}")
    for impl in impls:
        base = hbase = None
        results = lookup_table(impl)
        for n in SIZES:
            ns, tns, dns, hns, size = results[n]
            base = base or (ns, tns, dns)
            hbase = hbase or hns
            print(f"{impl:>6} {n:>10} {size:>9} {ns:>10.0f} "
                  f"{ns / base[0]:>7.2f} {tns:>9.0f} {tns / base[1]:>7.2f} "
                  f"{dns:>8.0f} {dns / base[2]:>7.2f} {hns:>10.0f} "
                  f"{hns / hbase:>7.2f}")
    print()
    print(f"packet path: ns per new conn, {SYNS:,} SYNs to random services "
          "(Netns.replay)")
    modes = (("index", False),) + ((("scan", True),) if args.scan else ())
    print(f"{'lookup':>6} {'services':>10} {'ns/conn':>9} {'ratio':>7}")
    for name, scan in modes:
        base = None
        for n in (10, 10_000, 100_000):
            # the scan walks every service per SYN: fewer SYNs for it
            ns = packet_path_ns(n, scan, SYNS if not scan or n <= 10_000
                                else 2_000)
            base = base or ns
            print(f"{name:>6} {n:>10} {ns:>9.0f} {ns / base:>7.2f}")
    print()
    n, best = restore_rates(impls)
    for impl in impls:
        print(f"restore() [{impl}]: {n} lines in {best[impl]:.2f} s = "
              f"{n / best[impl]:,.0f} rules/s")


if __name__ == "__main__":
    main()
