"""Netlink bridge benchmark: the codec on the host, a 2,000 x 4 sync in the VM.

Host (no kernel IPVS needed), best of 5, one process:
  * decoding the 10,000 reply nests of a 2,000 x 4 read: ours (wire.py on
    _core/nlattr.pyx) against pyroute2's own decoder;
  * encoding the 10,000 requests of a full 2,000 x 4 sync: ours against
    pyroute2's encoder.

VM (``--vm``; Debian's kernel under qemu TCG, see docs/kernel-vm.md), one
boot, best of ``--repeat``: ipvsadm -R and -S of the same rules, our full
sync, no-op re-sync (and its phases), one-change sync, and the floor of a
read: the same 2,001 dumps with nothing decoded, in the same compiled loop.

    python bench/bench_netlink.py            # host part
    python bench/bench_netlink.py --vm       # and the VM part (~2 min)
"""
import argparse
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from pyroute2.netlink.generic import ipvs as _ipvs  # noqa: E402
from _timing import best_of  # noqa: E402

from ipvs_py.netlink import wire  # noqa: E402
from ipvs_py.netlink.socket import IPVSConnection, _attrs, _dest_nla, _ipvsmsg, _svc_nla  # noqa: E402

SERVICES, DESTS = 2000, 4
STATS = [(f"IPVS_STATS_ATTR_{n}", i) for i, n in enumerate(
    ("CONNS", "INPKTS", "OUTPKTS", "INBYTES", "OUTBYTES", "CPS", "INPPS",
     "OUTPPS", "INBPS", "OUTBPS"))]


def configs():
    for i in range(SERVICES):
        svc = {"af": 2, "protocol": 6, "addr": f"10.{100 + i // 250}.{i % 250}.1",
               "port": 80, "sched_name": "wrr", "flags": 0, "timeout": 0,
               "netmask": "255.255.255.255"}
        yield svc, [{"addr": f"10.200.{i % 250}.{10 + j}", "port": 8080,
                     "fwd_method": 0, "weight": j + 1, "u_thresh": 0,
                     "l_thresh": 0, "addr_family": 2} for j in range(DESTS)]


def reply(nest, attrs):
    msg = _ipvsmsg()
    msg["cmd"], msg["version"] = 1, 1
    msg["attrs"] = [(nest, {"attrs": attrs})]
    msg.encode()
    return bytes(msg.data)


def host():
    replies = []
    for svc, dests in configs():
        replies.append(reply("IPVS_CMD_ATTR_SERVICE", _svc_nla(svc)["attrs"] + [
            ("IPVS_SVC_ATTR_STATS", {"attrs": STATS})]))
        replies += [reply("IPVS_CMD_ATTR_DEST", _dest_nla(d)["attrs"] + [
            ("IPVS_DEST_ATTR_ACTIVE_CONNS", 1), ("IPVS_DEST_ATTR_STATS", {"attrs": STATS})])
            for d in dests]

    def ours_decode():
        for r in replies:
            wire.decode_reply(r[16:], stats=False)

    def pyroute2_decode():
        for r in replies:
            m = _ipvsmsg(r)
            m.decode()
            nest = m.get_attr("IPVS_CMD_ATTR_SERVICE") or m.get_attr("IPVS_CMD_ATTR_DEST")
            _attrs(nest, False)

    pairs = list(configs())

    def ours_encode():
        for svc, dests in pairs:
            IPVSConnection.request("add-service", svc)
            key = IPVSConnection.service_key(svc)
            for d in dests:
                IPVSConnection.request("add-dest", svc, d, svc_key=key)

    def pyroute2_encode():
        for svc, dests in pairs:
            for attrs in [[("IPVS_CMD_ATTR_SERVICE", _svc_nla(svc))]] + [
                    [("IPVS_CMD_ATTR_SERVICE", _svc_nla(svc, key_only=True)),
                     ("IPVS_CMD_ATTR_DEST", _dest_nla(d))] for d in dests]:
                m = _ipvsmsg()
                m["cmd"], m["version"], m["attrs"] = 5, 1, attrs
                m.encode()

    rows = [("decode 10,000 reply nests", best_of(ours_decode), best_of(pyroute2_decode, 2)),
            ("encode 10,000 sync requests", best_of(ours_encode), best_of(pyroute2_encode, 2))]
    print(f"{'host, 2,000 x 4':32} {'ours':>9} {'pyroute2':>9} {'speed-up':>9}")
    for name, ours, theirs in rows:
        print(f"{name:32} {ours:8.3f}s {theirs:8.3f}s {theirs / ours:8.1f}x")


def vm(repeat):
    from tests.kernel import vm as harness
    res = harness.run_guest(
        f'modprobe ip_vs && "$PY" "$REPO/bench/guest/sync_timings.py" {repeat}',
        timeout=1200)
    if res.returncode != 0:
        sys.exit("guest failed:\n" + res.tail())
    t = json.loads(res.stdout.strip().splitlines()[-1])
    full = t["full_sync"]
    print(f"\nVM (TCG), 2,000 x 4, best of {repeat}, one boot:")
    for name, key in (("ipvsadm -R", "ipvsadm_R"), ("ipvsadm -S -n", "ipvsadm_S"),
                      ("full sync", "full_sync"), ("no-op re-sync", "noop_sync"),
                      ("  open the connection", "noop_open"),
                      ("  read (snapshot: dumps + fingerprints)", "noop_read"),
                      ("  compare with the desired model", "noop_compare"),
                      ("  plan (nothing differs)", "noop_plan"),
                      ("  floor: the read's 2,001 dumps alone", "raw_dumps"),
                      ("one-change sync", "one_change_sync")):
        print(f"{name:42} {t[key]:7.3f}s  {t[key] / full:5.2f} of full sync")
    print(f"full sync / ipvsadm -R: {full / t['ipvsadm_R']:.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vm", action="store_true", help="also time the sync in the kernel VM")
    ap.add_argument("--repeat", type=int, default=3, help="VM runs per figure (best of)")
    a = ap.parse_args()
    host()
    if a.vm:
        vm(a.repeat)


if __name__ == "__main__":
    main()
