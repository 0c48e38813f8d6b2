"""Differential test: every deterministic scheduler against Debian 6.1's IPVS.

One boot.  In the guest (see guest/sched_driver.py and sched_plan.py) a
namespace "lb" runs IPVS with one service per scheduler variant (mixed
weights including 0, sh/mh with and without fallback+port flags, fwmark
services spread over a /16 of destination addresses for dh/lblc/lblcr,
upper thresholds that overload a dest mid-way, UDP and TCP, IPv4 and
IPv6); the root namespace sends 12000 new connections from distinct client
addresses/ports through a veth (raw sockets: UDP datagrams, or a TCP SYN
then an ACK, which makes the IPVS connection ESTABLISHED); between send
steps weights are edited, a dest is deleted, one added and the deleted one
re-added from the dest trash.  Connections stay (timeouts 3600 s), so
counters are the kernel's: a UDP connection counts as inactive on its dest,
a TCP one as active, as ``bind_conn`` does in the model.

On the host the model replays the same plan and must choose the same dest
for every connection (the kernel's choice read from /proc/net/ip_vs_conn),
list the dests in the same order with the same weights and counters after
every rule step, and end with the same per-dest counters.  twos is not in
6.1 (and draws kernel randomness): it has its own distribution tests.
"""
from __future__ import annotations

import json
import os
import pathlib

import pytest

try:                                       # the harness of branch vm-harness
    from . import vm  # noqa: F401
except ImportError:                        # pragma: no cover
    pytest.skip("tests/kernel/vm.py (the VM harness) is not on this branch",
                allow_module_level=True)

from . import sched_plan
from .sched_model import replay

pytestmark = pytest.mark.kernel_vm
GOLDEN = pathlib.Path(__file__).resolve().parent / "golden"
PLAN = sched_plan.build()
LABELS = [sc.label for sc in PLAN]
GUEST_TIMEOUT = 900


def guest_script(repo='"$REPO"'):
    tc = "\n".join(
        f"ip netns exec lb tc filter add dev lb0 ingress protocol "
        f"{'ipv6' if sc.af == 10 else 'ip'} prio {10 + sc.i} u32 match "
        f"{'ip6' if sc.af == 10 else 'ip'} dst "
        f"{sched_plan.ntoa(sc.fwm_net, sc.af)}/{sc.fwm_prefix} "
        f"action skbedit mark {sc.fwmark} >> tc.log 2>&1; echo $? >> tc.rc"
        for sc in PLAN if sc.kind == "fwm")
    scheds = " ".join(sorted({sc.sched for sc in PLAN}))
    return f"""set -u
cd "$OUT"
modprobe ip_vs
for s in {scheds}; do modprobe ip_vs_$s || echo "no ip_vs_$s"; done
{{
set -x
ip netns add lb
ip link add lbv type veth peer name lb0
ip link set lb0 netns lb
ip addr add 10.0.2.2/24 dev lbv && ip link set lbv up
ip -n lb addr add 10.0.2.1/24 dev lb0 && ip -n lb link set lb0 up
ip -n lb link set lo up
ip route add 10.0.0.0/24 via 10.0.2.1
ip route add 10.128.0.0/9 via 10.0.2.1
ip -n lb route add local 10.0.0.0/24 dev lo
ip -n lb route add local 10.128.0.0/9 dev lo
ip -n lb link add rsd type dummy && ip -n lb link set rsd up
ip -n lb route add 172.16.0.0/12 dev rsd
ip -6 addr add fd00:2::2/64 dev lbv nodad
ip -n lb -6 addr add fd00:2::1/64 dev lb0 nodad
ip -6 route add fd00::/64 via fd00:2::1
ip -6 route add 2001:db8:8000::/33 via fd00:2::1
ip -n lb -6 route add local fd00::/64 dev lo
ip -n lb -6 route add local 2001:db8:8000::/33 dev lo
ip -n lb -6 route add fd00:1::/32 dev rsd
ip netns exec lb sysctl -qw net.ipv6.conf.all.forwarding=1
ip netns exec lb sysctl -qw net.ipv4.ip_forward=1
for k in all default lb0; do ip netns exec lb sysctl -qw net.ipv4.conf.$k.rp_filter=0; done
ip netns exec lb ipvsadm --set 3600 0 3600
ip netns exec lb tc qdisc add dev lb0 clsact
set +x
}} > net_setup.log 2>&1
: > tc.rc
{tc}
ip netns exec lb sleep 900 &
lbpid=$!
sleep 0.5
"$PY" {repo}/tests/kernel/guest/sched_driver.py $lbpid "$OUT" > driver.out 2>&1
echo $? > driver.rc
cat driver.out
ip netns exec lb ipvsadm -Ln > ipvsadm_Ln.txt 2>&1
kill $lbpid
exit 0
"""


GUEST_SCRIPT = guest_script


# ------------------------------------------------------------------ tests

def test_guest_ran_every_step(guest):
    assert guest.text("driver.rc").strip() == "0", guest.text("driver.out")
    log = json.loads(guest.text("driver_log.json"))["log"]
    failed = [e for e in log if e.get("rc")]
    assert not failed, failed[:3]
    assert set(guest.text("tc.rc").split()) <= {"0"}, guest.text("tc.log")
    sent = sum(e.get("sent", 0) for e in log)
    assert sent == sum(len(b) for sc in PLAN for k, b in sc.steps if k == "send")


@pytest.mark.parametrize("label", LABELS)
def test_same_choice_for_every_connection(guest, label):
    sc = PLAN[LABELS.index(label)]
    conns = sched_plan.parse_conns(guest.text("conn.txt"))
    _, choices, _ = replay(sc)
    mismatches = []
    for (saddr, sport), want in choices.items():
        got = conns.get((saddr, sport))
        got = None if got is None else got[2:]
        if got != want:
            mismatches.append((sched_plan.ntoa(saddr, sc.af), sport, got, want))
    n = len(choices)
    assert not mismatches, (f"{label}: {len(mismatches)}/{n} differ "
                            f"(client, port, kernel, model): {mismatches[:8]}")
    # not vacuous: connections were scheduled (ovf over TCP saturates after
    # sum(weight + 1) of them; hashing leaves some on weight-0 dests)
    assert sum(1 for c in choices.values() if c is not None) >= 20


@pytest.mark.parametrize("label", LABELS)
def test_same_dest_list_after_every_rule_step(guest, label):
    sc = PLAN[LABELS.index(label)]
    _, _, snaps = replay(sc)
    for si, want in snaps.items():
        got = sched_plan.parse_proc_ip_vs(
            guest.text(f"ipvs_{label}_{si}.txt")).get(sched_plan.svc_key(sc))
        assert got == want, f"{label} after step {si}"


@pytest.mark.parametrize("label", LABELS)
def test_same_counters_at_the_end(guest, label):
    sc = PLAN[LABELS.index(label)]
    svc, _, _ = replay(sc)
    got = sched_plan.parse_proc_ip_vs(guest.text("ip_vs.txt")).get(sched_plan.svc_key(sc))
    assert got == [(d.addr, d.port, d.weight, d.activeconns, d.inactconns)
                   for d in svc.dests]


def test_kernel_matches_the_golden_copies(guest):
    """The kernel is deterministic here: a new boot chooses as the one the
    golden copies were taken from (tests/schedulers/test_kernel_golden.py
    checks the model against them without booting).  Regenerate with
    IPVS_PY_REGEN_GOLDEN=1 (then review the diff)."""
    conns = sched_plan.parse_conns(guest.text("conn.txt"))
    text = sched_plan.choices_text(PLAN, conns)
    if os.environ.get("IPVS_PY_REGEN_GOLDEN", "") not in ("", "0"):
        (GOLDEN / "sched_choices.txt").write_text(text)
        (GOLDEN / "sched_proc_ip_vs.txt").write_text(guest.text("ip_vs.txt"))
    assert text == (GOLDEN / "sched_choices.txt").read_text()
    assert sched_plan.parse_proc_ip_vs(guest.text("ip_vs.txt")) == \
        sched_plan.parse_proc_ip_vs((GOLDEN / "sched_proc_ip_vs.txt").read_text())
