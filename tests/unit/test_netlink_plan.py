"""Planning and applying kernel changes, against a fake kernel.

The fake holds a Config and applies steps with the kernel's rules for
existence (EEXIST/ESRCH/ENOENT), so plans, rollback and idempotence are
checked without a VM; tests/kernel/test_sync_vs_kernel.py does the same
against Debian's kernel.
"""
import copy
import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ipvs_py
from ipvs_py.netlink import (KernelRejected, Step, SyncError, apply,
                             config_of_model, plan)
from ipvs_py.netlink.config import normalise_model_svc


class FakeKernel:
    """A Config with IPVS_CMD_* semantics; ``fail_on`` makes one op fail."""

    def __init__(self, config=None, fail_on=None):
        self.cfg = {k: (normalise_model_svc(s), dict(d))
                    for k, (s, d) in (config or {}).items()}
        self.fail_on = fail_on
        self.log = []

    def _check(self, op, what):
        self.log.append((op, what))
        if self.fail_on and self.fail_on(op, what):
            raise KernelRejected(f"{op} {what}", errno.EINVAL)

    def _svc(self, s):
        from ipvs_py.netlink.config import service_from_kernel
        return service_from_kernel({**s, "netmask": s.get("netmask")})

    def new_service(self, s):
        sc = self._svc(s)
        self._check("new_service", sc.key)
        if sc.key in self.cfg:
            raise KernelRejected("add", errno.EEXIST)
        self.cfg[sc.key] = (sc, {})

    def set_service(self, s):
        sc = self._svc(s)
        self._check("set_service", sc.key)
        if sc.key not in self.cfg:
            raise KernelRejected("edit", errno.ESRCH)
        self.cfg[sc.key] = (sc, self.cfg[sc.key][1])

    def del_service(self, s):
        sc = self._svc(s)
        self._check("del_service", sc.key)
        if self.cfg.pop(sc.key, None) is None:
            raise KernelRejected("del", errno.ESRCH)

    def _dest(self, s, d):
        from ipvs_py.netlink.config import dest_from_kernel
        sc = self._svc(s)
        if sc.key not in self.cfg:
            raise KernelRejected("dest", errno.ESRCH)
        return sc.key, dest_from_kernel(d, sc.af)

    def new_dest(self, s, d):
        sk, dc = self._dest(s, d)
        self._check("new_dest", dc.key)
        if dc.key in self.cfg[sk][1]:
            raise KernelRejected("add dest", errno.EEXIST)
        self.cfg[sk][1][dc.key] = dc

    def set_dest(self, s, d):
        sk, dc = self._dest(s, d)
        self._check("set_dest", dc.key)
        if dc.key not in self.cfg[sk][1]:
            raise KernelRejected("edit dest", errno.ENOENT)
        self.cfg[sk][1][dc.key] = dc

    def del_dest(self, s, d):
        sk, dc = self._dest(s, d)
        self._check("del_dest", dc.key)
        if self.cfg[sk][1].pop(dc.key, None) is None:
            raise KernelRejected("del dest", errno.ENOENT)


def cfg(rules):
    net = ipvs_py.Netns(kernel="6.1")
    net.restore(rules)
    return config_of_model(net)


def norm(c):
    return {k: (normalise_model_svc(s), dict(d)) for k, (s, d) in c.items()}


BASE = """-A -t 10.0.0.1:80 -s wrr
-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 2
-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 3
-A -u 10.0.0.2:53 -s rr -p 300 -M 255.255.255.0
-a -u 10.0.0.2:53 -r 10.0.1.5:53 -g -w 1
-A -f 7 -s sh -b sh-fallback
-a -f 7 -r 10.0.1.2:0 -g -w 1
-A -t [2001:db8::1]:443 -s wlc
-a -t [2001:db8::1]:443 -r [2001:db8::10]:443 -i -w 1
"""


def test_no_changes_no_steps():
    assert plan(cfg(BASE), cfg(BASE)) == []


@pytest.mark.parametrize("change, expected", [
    (("-r 10.0.1.1:80 -m -w 2", "-r 10.0.1.1:80 -m -w 9"),
     ["ipvsadm -e -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 9"]),
    (("-t 10.0.0.1:80 -s wrr", "-t 10.0.0.1:80 -s lc"),
     ["ipvsadm -E -t 10.0.0.1:80 -s lc"]),
    (("-a -f 7 -r 10.0.1.2:0 -g -w 1\n", ""),
     ["ipvsadm -d -f 7 -r 10.0.1.2:0"]),
    (("-p 300", "-p 600"),
     ["ipvsadm -E -u 10.0.0.2:53 -s rr -p 600 -M 255.255.255.0"]),
    (("-r 10.0.1.5:53 -g -w 1", "-r 10.0.1.5:53 -m -w 1 -x 50 -y 5"),
     ["ipvsadm -e -u 10.0.0.2:53 -r 10.0.1.5:53 -m -w 1 -x 50 -y 5"]),
])
def test_single_changes_are_single_steps(change, expected):
    old, new = change
    assert [s.ipvsadm() for s in plan(cfg(BASE), cfg(BASE.replace(old, new)))] \
        == expected


def test_order_add_service_before_dests_remove_dests_before_service():
    target = BASE.replace("-A -f 7 -s sh -b sh-fallback\n-a -f 7 -r 10.0.1.2:0 -g -w 1\n", "") \
        + "-A --sctp-service 10.0.0.3:3868 -s mh -b mh-port\n" \
          "-a --sctp-service 10.0.0.3:3868 -r 10.0.1.9:3868 -m -w 1\n"
    steps = [s.ipvsadm() for s in plan(cfg(BASE), cfg(target), prune=True)]
    assert steps == [
        "ipvsadm -A --sctp-service 10.0.0.3:3868 -s mh -b mh-port",
        "ipvsadm -a --sctp-service 10.0.0.3:3868 -r 10.0.1.9:3868 -m -w 1",
        "ipvsadm -d -f 7 -r 10.0.1.2:0",
        "ipvsadm -D -f 7",
    ]


def test_foreign_services_are_left_alone_unless_pruning():
    current = cfg(BASE + "-A -t 192.0.2.9:22 -s rr\n")
    assert plan(current, cfg(BASE)) == []
    assert [s.op for s in plan(current, cfg(BASE), prune=True)] == ["del-service"]


def test_graceful_removal_sets_weight_zero_until_drained():
    target = BASE.replace("-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 3\n", "")
    busy = plan(cfg(BASE), cfg(target), graceful=True, drained=lambda s, d: False)
    assert [s.ipvsadm() for s in busy] == \
        ["ipvsadm -e -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 0"]
    drained = plan(cfg(BASE), cfg(target), graceful=True, drained=lambda s, d: True)
    assert [s.ipvsadm() for s in drained] == ["ipvsadm -d -t 10.0.0.1:80 -r 10.0.1.2:80"]


def test_apply_then_replan_is_empty():
    k = FakeKernel(cfg(BASE))
    target = cfg(BASE.replace("-w 2", "-w 4") + "-A -t 10.0.0.4:80 -s rr\n")
    n = apply(k, plan(k.cfg, target))
    assert n == 2
    assert plan(k.cfg, target) == []
    assert norm(k.cfg) == norm(target)


def test_failure_mid_plan_rolls_back_everything():
    k = FakeKernel(cfg(BASE))
    before = copy.deepcopy(k.cfg)
    target = cfg(BASE.replace("-s wrr", "-s rr").replace("-w 3", "-w 1")
                 + "-A -t 10.0.0.4:80 -s rr\n-a -t 10.0.0.4:80 -r 10.0.1.7:80 -m -w 1\n")
    steps = plan(k.cfg, target)
    assert len(steps) == 4
    k.fail_on = lambda op, what: op == "new_dest"
    with pytest.raises(SyncError) as info:
        apply(k, steps)
    assert k.cfg == before
    err = info.value
    assert err.rolled_back and err.done == 3
    assert "step 4 failed: ipvsadm -a -t 10.0.0.4:80 -r 10.0.1.7:80" in str(err)
    assert "EINVAL" in str(err) and "left as it was" in str(err)


def test_failed_rollback_is_reported():
    k = FakeKernel(cfg(BASE))
    steps = plan(k.cfg, cfg(BASE + "-A -t 10.0.0.4:80 -s rr\n-A -t 10.0.0.5:80 -s rr\n"))
    k.fail_on = lambda op, what: op in ("del_service",) or \
        (op == "new_service" and what[3] == 80 and what[2][3] == 5)
    with pytest.raises(SyncError) as info:
        apply(k, steps)
    assert not info.value.rolled_back
    assert "ROLLBACK INCOMPLETE" in str(info.value)


def test_every_step_undoes_itself():
    steps = plan(cfg(BASE), cfg("-A -t 10.0.0.1:80 -s lc\n"
                                "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 7\n"), prune=True)
    assert {s.op for s in steps} >= {"edit-service", "edit-dest", "del-dest",
                                     "del-service"}
    for s in steps:
        assert s.undo().undo() == s


def _rules_strategy():
    svc_addrs = [f"10.0.0.{i}" for i in range(1, 5)]
    dest_addrs = [f"10.0.1.{i}" for i in range(1, 6)]
    svc = st.tuples(st.sampled_from(svc_addrs), st.sampled_from(["rr", "wrr", "lc"]),
                    st.lists(st.tuples(st.sampled_from(dest_addrs),
                                       st.integers(0, 5),
                                       st.sampled_from(["-m", "-g"])),
                             max_size=3, unique_by=lambda t: t[0]))
    return st.lists(svc, max_size=4, unique_by=lambda t: t[0])


def _render(spec):
    out = []
    for addr, sched, dests in spec:
        out.append(f"-A -t {addr}:80 -s {sched}")
        out += [f"-a -t {addr}:80 -r {d}:80 {m} -w {w}" for d, w, m in dests]
    return "\n".join(out) + "\n"


@settings(max_examples=60, deadline=None)
@given(a=_rules_strategy(), b=_rules_strategy(), prune=st.booleans())
def test_random_syncs_reach_the_target_and_are_idempotent(a, b, prune):
    k = FakeKernel(cfg(_render(a)))
    target = cfg(_render(b))
    apply(k, plan(k.cfg, target, prune=prune))
    assert plan(k.cfg, target, prune=prune) == []
    got = norm(k.cfg)
    want = norm(target)
    if prune:
        assert got == want
    else:
        assert {k2: v for k2, v in got.items() if k2 in want} == want
