"""The model against the real kernel's choices, without booting.

tests/kernel/golden/sched_choices.txt holds what Debian 6.1's IPVS chose
for the 12000 connections of tests/kernel/sched_plan.py (30 scheduler
variants, IPv4 and IPv6, UDP and TCP, fwmark services, weight edits,
deletes, re-adds from the dest trash, thresholds); sched_proc_ip_vs.txt its final /proc/net/ip_vs.  The live
comparison (and the regeneration of these files) is
tests/kernel/test_sched_vs_kernel.py.  Here the model must reproduce them
every time: through the schedulers on stand-in objects and, when the
control plane is present, through ``ipvs_py.Netns`` with ``sched_hook``.
"""
import pathlib

import pytest

import ipvs_py
from ipvs_py import schedulers as S
from tests.kernel import sched_plan
from tests.kernel.sched_model import replay, replay_netns

GOLDEN = pathlib.Path(__file__).resolve().parents[1] / "kernel" / "golden"
PLAN = sched_plan.build()
KERNEL = sched_plan.parse_choices_text(
    PLAN, (GOLDEN / "sched_choices.txt").read_text())
FINAL = sched_plan.parse_proc_ip_vs((GOLDEN / "sched_proc_ip_vs.txt").read_text())


def _compare(sc, choices, svc_dests):
    want = KERNEL[sc.label]
    diff = [(k, choices[k], want[k]) for k in want if choices[k] != want[k]]
    assert not diff, f"{sc.label}: {len(diff)} of {len(want)} differ: {diff[:5]}"
    assert svc_dests == FINAL[sched_plan.svc_key(sc)]


@pytest.mark.parametrize("sc", PLAN, ids=lambda sc: sc.label)
def test_model_chooses_as_the_kernel(sc):
    svc, choices, _ = replay(sc)
    _compare(sc, choices, [(d.addr, d.port, d.weight, d.activeconns,
                            d.inactconns) for d in svc.dests])


def _netns_factory():
    Netns = getattr(ipvs_py, "Netns", None)
    if Netns is None:
        pytest.skip("the control plane (ipvs_py.Netns) is not on this branch")

    def make():
        net = Netns(kernel="6.1")
        probe = net.add_service("tcp", "192.0.2.1", 1, sched_name="wrr")
        wired = probe.sched_data is not None
        net.del_service("tcp", "192.0.2.1", 1)
        if not wired:      # the control plane's hook is still a stub
            net._sched_hook = lambda name, svc, dest=None: \
                S.sched_hook(net, name, svc, dest)
        return net
    return make


@pytest.mark.parametrize("sc", PLAN, ids=lambda sc: sc.label)
def test_control_plane_objects_choose_as_the_kernel(sc):
    svc, choices, _ = replay_netns(sc, _netns_factory())
    _compare(sc, choices, [(int(d.addr), d.port, d.weight, d.activeconns,
                            d.inactconns) for d in svc.dests])
