"""Guest side of tests/kernel/test_ops_vs_kernel.py, after ops_drain.sh
has built the namespaces and started the servers.

Every ``ipvs-py`` command runs in this one process through
``cli.main(argv)`` with its stdout/stderr captured: under TCG each Python
start costs tens of seconds, one per command would not fit the budget.
For each command NAME it writes NAME.out, NAME.err and NAME.rc to $OUT.
"""
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time

import ipvs_py
from ipvs_py import cli
from ipvs_py.netlink import kernel_profile
from ipvs_py.ops import model_snapshot

OUT = sys.argv[1]
RULES = os.path.join(os.environ["REPO"], "tests/kernel/guest/ops_rules.txt")


def log(msg):
    print(f"== {time.strftime('%T')} {msg}", file=sys.stderr, flush=True)


def write(name, text):
    with open(os.path.join(OUT, name), "w") as f:
        f.write(text)


def rec(name, *argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = cli.main(list(argv))
        except SystemExit as exc:             # argparse errors
            rc = exc.code
    write(f"{name}.out", out.getvalue())
    write(f"{name}.err", err.getvalue())
    write(f"{name}.rc", f"{rc}\n")
    return rc


def sh(cmd, name=None):
    res = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    if name:
        write(name, res.stdout + res.stderr)
    return res


def save_lb(name):
    rec(name, "kernel", "save", "--netns", "lb")


def flows(cmds):
    return [subprocess.Popen(c, shell=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL,
                             start_new_session=True) for c in cmds]


log("sync and snapshot of the synced configuration")
rec("sync", "sync", "--netns", "lb", RULES)
rec("snapshot_synced", "kernel", "snapshot", "--netns", "lb", "--json")
net = ipvs_py.Netns(kernel=kernel_profile())
net.restore(open(RULES).read())
write("model_snapshot.out", json.dumps(model_snapshot(net, "lb"), indent=2))
sh("ip netns exec lb ipvsadm -Ln --timeout", "ipvsadm_timeout.txt")
save_lb("save_synced")

log("bad input changes nothing")
rec("bad_service", "drain", "10.9.9.9:80", "10.0.1.1:80", "--netns", "lb")
rec("bad_dest", "drain", "10.0.0.1:80", "10.0.1.9:80", "--proto", "tcp",
    "--netns", "lb")
rec("ambiguous", "drain", "10.0.0.1:80", "10.0.1.9:80", "--netns", "lb")
rec("bad_addr", "drain", "10.0.0.1:80", "nohost:80", "--proto", "tcp",
    "--netns", "lb")
rec("bad_netns", "drain", "10.0.0.1:80", "10.0.1.1:80", "--netns", "nosuch")
rec("bad_netns_snapshot", "kernel", "snapshot", "--netns", "nosuch")
save_lb("save_after_bad")

log("live flows")
# four long TCP flows on :80 (the server holds each 60 s); two UDP flows
# (a datagram every 0.3 s from a fixed port: each packet refreshes the
# IPVS entry, so they never drain by themselves)
procs = flows(
    [f"(sleep 90) | ip netns exec cl socat -T 100 - "
     f"TCP:10.0.0.1:80,sourceport={p}" for p in (40001, 40002, 40003, 40004)]
    + [f"(while :; do echo ping; sleep 0.3; done) | ip netns exec cl "
       f"socat -u - UDP-SENDTO:10.0.0.1:5353,sourceport={p}"
       for p in (5001, 5002)])
time.sleep(3)
# 6.1 reads service/dest stats from the estimator's copy (refreshed every
# 2 s): wait until it has counted the four TCP conns (a snapshot taken
# earlier once showed 3)
for _ in range(20):
    res = sh("ip netns exec lb ipvsadm -Ln --stats --exact -t 10.0.0.1:80")
    row = [ln.split() for ln in res.stdout.splitlines() if "TCP" in ln]
    if row and row[0][2] == "4":
        break
    time.sleep(0.5)

log("snapshot and metrics under traffic")
rec("snapshot_live", "kernel", "snapshot", "--netns", "lb", "--conns", "--json")
rec("metrics_live", "kernel", "metrics", "--netns", "lb", "--conns")
sh("ip netns exec lb cat /proc/net/ip_vs_conn", "proc_conn_live.txt")
# explain against the live kernel: the model starts from its services and
# ActiveConn/InActConn; the client's kernel entry is listed
rec("explain_live", "explain", "--netns", "lb", "tcp", "10.0.2.2:40001",
    "10.0.0.1:80", "--json")

log("drain TCP :80 10.0.1.1 with a deadline: live flows are cut")
save_lb("save_before_tcp")
rec("drain_tcp", "drain", "10.0.0.1:80", "10.0.1.1:80", "--proto", "tcp",
    "--netns", "lb", "--deadline", "5", "--json")
save_lb("save_after_tcp")

log("drain UDP :5353 10.0.1.2 with a deadline: the refreshed flow is cut")
rec("drain_udp", "drain", "10.0.0.1:5353", "10.0.1.2:5353", "--proto", "udp",
    "--netns", "lb", "--deadline", "4", "--json")
save_lb("save_after_udp")

log("drain UDP :5354 10.0.1.1 to zero")
# two short UDP flows (3 datagrams each, then silence): their entries
# expire after the udp timeout the rules set (8 s), and the drain ends
procs += flows([f"(for i in 1 2 3; do echo ping; sleep 0.3; done) | ip netns "
                f"exec cl socat -u - UDP-SENDTO:10.0.0.1:5354,sourceport={p}"
                for p in (6001, 6002)])
time.sleep(1.5)
sh("ip netns exec lb ipvsadm -Ln -u 10.0.0.1:5354", "ipvsadm_5354_before.txt")
rec("drain_zero", "drain", "10.0.0.1:5354", "10.0.1.1:5354", "--proto", "udp",
    "--netns", "lb", "--deadline", "60", "--json")
save_lb("save_after_zero")

log("Ctrl-C during a drain")
# SIGINT to this process after 6 s (the lookup done, under TCG too), as a
# terminal's Ctrl-C would send it
threading.Timer(6, os.kill, (os.getpid(), signal.SIGINT)).start()
rec("drain_int", "drain", "10.0.0.1:5353", "10.0.1.1:5353", "--proto", "udp",
    "--netns", "lb")
save_lb("save_after_int")

log("text output and dry run")
rec("drain_dry", "drain", "10.0.0.1:8080", "10.0.1.1:8080", "--netns", "lb",
    "--dry-run")
rec("drain_text", "drain", "fwmark:7", "10.0.1.2:0", "--netns", "lb")
# finish the interrupted drain, in text mode, with a short deadline
rec("drain_text_cut", "drain", "10.0.0.1:5353", "10.0.1.1:5353", "--proto",
    "udp", "--netns", "lb", "--deadline", "2")
save_lb("save_final")

log("TCP drain to zero with short timeouts (ipvsadm --set)")
# idle ESTABLISHED conns stay in the table for the tcp timeout (900 s by
# default; closed ones sit in TIME_WAIT 2 min), so an operator who wants a
# TCP drain to finish shortens it; new conns get the short timeout
sh("ip netns exec lb ipvsadm --set 6 6 8; "
   "ip netns exec lb ipvsadm -A -t 10.0.0.1:8081 -s rr; "
   "ip netns exec lb ipvsadm -a -t 10.0.0.1:8081 -r 10.0.1.1:8081 -m; "
   "ip netns exec lb ipvsadm -a -t 10.0.0.1:8081 -r 10.0.1.2:8081 -m",
   "set_short_timeouts.txt")
save_lb("save_before_tcp_zero")
# two held TCP flows (rr: one per dest); after the server's greeting they
# are idle, so their entries expire 6 s later while the sockets stay open
procs += flows([f"(sleep 60) | ip netns exec cl socat -T 70 - "
                f"TCP:10.0.0.1:8081,sourceport={p}" for p in (41001, 41002)])
time.sleep(2)
sh("ip netns exec lb ipvsadm -Ln -t 10.0.0.1:8081", "ipvsadm_8081_before.txt")
rec("drain_tcp_zero", "drain", "10.0.0.1:8081", "10.0.1.1:8081", "--netns",
    "lb", "--deadline", "60", "--json")
save_lb("save_after_tcp_zero")
for p in procs:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGTERM)
log("done")
