"""Guest side of test_netlink_vs_kernel.py: drive kernel IPVS through
ipvs_py.netlink in two namespaces and record what happened in $OUT.

Run by the guest's host interpreter ($PY) with the checkout on PYTHONPATH.
Each step writes `ipvsadm -S -n` of the namespace it changed, so the test
can compare our netlink requests with ipvsadm's own view of the kernel.
"""
import json
import os
import subprocess
import sys

from ipvs_py.netlink import (IPVSConnection, IPVSUnavailable, KernelRejected,
                             NetnsNotFound)

OUT = sys.argv[1]
phase = sys.argv[2]
record = {}


def save(name, netns):
    text = subprocess.run(["ip", "netns", "exec", netns, "ipvsadm", "-S", "-n"],
                          capture_output=True, text=True, check=True).stdout
    with open(os.path.join(OUT, name), "w") as f:
        f.write(text)


def attempt(name, fn):
    try:
        fn()
        record[name] = "ok"
    except (KernelRejected, NetnsNotFound, IPVSUnavailable) as exc:
        record[name] = [type(exc).__name__, getattr(exc, "errno", None), str(exc)]


if phase == "before-modprobe":
    attempt("connect_without_module", lambda: IPVSConnection().services())
    json.dump(record, open(os.path.join(OUT, "before.json"), "w"), indent=1)
    sys.exit(0)

TCP = {"af": 2, "protocol": 6, "addr": "10.0.0.1", "port": 80,
       "sched_name": "wrr", "flags": 0, "timeout": 0,
       "netmask": "255.255.255.255"}
PERSIST = {"af": 2, "protocol": 17, "addr": "10.0.0.2", "port": 53,
           "sched_name": "rr", "flags": 1, "timeout": 300,
           "netmask": "255.255.255.0"}
FWM = {"af": 2, "fwmark": 7, "sched_name": "sh", "flags": 0x8,   # sh-fallback
       "timeout": 0, "netmask": "255.255.255.255"}
V6 = {"af": 10, "protocol": 6, "addr": "2001:db8::1", "port": 443,
      "sched_name": "wlc", "flags": 0, "timeout": 0,
      "netmask": 128}
D1 = {"addr": "10.0.1.1", "port": 8080, "fwd_method": 0, "weight": 3,
      "u_thresh": 100, "l_thresh": 10, "addr_family": 2}        # masq
D2 = {"addr": "10.0.1.2", "port": 80, "fwd_method": 3, "weight": 0,
      "u_thresh": 0, "l_thresh": 0, "addr_family": 2}           # route
D6 = {"addr": "2001:db8::10", "port": 443, "fwd_method": 2, "weight": 1,
      "u_thresh": 0, "l_thresh": 0, "addr_family": 10}          # tunnel

with IPVSConnection("lb1") as k:
    k.new_service(TCP)
    k.new_dest(TCP, D1)
    k.new_dest(TCP, D2)
    k.new_service(PERSIST)
    k.new_service(FWM)
    k.new_dest(FWM, {**D2, "port": 0})
    k.new_service(V6)
    k.new_dest(V6, D6)
    k.set_timeouts(tcp=1000, tcpfin=100, udp=200)
    save("lb1_after_add.txt", "lb1")
    services = k.services()
    record["services"] = services
    record["dests"] = {f"{s.get('fwmark') or s.get('addr')}:{s.get('port')}":
                       k.dests(s) for s in services}
    record["timeouts"] = k.timeouts()
    record["info"] = k.info()
    record["daemons"] = k.daemons()

    k.set_dest(TCP, {**D1, "weight": 7})
    k.set_service({**TCP, "sched_name": "rr"})
    save("lb1_after_edit.txt", "lb1")
    record["dests_after_edit"] = k.dests(TCP)

    attempt("duplicate_service", lambda: k.new_service(TCP))
    attempt("dest_of_missing_service",
            lambda: k.new_dest({**TCP, "port": 81}, D1))
    attempt("unknown_scheduler",
            lambda: k.new_service({**TCP, "port": 82, "sched_name": "nosuch"}))
    attempt("delete_missing_dest",
            lambda: k.del_dest(TCP, {**D1, "addr": "10.9.9.9"}))
    save("lb1_after_errors.txt", "lb1")

    k.del_dest(TCP, D2)
    k.del_service(PERSIST)
    save("lb1_after_delete.txt", "lb1")

with IPVSConnection("lb2") as k2:
    record["lb2_services"] = k2.services()
    k2.new_service({**TCP, "addr": "10.0.0.99"})
save("lb2.txt", "lb2")
save("lb1_final.txt", "lb1")
attempt("missing_netns", lambda: IPVSConnection("no-such-ns"))

json.dump(record, open(os.path.join(OUT, "record.json"), "w"), indent=1,
          default=str)
