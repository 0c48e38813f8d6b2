"""Timeouts as declared configuration: rules (--set), API, save, sync."""
import pytest

import ipvs_py
from ipvs_py.netlink import sync
from ipvs_py.netlink.plan import Step, plan_timeouts

from .model_kernel import ModelKernel

RULES = "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1\n"


def model(text):
    net = ipvs_py.Netns(kernel="6.1")
    net.restore(text)
    return net


def test_set_line_declares_only_nonzero_timeouts():
    net = model("--set 100 0 30\n" + RULES)
    assert net.timeouts == {"tcp": 100, "tcp_fin": 120, "udp": 30}
    assert net.declared_timeouts == {"tcp": 100, "udp": 30}
    assert model(RULES).declared_timeouts == {}


@pytest.mark.parametrize("line", ["--set 1 2", "--set 1 2 x",
                                  "--set 1 2 2678401", "--set 1 2 3 4",
                                  "--set -1 2 3"])
def test_bad_set_lines_refuse_the_whole_file(line):
    net = ipvs_py.Netns(kernel="6.1")
    with pytest.raises(ipvs_py.RuleError) as exc:
        net.restore(RULES + line + "\n")
    assert exc.value.line == 3
    assert net.services() == [] and net.declared_timeouts == {}


def test_python_api():
    net = model(RULES)
    net.set_timeouts(tcp=3600, udp=10)
    assert net.timeouts == {"tcp": 3600, "tcp_fin": 120, "udp": 10}
    assert net.declared_timeouts == {"tcp": 3600, "udp": 10}
    for bad in ({"tcp": -1}, {"udp": 86400 * 31 + 1}, {"tcpfin": "5"},
                {"tcp": True}):
        with pytest.raises(ValueError):
            net.set_timeouts(**bad)


def test_save_round_trips_the_set_line():
    net = model("--set 100 0 30\n" + RULES)
    text = net.save(timeouts=True)
    assert text.startswith("--set 100 0 30\n")
    assert net.save() == model(RULES).save()          # ipvsadm -S -n as is
    again = model(text)
    assert again.declared_timeouts == net.declared_timeouts


def test_plan_timeouts_sends_only_what_differs():
    cur = {"tcp": 900, "tcp_fin": 120, "udp": 300}
    assert plan_timeouts(cur, {}) == []
    assert plan_timeouts(cur, {"tcp": 900}) == []
    (step,) = plan_timeouts(cur, {"tcp": 900, "udp": 60})
    assert step.ipvsadm() == "ipvsadm --set 0 0 60"
    assert step.undo() == Step("set-timeouts", None, (0, 0, 300),
                               before=(0, 0, 60))


def test_sync_sets_declared_timeouts_first_and_is_idempotent():
    kernel = model(RULES)
    kernel.set_timeouts(tcp=7200)             # tuned by hand, not declared
    conn = ModelKernel(kernel)
    res = sync(model("--set 0 0 60\n" + RULES), conn=conn)
    assert res.commands() == ["ipvsadm --set 0 0 60"]
    assert kernel.timeouts == {"tcp": 7200, "tcp_fin": 120, "udp": 60}
    assert sync(model("--set 0 0 60\n" + RULES), conn=conn).steps == []
    # a rules file without --set leaves the kernel's timeouts alone
    assert sync(model(RULES), conn=conn).steps == []
