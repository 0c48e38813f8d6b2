"""The registry of ip_vs_sched.c and the kernel's/ipvsadm's rejections."""
import errno

import pytest

from ipvs_py import schedulers as S
from ipvs_py.schedulers import base, sched

from .helpers import Service, make


def test_every_kernel_scheduler_is_registered_under_its_file_name():
    names = S.scheduler_names()
    assert set(S.KERNEL_SCHEDULERS) <= set(names)
    for name in S.KERNEL_SCHEDULERS:
        s = S.scheduler_get(name)
        assert s.name == name
        mod = __import__(f"ipvs_py.schedulers.{name}", fromlist=["x"])
        assert mod.scheduler is s
        assert s.schedule is not None and s.doc


def test_unknown_scheduler_is_enoent_with_the_kernel_message():
    with pytest.raises(S.SchedulerNotFound) as ei:
        S.lookup_scheduler("xyz")
    assert ei.value.errno == errno.ENOENT
    assert str(ei.value.strerror) == "Scheduler module ip_vs_xyz not found"
    assert S.scheduler_get("xyz") is None


@pytest.mark.parametrize("name", ["base", "sched", "_mh_table", "RR", "r r",
                                  "../rr", ""])
def test_module_names_that_are_not_schedulers_are_not_found(name):
    with pytest.raises(S.SchedulerNotFound):
        S.lookup_scheduler(name)


def test_name_too_long_for_netlink_is_einval():
    with pytest.raises(S.SchedulerError) as ei:
        S.lookup_scheduler("a" * 16)
    assert ei.value.errno == errno.EINVAL
    with pytest.raises(S.SchedulerNotFound):       # 15 bytes is fine
        S.lookup_scheduler("a" * 15)


def test_none_means_no_scheduler():
    assert S.lookup_scheduler("none") is None


def test_register_rejects_duplicates_and_missing_names():
    rr = S.scheduler_get("rr")
    with pytest.raises(S.SchedulerError) as ei:
        S.register_scheduler(rr)
    assert ei.value.errno == errno.EINVAL and "already linked" in str(ei.value)
    with pytest.raises(S.SchedulerError, match="already existed"):
        S.register_scheduler(base.Scheduler(name="rr"))
    with pytest.raises(S.SchedulerError, match="NULL scheduler_name"):
        S.register_scheduler(base.Scheduler(name=""))
    mine = base.Scheduler(name="test_only", schedule=lambda svc, p: None)
    S.register_scheduler(mine)
    try:
        assert S.lookup_scheduler("test_only") is mine
    finally:
        S.unregister_scheduler(mine)
    with pytest.raises(S.SchedulerError, match="not in the list"):
        S.unregister_scheduler(mine)


@pytest.mark.parametrize("sched_name,text,flags", [
    ("sh", "sh-fallback", 0x08), ("sh", "sh-port", 0x10),
    ("sh", "sh-fallback,sh-port", 0x18), ("mh", "mh-port,mh-fallback", 0x18),
    ("rr", "flag-1,flag-3", 0x28), ("", "flag-2", 0x10),
    ("sh", "flag-1,sh-port", 0x18),
])
def test_parse_sched_flags_like_ipvsadm(sched_name, text, flags):
    assert S.parse_sched_flags(sched_name, text) == flags


@pytest.mark.parametrize("sched_name,text,msg", [
    ("rr", "sh-port", "incompatible scheduler flag `sh-port'"),
    ("sh", "mh-fallback", "incompatible scheduler flag `mh-fallback'"),
    ("", "sh-port", "incompatible scheduler flag `sh-port'"),   # default wlc
    ("sh", "sh-bogus", "invalid scheduler flag `sh-bogus'"),
    ("mh", "flag-4", "invalid scheduler flag `flag-4'"),
])
def test_invalid_sched_flags_rejected_like_ipvsadm(sched_name, text, msg):
    with pytest.raises(sched.SchedFlagError) as ei:
        S.parse_sched_flags(sched_name, text)
    assert ei.value.strerror == msg
    assert ei.value.errno == errno.EINVAL


@pytest.mark.parametrize("sched_name,flags,text", [
    ("sh", 0x18, "sh-fallback,sh-port"), ("sh", 0x20, ""), ("sh", 0x38, "sh-fallback,sh-port"),
    ("mh", 0x30, "mh-port"),
    ("mh", 0x08, "mh-fallback"), ("wrr", 0x38, "flag-1,flag-2,flag-3"),
    ("rr", 0x1, ""),
])
def test_sched_flags_text(sched_name, flags, text):
    assert S.sched_flags_text(sched_name, flags) == text


@pytest.mark.parametrize("flags", [-1, 1 << 32, "8", 1.0, True])
def test_flags_must_be_a_u32(flags):
    with pytest.raises(S.SchedulerError):
        S.check_flags(flags)
    assert S.check_flags(0xFFFFFFFF) == 0xFFFFFFFF


def test_bind_unbind_owns_sched_data():
    svc, sch = make("wrr", [1, 2])
    assert svc.sched_data is not None
    S.unbind_scheduler(svc, sch)
    assert svc.sched_data is None


def test_scheduler_err_formats_like_the_kernel(caplog):
    svc = Service()
    assert base.scheduler_err(svc, "rr", "no destination available") == \
        "rr: TCP 10.0.0.1:80 - no destination available"
    svc6 = Service(af=10, addr="2001:db8::1", protocol=17, port=53)
    assert base.scheduler_err(svc6, "sh", "x") == "sh: UDP [2001:db8::1]:53 - x"
    fw = Service(fwmark=7)
    assert base.scheduler_err(fw, "wlc", "x") == "wlc: FWM 7 0x00000007 - x"


def test_mh_init_refuses_more_dests_than_slots():
    from ipvs_py.schedulers import mh
    from .helpers import Dest
    svc = Service(sched_name="mh")
    svc.dests = [Dest(i + 1, 80, 1) for i in range(mh.TAB_SIZE + 1)]
    with pytest.raises(S.SchedulerError) as ei:
        S.bind_scheduler(svc, S.scheduler_get("mh"))
    assert ei.value.errno == errno.EINVAL


def test_sched_hook_drives_a_control_plane_like_netns():
    from .helpers import Dest

    class FakeNetns:                      # what ctl's Netns offers
        jiffies, hz = 250 * 1000, 250
        sysctl = {"lblc_expiration": 60}

    net = FakeNetns()
    svc = Service(sched_name="lblc")
    S.sched_hook(net, "init_service", svc)
    assert svc.sched_data.netns is net
    assert svc.sched_data.next_timer == (1000 + 60) * 250
    d = Dest(0x0A000101, 80, 1)
    svc.dests.insert(0, d)
    d.available = True
    S.sched_hook(net, "add_dest", svc, d)          # lblc has no add hook
    from ipvs_py.schedulers.base import PacketInfo
    sch = S.scheduler_get("lblc")
    assert sch.schedule(svc, PacketInfo(saddr=1, daddr=2)) is d
    from ipvs_py.schedulers import lblc
    assert lblc.expiration_j(svc) == 60 * 250
    S.sched_hook(net, "done_service", svc)
    assert svc.sched_data is None
    svc.sched_name = "none"
    S.sched_hook(net, "init_service", svc)         # no scheduler: nothing
    assert svc.sched_data is None
    with pytest.raises(ValueError):
        svc.sched_name = "rr"
        S.sched_hook(net, "bogus", svc)


def test_flags_bit_style_dests_work_too():
    """Dests without an ``available`` attribute keep it in ``flags``."""
    import dataclasses

    @dataclasses.dataclass(eq=False)
    class D:
        addr: int
        port: int = 80
        weight: int = 1
        flags: int = 0
        activeconns: int = 0
        inactconns: int = 0

    @dataclasses.dataclass(eq=False)
    class Svc:
        af: int = 2
        protocol: int = 6
        addr: int = 1
        port: int = 80
        fwmark: int = 0
        flags: int = 0
        destinations: list = dataclasses.field(default_factory=list)
        sched_data: object = None

    svc = Svc()
    dh = S.scheduler_get("dh")
    S.bind_scheduler(svc, dh)
    a = D(5)
    S.link_dest(svc, a, dh)
    assert a.flags & S.IP_VS_DEST_F_AVAILABLE
    from ipvs_py.schedulers.base import PacketInfo
    assert dh.schedule(svc, PacketInfo(saddr=1, daddr=7)) is a
    from ipvs_py._core.sched import BatchScheduler
    bs = BatchScheduler(svc, "dh")
    assert bs.schedule(0, 0, 7) == 0
    S.unlink_dest(svc, a, dh)
    assert not a.flags & S.IP_VS_DEST_F_AVAILABLE


@pytest.mark.parametrize("sched_name", ["sh", "mh", "rr", "", "wlc"])
@pytest.mark.parametrize("text", ["sh-fallback", "sh-port,flag-3", "mh-port",
                                  "flag-1,flag-2", "", ",", "x", "sh-fallback,,"])
def test_parse_sched_flags_agrees_with_the_rules_parser(sched_name, text):
    """ipvs_py.rules has its own copy of ipvsadm's parse_sched_flags()."""
    rules = pytest.importorskip("ipvs_py.rules")
    try:
        theirs = ("ok", rules._sched_flags(sched_name, text))
    except Exception as exc:                   # rules' _Fail
        theirs = ("fail", str(exc))
    try:
        ours = ("ok", S.parse_sched_flags(sched_name, text))
    except S.SchedulerError as exc:
        ours = ("fail", exc.strerror)
    assert ours[0] == theirs[0]
    if ours[0] == "ok":
        assert ours == theirs
    else:
        assert ours[1] in theirs[1]
