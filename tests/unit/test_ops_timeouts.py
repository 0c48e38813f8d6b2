"""Timeouts as declared configuration: rules (--set), API, save, sync."""
import errno

import pytest

import ipvs_py
from ipvs_py.netlink import SyncError, sync
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
    assert step.undo() == Step("set-timeouts", None, timeouts=(0, 0, 300),
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


class Pipelined(ModelKernel):
    """ModelKernel with IPVSConnection's pipelined interface; the request
    numbered ``fail_at`` is refused with EINVAL (fault injection)."""

    fail_at = None

    @staticmethod
    def service_key(svc):
        return None

    @staticmethod
    def request(op, svc, dest=None, svc_key=None):
        return op, (svc, dest), f"{op} request"

    def run_many(self, requests):
        codes = []
        for i, (op, (svc, dest), _) in enumerate(requests):
            if i == self.fail_at:
                codes.append(errno.EINVAL)
                continue
            {"edit-dest": self.set_dest, "del-dest": self.del_dest,
             "add-dest": self.new_dest}[op](svc, dest)
            codes.append(0)
        return codes

    def new_dest(self, s, d):
        svc = self._find(s)
        dc, kw = self._dest_kw(d, svc.af)
        self.net.add_dest(svc, dc.addr, dc.port, **kw)


def test_pipelined_sync_sends_timeouts_first_and_rolls_them_back():
    kernel = model(RULES)
    conn = Pipelined(kernel)
    want = "--set 0 0 60\n" + RULES.replace("-m -w 1", "-m -w 4") + \
        "-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 1\n"
    res = sync(model(want), conn=conn)
    assert res.applied == 3 and kernel.timeouts["udp"] == 60
    assert kernel.save() == model(want).save()

    kernel = model(RULES)
    conn = Pipelined(kernel)
    conn.fail_at = 1                           # the add-dest fails
    with pytest.raises(SyncError) as exc:
        sync(model(want), conn=conn)
    assert exc.value.rolled_back and exc.value.index == 2
    assert kernel.timeouts["udp"] == 300 and kernel.save() == model(RULES).save()
    assert conn.log[0] == ("set_timeouts", 0, 0, 60)
    assert conn.log[-1] == ("set_timeouts", 0, 0, 300)
