"""Guest side of test_sync_vs_kernel.py: ipvs_py.netlink.sync against the
real kernel, in several namespaces; results and timings go to $OUT."""
import json
import os
import subprocess
import sys
import time

import ipvs_py
from ipvs_py.netlink import (IPVSConnection, SyncError, apply, config_of_kernel,
                             config_of_model, plan, read_kernel, sync)

OUT = sys.argv[1]
res = {}


def sh(*cmd, stdin=None):
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                          check=True).stdout


def save(ns):
    return sh("ip", "netns", "exec", ns, "ipvsadm", "-S", "-n")


def model(rules):
    net = ipvs_py.Netns(kernel="6.1")
    net.restore(rules)
    return net


def write(name, text):
    with open(os.path.join(OUT, name), "w") as f:
        f.write(text)


R1 = """-A -t 10.0.0.1:80 -s wrr
-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 2
-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 3 -x 100 -y 10
-A -u 10.0.0.2:53 -s rr -p 300 -M 255.255.255.0
-a -u 10.0.0.2:53 -r 10.0.1.5:53 -g -w 1
-A -f 7 -s sh -b sh-fallback,sh-port
-a -f 7 -r 10.0.1.2:0 -g -w 1
-A -t [2001:db8::1]:443 -s wlc
-a -t [2001:db8::1]:443 -r [2001:db8::10]:443 -i -w 1
"""

# 1. first sync, round trip, idempotence
desired = model(R1)
r = sync(desired, "lb1")
res["first_steps"] = r.commands()
write("lb1_after_sync.txt", save("lb1"))
write("model_save.txt", desired.save())
write("read_kernel_save.txt", read_kernel("lb1").save())
res["second_steps"] = sync(desired, "lb1").commands()

# 2. one change, one step
r = sync(model(R1.replace("10.0.1.1:80 -m -w 2", "10.0.1.1:80 -m -w 9")), "lb1")
res["one_change_steps"] = r.commands()
write("lb1_after_one_change.txt", save("lb1"))

# 3. another namespace, another config; lb1 untouched
before_lb1 = save("lb1")
sync(model("-A -t 10.9.9.9:8080 -s lc\n-a -t 10.9.9.9:8080 -r 10.9.0.1:8080 -m -w 1\n"), "lb2")
write("lb2.txt", save("lb2"))
res["lb1_untouched"] = save("lb1") == before_lb1

# 4. dry run changes nothing; prune removes foreign services
sh("ip", "netns", "exec", "lb1", "ipvsadm", "-A", "-t", "192.0.2.50:22", "-s", "rr")
with_foreign = save("lb1")
res["dry_run_prune"] = sync(model(R1), "lb1", dry_run=True, prune=True).commands()
res["dry_run_changed_nothing"] = save("lb1") == with_foreign
res["keep_foreign"] = sync(model(R1), "lb1").commands()
res["prune"] = sync(model(R1), "lb1", prune=True).commands()
write("lb1_after_prune.txt", save("lb1"))

# 5. fault injection: another actor adds a service the plan will add, after
#    planning; the kernel rejects that step and our earlier steps are undone
R3 = R1.replace("-s wrr", "-s rr") + \
    "-A -t 10.0.0.7:80 -s rr\n-a -t 10.0.0.7:80 -r 10.0.1.7:80 -m -w 1\n" \
    "-A -t 10.0.0.8:80 -s rr\n"
with IPVSConnection("lb1") as conn:
    steps = plan(config_of_kernel(conn), config_of_model(model(R3)))
    res["fault_plan"] = [s.ipvsadm() for s in steps]
    sh("ip", "netns", "exec", "lb1", "ipvsadm", "-A", "-t", "10.0.0.8:80", "-s", "wlc")
    before = save("lb1")
    try:
        apply(conn, steps)
        res["fault"] = "no error"
    except SyncError as exc:
        res["fault"] = str(exc)
        res["fault_rolled_back"] = exc.rolled_back
    write("lb1_before_fault.txt", before)
    write("lb1_after_fault.txt", save("lb1"))

# 6. 2,000 services x 4 destinations: full sync vs ipvsadm -R, re-syncs
lines = []
for i in range(2000):
    vip = f"10.{100 + i // 250}.{i % 250}.1"
    lines.append(f"-A -t {vip}:80 -s wrr")
    for j in range(4):
        lines.append(f"-a -t {vip}:80 -r 10.200.{i % 250}.{10 + j}:8080 -m -w {j + 1}")
BIG = "\n".join(lines) + "\n"
big = model(BIG)
t0 = time.perf_counter()
r = sync(big, "lb3")
res["big_sync_s"] = time.perf_counter() - t0
res["big_steps"] = len(r.steps)
write("big_model_save.txt", big.save())
write("big_kernel_save.txt", save("lb3"))
t0 = time.perf_counter()
sh("ip", "netns", "exec", "lb4", "ipvsadm", "-R", stdin=BIG)
res["big_ipvsadm_R_s"] = time.perf_counter() - t0
res["big_R_equal"] = save("lb4") == save("lb3")
t0 = time.perf_counter()
r = sync(big, "lb3")
res["big_noop_s"] = time.perf_counter() - t0
res["big_noop_steps"] = len(r.steps)
changed = model(BIG.replace("10.200.7.10:8080 -m -w 1", "10.200.7.10:8080 -m -w 5", 1))
t0 = time.perf_counter()
r = sync(changed, "lb3")
res["big_one_s"] = time.perf_counter() - t0
res["big_one_steps"] = r.commands()

t0 = time.perf_counter()
sh("ip", "netns", "exec", "lb3", "ipvsadm", "-S", "-n")
res["big_ipvsadm_S_s"] = time.perf_counter() - t0
json.dump(res, open(os.path.join(OUT, "sync.json"), "w"), indent=1)
