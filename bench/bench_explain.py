"""Explain's trace hook costs nothing when off (issue 13).

The packet path carries IPVS_TRACE() calls (include/ipvs_trace.h) that
test ``e->trace`` and do nothing while it is NULL.  This benchmark replays
the same batches through three builds of the extension, in one run,
alternating builds round by round on this noisy shared machine:

* ``hook-off``  this tree as built (hook compiled in, trace NULL);
* ``compiled-out``  this tree built with ``-DIPVS_PY_TRACE_OFF``;
* ``main``  the code of ``--baseline-ref`` (default ``main``), before
  the hook existed.

Each build runs in its own subprocess (``--worker``); the scratch builds
live in a temporary directory.  Reported: the median packets/s of each
build for new connections (SYN: service lookup + scheduler, where most
trace points sit) and for established packets, and the ratios against
``main`` and ``compiled-out``.

    python bench/bench_explain.py [--conns 200000] [--rounds 5]
"""
import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def worker(n_conns, sched):
    """Replay n_conns SYNs then 2*n_conns ACKs; print the two times."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import ipvs_py                 # this tree's build: imported first
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_conn import batch, net_with    # noqa: E402 (after ipvs_py)

    net = net_with(sched)
    syn = batch(n_conns, n_conns, 0x02, 1)
    est = batch(2 * n_conns, n_conns, 0x10, 2)
    t0 = time.perf_counter()
    net.replay(syn)
    t1 = time.perf_counter()
    net.replay(est)
    t2 = time.perf_counter()
    assert net.conn_count == n_conns, net.conn_count
    print(json.dumps({"file": ipvs_py.__file__, "new": t1 - t0,
                      "est": t2 - t1}))


def _copy_tree(dst):
    """This worktree's sources (with uncommitted edits), no build files."""
    for name in ("setup.py", "pyproject.toml"):
        shutil.copy(ROOT / name, dst / name)
    shutil.copytree(ROOT / "ipvs_py", dst / "ipvs_py", ignore=shutil.
                    ignore_patterns("*.so", "*.c", "__pycache__", "build"))


def _build(tree, cflags=""):
    env = dict(os.environ)
    if cflags:
        env["CFLAGS"] = (env.get("CFLAGS", "") + " " + cflags).strip()
    subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace",
                    "-j2"], cwd=tree, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _run(tree, n_conns, sched):
    out = subprocess.run([sys.executable, str(ROOT / "bench" /
                                              "bench_explain.py"),
                          "--worker", "--conns", str(n_conns), "--sched",
                          sched], cwd=tree, check=True, capture_output=True,
                         text=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    if not res["file"].startswith(str(tree)):
        raise RuntimeError(f"{tree}: imported {res['file']}")
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--conns", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sched", default="rr")
    ap.add_argument("--baseline-ref", default="main")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        sys.path.insert(0, os.getcwd())
        worker(a.conns, a.sched)
        return
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="ipvs-bench-explain-"))
    try:
        trees = {"hook-off": ROOT}
        off = scratch / "compiled-out"
        off.mkdir()
        _copy_tree(off)
        _build(off, "-DIPVS_PY_TRACE_OFF")
        trees["compiled-out"] = off
        base = scratch / "main"
        base.mkdir()
        arch = subprocess.run(["git", "-C", str(ROOT), "archive",
                               a.baseline_ref], check=True,
                              capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=arch,
                       check=True)
        _build(base)
        trees[a.baseline_ref] = base
        res = {k: {"new": [], "est": []} for k in trees}
        for _ in range(a.rounds):
            for name, tree in trees.items():
                r = _run(tree, a.conns, a.sched)
                res[name]["new"].append(a.conns / r["new"])
                res[name]["est"].append(2 * a.conns / r["est"])
        print(f"{a.conns} new conns then {2 * a.conns} established "
              f"packets, scheduler {a.sched}, median of {a.rounds} "
              f"alternating rounds")
        print(f"{'build':<14}{'new Mpkt/s':>12}{'est Mpkt/s':>12}"
              f"{'new vs ' + a.baseline_ref:>16}{'est vs ' + a.baseline_ref:>16}"
              f"{'new vs out':>12}{'est vs out':>12}")
        med = {k: {m: statistics.median(v[m]) for m in v}
               for k, v in res.items()}
        for name in trees:
            m = med[name]
            b, o = med[a.baseline_ref], med["compiled-out"]
            print(f"{name:<14}{m['new'] / 1e6:>12.3f}{m['est'] / 1e6:>12.3f}"
                  f"{m['new'] / b['new']:>16.3f}{m['est'] / b['est']:>16.3f}"
                  f"{m['new'] / o['new']:>12.3f}{m['est'] / o['est']:>12.3f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
