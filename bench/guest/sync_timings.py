"""Guest side of bench/bench_netlink.py --vm: time a 2,000 x 4 sync against
ipvsadm in one boot and print the timings as JSON on the last line.

Each namespace starts empty; every figure is the best of REPEAT runs."""
import json
import subprocess
import sys
import time

import ipvs_py
from ipvs_py._core import load
from ipvs_py.netlink import IPVSConnection, plan, sync
from ipvs_py.netlink import wire

REPEAT = int(sys.argv[1]) if len(sys.argv) > 1 else 3
SERVICES, DESTS = 2000, 4


def rules(weight_of_first=1):
    lines = []
    for i in range(SERVICES):
        vip = f"10.{100 + i // 250}.{i % 250}.1"
        lines.append(f"-A -t {vip}:80 -s wrr")
        for j in range(DESTS):
            w = weight_of_first if (i, j) == (7, 0) else j + 1
            lines.append(f"-a -t {vip}:80 -r 10.200.{i % 250}.{10 + j}:8080 -m -w {w}")
    return "\n".join(lines) + "\n"


def sh(*cmd, stdin=None):
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                          check=True).stdout


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def fresh(ns):
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    sh("ip", "netns", "add", ns)
    sh("ip", "-n", ns, "link", "set", "lo", "up")


def model(text):
    net = ipvs_py.Netns(kernel="6.1")
    net.restore(text)
    return net


BIG, CHANGED = rules(), rules(weight_of_first=5)
big, changed = model(BIG), model(CHANGED)
res = {k: float("inf") for k in (
    "ipvsadm_R", "ipvsadm_S", "full_sync", "noop_sync", "one_change_sync",
    "noop_open", "noop_read", "noop_compare", "noop_plan", "raw_dumps")}
for _ in range(REPEAT):
    fresh("r")
    res["ipvsadm_R"] = min(res["ipvsadm_R"], timed(
        lambda: sh("ip", "netns", "exec", "r", "ipvsadm", "-R", stdin=BIG)))
    res["ipvsadm_S"] = min(res["ipvsadm_S"], timed(
        lambda: sh("ip", "netns", "exec", "r", "ipvsadm", "-S", "-n")))
    fresh("s")
    res["full_sync"] = min(res["full_sync"], timed(lambda: sync(big, "s")))
    res["noop_sync"] = min(res["noop_sync"], timed(lambda: sync(big, "s")))
    res["one_change_sync"] = min(res["one_change_sync"],
                                 timed(lambda: sync(changed, "s")))
    sync(big, "s")
    # the no-op re-sync in its phases, and the floor of its read: the
    # same 2,001 dumps with nothing decoded
    conns = []
    res["noop_open"] = min(res["noop_open"],
                           timed(lambda: conns.append(IPVSConnection("s"))))
    with conns[0] as conn:
        state, diff = [], []
        res["noop_read"] = min(res["noop_read"],
                               timed(lambda: state.append(conn.snapshot())))
        res["noop_compare"] = min(res["noop_compare"], timed(
            lambda: diff.append(state[0].differing(big))))
        keys, want = diff[0]
        assert keys == [], keys
        res["noop_plan"] = min(res["noop_plan"], timed(
            lambda: plan(state[0].config(keys), want)))
        ch = conn._wire                                # noqa: SLF001
        (services,) = ch.dump_each(wire.CMD_GET_SERVICE, [b""])
        requests = load("cfgdigest").kernel_services(services)[1]
        res["raw_dumps"] = min(res["raw_dumps"], timed(lambda: (
            ch.dump_each(wire.CMD_GET_SERVICE, [b""]),
            ch.dump_each(wire.CMD_GET_DEST, requests))))
assert sh("ip", "netns", "exec", "s", "ipvsadm", "-S", "-n") == \
    sh("ip", "netns", "exec", "r", "ipvsadm", "-S", "-n")
print(json.dumps(res))
