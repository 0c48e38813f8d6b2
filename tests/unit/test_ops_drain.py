"""ipvs-py drain against the model standing in for the kernel."""
import json

import pytest

import ipvs_py
from ipvs_py import cli
from ipvs_py.ops import TargetError, drain

from .model_kernel import ModelKernel

RULES = """-A -t 10.0.0.1:80 -s wrr
-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 2
-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 3
-A -u 10.0.0.1:80 -s rr
-a -u 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1
-A -t [2001:db8::1]:443 -s rr
-a -t [2001:db8::1]:443 -r [2001:db8::10]:443 -m -w 1
"""


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


@pytest.fixture
def kernel():
    net = ipvs_py.Netns(kernel="6.1")
    net.restore(RULES)
    d = net.get_service("tcp", "10.0.0.1", 80).dests
    rip = {str(x.addr): x for x in d}
    rip["10.0.1.1"].activeconns, rip["10.0.1.1"].inactconns = 3, 2
    rip["10.0.1.2"].activeconns = 4
    return net, ModelKernel(net), rip


def test_drains_to_zero_then_deletes(kernel):
    net, conn, rip = kernel
    d = rip["10.0.1.1"]

    def connections_end():              # once quiesced, one ends per poll
        if d.weight:
            return
        if d.activeconns:
            d.activeconns -= 1
        elif d.inactconns:
            d.inactconns -= 1
    conn.before_read = connections_end
    clock, ticks = Clock(), []
    res = drain(conn, "10.0.0.1:80", "10.0.1.1:80", proto="tcp",
                clock=clock, sleep=clock.sleep,
                on_tick=lambda a, i, p, t: ticks.append((a, i)))
    assert res.outcome == "drained" and res.deleted and res.cut == 0
    assert ticks[0] == (2, 2) and ticks[-1] == (0, 0) and len(ticks) == 5
    assert conn.log == [("set_dest", "10.0.1.1", 80, 0),
                        ("del_dest", "10.0.1.1", 80)]
    svc = net.get_service("tcp", "10.0.0.1", 80)
    assert [(str(x.addr), x.weight) for x in svc.dests] == [("10.0.1.2", 3)]
    # the UDP service on the same VIP:PORT is untouched
    assert net.get_service("udp", "10.0.0.1", 80).dests[0].weight == 1


def test_deadline_deletes_and_counts_the_cut(kernel):
    net, conn, rip = kernel
    clock = Clock()
    res = drain(conn, "10.0.0.1:80", "10.0.1.1:80", proto="tcp", deadline=5,
                interval=2, clock=clock, sleep=clock.sleep)
    assert res.outcome == "deadline" and res.deleted
    assert (res.cut, res.active, res.inactive) == (5, 3, 2)
    assert res.elapsed == 5                    # the last sleep is cut short
    svc = net.get_service("tcp", "10.0.0.1", 80)
    assert [str(x.addr) for x in svc.dests] == ["10.0.1.2"]


def test_interrupt_leaves_weight_zero_and_says_so(kernel):
    net, conn, rip = kernel
    clock = Clock()

    def ctrl_c(_):
        raise KeyboardInterrupt
    res = drain(conn, "10.0.0.1:80", "10.0.1.1:80", proto="tcp",
                clock=clock, sleep=ctrl_c)
    assert res.outcome == "interrupted" and not res.deleted
    assert rip["10.0.1.1"].weight == 0 and rip["10.0.1.1"] in \
        net.get_service("tcp", "10.0.0.1", 80).dests
    assert "weight 0 (was 2)" in res.state
    assert "ipvsadm -e -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 2" in res.state


def test_vanished_destination(kernel):
    net, conn, rip = kernel
    conn.before_read = lambda: (
        net.del_dest(("tcp", "10.0.0.1", 80), "10.0.1.1", 80)
        if rip["10.0.1.1"].weight == 0 else None)
    res = drain(conn, "10.0.0.1:80", "10.0.1.1:80", proto="tcp",
                sleep=lambda s: None)
    assert res.outcome == "vanished" and not res.deleted


@pytest.mark.parametrize("svc, dest, proto, msg", [
    ("10.0.0.9:80", "10.0.1.1:80", None, "no service 10.0.0.9:80"),
    ("10.0.0.1:80", "10.0.1.1:80", None, "names 2 services"),
    ("10.0.0.1:80", "10.0.1.9:80", "tcp", "has no destination 10.0.1.9:80"),
    ("10.0.0.1", "10.0.1.1:80", "tcp", "expected ADDR:PORT"),
    ("10.0.0.1:99999", "10.0.1.1:80", "tcp", "port must be"),
    ("2001:db8::1:443", "x", "tcp", "[ADDR]:PORT"),
    ("fwmark:x", "10.0.1.1:80", None, "fwmark:N"),
    ("10.0.0.1:80", "host:80", "tcp", "not a numeric IP address"),
])
def test_bad_targets_change_nothing(kernel, svc, dest, proto, msg):
    net, conn, _ = kernel
    before = net.save()
    with pytest.raises(TargetError, match=msg.replace("[", r"\[")
                       .replace("]", r"\]")):
        drain(conn, svc, dest, proto=proto)
    assert conn.log == [] and net.save() == before


def test_ipv6_and_dry_run(kernel):
    net, conn, _ = kernel
    res = drain(conn, "[2001:db8::1]:443", "[2001:db8::10]:443", dry_run=True)
    assert res.outcome == "dry-run" and conn.log == []
    assert res.commands == [
        "ipvsadm -e -t [2001:db8::1]:443 -r [2001:db8::10]:443 -m -w 0",
        "ipvsadm -d -t [2001:db8::1]:443 -r [2001:db8::10]:443"]


@pytest.fixture
def cli_kernel(kernel, monkeypatch):
    from ipvs_py.ops import drain_cli
    monkeypatch.setattr(drain_cli, "IPVSConnection", lambda ns: kernel[1])
    return kernel


def test_cli_unknown_service_is_one_line_and_exit_1(cli_kernel, capsys):
    assert cli.main(["drain", "10.0.0.9:80", "10.0.1.1:80"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ipvs-py: no service")
    assert cli_kernel[1].log == []


def test_cli_deadline_json(cli_kernel, capsys):
    assert cli.main(["drain", "10.0.0.1:80", "10.0.1.2:80", "--proto", "tcp",
                     "--deadline", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["outcome"] == "deadline" and out["cut"] == 4


def test_cli_text(cli_kernel, capsys):
    assert cli.main(["drain", "10.0.0.1:80", "10.0.1.2:80", "--proto", "tcp",
                     "--deadline", "0"]) == 0
    assert "with 4 connection(s) cut (4 active, 0 inactive)" in \
        capsys.readouterr().out
    assert cli.main(["drain", "10.0.0.1:80", "10.0.1.1:80", "--proto", "tcp",
                     "--dry-run"]) == 0
    assert "ipvsadm -e -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 0" in \
        capsys.readouterr().out


def test_cli_ctrl_c_before_any_change(cli_kernel, monkeypatch, capsys):
    from ipvs_py.ops import drain_cli

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(drain_cli, "drain", interrupted)
    assert cli.main(["drain", "10.0.0.1:80", "10.0.1.1:80"]) == 130
    assert "kernel is unchanged" in capsys.readouterr().err


def test_cli_ctrl_c_during_the_wait(cli_kernel, monkeypatch, capsys):
    import sys

    def ctrl_c(_):
        raise KeyboardInterrupt
    # the module, not the function ipvs_py.ops re-exports under that name
    drain_mod = sys.modules["ipvs_py.ops.drain"]
    monkeypatch.setattr(drain_mod.drain, "__kwdefaults__",
                        {**drain_mod.drain.__kwdefaults__, "sleep": ctrl_c})
    assert cli.main(["drain", "10.0.0.1:80", "10.0.1.1:80", "--proto",
                     "tcp"]) == 130
    out = capsys.readouterr().out
    assert out.startswith("interrupted after ") and "weight 0 (was 2)" in out
