"""The scheduler registry, after ``net/netfilter/ipvs/ip_vs_sched.c``.

Schedulers register themselves by name when their module is imported.  A
lookup of a missing name imports ``ipvs_py.schedulers.<name>`` and looks
again, as the kernel does ``request_module("ip_vs_%s")`` -- so the name a
user types, the module file and the registered name are always the same.
"""
from __future__ import annotations

import errno
import importlib
import re
import threading

from .base import (IP_VS_SCHEDNAME_MAXLEN, IP_VS_SVC_F_SCHED1,
                   IP_VS_SVC_F_SCHED2, IP_VS_SVC_F_SCHED3, Scheduler,
                   SchedulerError, SchedulerNotFound)

__all__ = [
    "register_scheduler", "unregister_scheduler", "scheduler_get",
    "lookup_scheduler", "bind_scheduler", "unbind_scheduler",
    "scheduler_names", "KERNEL_SCHEDULERS", "parse_sched_flags",
    "sched_flags_text", "check_flags", "sched_hook",
]

#: Every scheduler of mainline Linux, in ``net/netfilter/ipvs/Kconfig`` order.
KERNEL_SCHEDULERS = ("rr", "wrr", "lc", "wlc", "fo", "ovf", "lblc", "lblcr",
                     "dh", "sh", "mh", "sed", "nq", "twos")

_schedulers: dict[str, Scheduler] = {}
_mutex = threading.Lock()                 # ip_vs_sched_mutex
_MODULE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_NOT_SCHEDULERS = {"base", "sched"}       # modules of this package that are not


def register_scheduler(scheduler):
    """``register_ip_vs_scheduler()``: add ``scheduler`` under its name.

    Raises SchedulerError(EINVAL) for a missing name or a name already taken
    (the kernel's "scheduler already existed in the system")."""
    if scheduler is None or not isinstance(scheduler, Scheduler):
        raise SchedulerError(errno.EINVAL, "register_scheduler(): NULL arg")
    if not scheduler.name:
        raise SchedulerError(errno.EINVAL,
                             "register_scheduler(): NULL scheduler_name")
    with _mutex:
        old = _schedulers.get(scheduler.name)
        if old is scheduler:
            raise SchedulerError(errno.EINVAL, f"[{scheduler.name}] "
                                 "scheduler already linked")
        if old is not None:
            raise SchedulerError(errno.EINVAL, f"[{scheduler.name}] "
                                 "scheduler already existed in the system")
        _schedulers[scheduler.name] = scheduler
    return scheduler


def unregister_scheduler(scheduler):
    """``unregister_ip_vs_scheduler()``."""
    with _mutex:
        if _schedulers.get(scheduler.name) is not scheduler:
            raise SchedulerError(errno.EINVAL, f"[{scheduler.name}] "
                                 "scheduler is not in the list. failed")
        del _schedulers[scheduler.name]


def _getbyname(name):
    with _mutex:
        return _schedulers.get(name)


def scheduler_get(name):
    """``ip_vs_scheduler_get()``: the scheduler, loading its module on a
    miss; None if there is no such scheduler."""
    sched = _getbyname(name)
    if sched is None and _MODULE_NAME.match(name) \
            and name not in _NOT_SCHEDULERS:
        try:
            importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{name}":
                raise
        sched = _getbyname(name)
    return sched


def lookup_scheduler(name):
    """What ``ip_vs_add_service``/``ip_vs_edit_service`` do with
    ``sched_name``: the Scheduler, None for ``"none"`` (a service without a
    scheduler: new connections get no dest), else SchedulerNotFound
    (ENOENT).  Names of 16 bytes or more never reach the kernel: the netlink
    policy (NLA_NUL_STRING, len 15) rejects them with EINVAL."""
    if not isinstance(name, str):
        raise SchedulerError(errno.EINVAL,
                             f"scheduler name must be a str, not "
                             f"{type(name).__name__}")
    if len(name.encode()) > IP_VS_SCHEDNAME_MAXLEN - 1 or "\0" in name:
        raise SchedulerError(errno.EINVAL,
                             f"scheduler name {name!r} longer than "
                             f"{IP_VS_SCHEDNAME_MAXLEN - 1} bytes")
    if name == "none":
        return None
    sched = scheduler_get(name)
    if sched is None:
        raise SchedulerNotFound(name)
    return sched


def bind_scheduler(svc, scheduler, netns=None):
    """``ip_vs_bind_scheduler()``: run ``init_service``; errors propagate
    and leave ``svc.sched_data`` as it was.  ``netns`` (anything with
    ``.now`` or ``.jiffies``/``.hz``, and ``.sysctl``) gives lblc/lblcr
    their clock and sysctls, the kernel's ``jiffies`` and ``svc->ipvs``."""
    if scheduler is not None and scheduler.init_service is not None:
        if scheduler.uses_netns:
            scheduler.init_service(svc, netns=netns)
        else:
            scheduler.init_service(svc)


def unbind_scheduler(svc, scheduler):
    """``ip_vs_unbind_scheduler()``: run ``done_service``, drop the state."""
    if scheduler is not None and scheduler.done_service is not None:
        scheduler.done_service(svc)
    svc.sched_data = None


def scheduler_names(load=True):
    """Registered names; with ``load`` every kernel scheduler is imported
    first (the model has all of them, like a kernel with every module)."""
    if load:
        for name in KERNEL_SCHEDULERS:
            scheduler_get(name)
    with _mutex:
        return sorted(_schedulers)


# ------------------------------------------------- scheduler flags (ipvsadm)

_FLAG_NAMES = {
    "sh": ((IP_VS_SVC_F_SCHED1, "sh-fallback"), (IP_VS_SVC_F_SCHED2, "sh-port")),
    "mh": ((IP_VS_SVC_F_SCHED1, "mh-fallback"), (IP_VS_SVC_F_SCHED2, "mh-port")),
}
SCHED_FLAGS_MASK = IP_VS_SVC_F_SCHED1 | IP_VS_SVC_F_SCHED2 | IP_VS_SVC_F_SCHED3


class SchedFlagError(SchedulerError, ValueError):
    """ipvsadm refused a ``-b`` flag list (it exits 2 with this message)."""

    def __init__(self, msg):
        super().__init__(errno.EINVAL, msg)


def parse_sched_flags(sched_name, text):
    """ipvsadm's ``parse_sched_flags()``: ``-b flag-1,sh-port`` -> bits.

    ``flag-1..3`` are accepted for any scheduler; ``sh-*``/``mh-*`` only
    with that scheduler ("incompatible scheduler flag"); anything else is an
    "invalid scheduler flag".  An empty name means ipvsadm's default, wlc.
    """
    sched_name = sched_name or "wlc"
    flags = 0
    # strtok() skips empty fields; an empty list would crash ipvsadm (its
    # do-while strcmp()s a NULL), so it is an invalid flag here
    for flag in [f for f in text.split(",") if f] or [""]:
        if flag in ("flag-1", "flag-2", "flag-3"):
            flags |= (IP_VS_SVC_F_SCHED1, IP_VS_SVC_F_SCHED2,
                      IP_VS_SVC_F_SCHED3)[int(flag[-1]) - 1]
            continue
        for owner, names in _FLAG_NAMES.items():
            bit = next((b for b, n in names if n == flag), None)
            if bit is not None:
                if sched_name != owner:
                    raise SchedFlagError(
                        f"incompatible scheduler flag `{flag}'")
                flags |= bit
                break
        else:
            raise SchedFlagError(f"invalid scheduler flag `{flag}'")
    return flags


def sched_flags_text(sched_name, flags):
    """ipvsadm's ``print_sched_flags()``: bits -> ``flag-1,flag-3``.

    sh and mh print their own two names and nothing else: ipvsadm shows
    ``-s sh -b flag-3`` as ``sh ()`` and saves it as ``-b `` (checked
    against Debian's ipvsadm 1.31 on 6.1 in the test VM)."""
    names = _FLAG_NAMES.get(sched_name) or (
        (IP_VS_SVC_F_SCHED1, "flag-1"), (IP_VS_SVC_F_SCHED2, "flag-2"),
        (IP_VS_SVC_F_SCHED3, "flag-3"))
    return ",".join(name for bit, name in names if flags & bit)


def check_flags(flags):
    """The kernel takes any u32 of service flags (``struct ip_vs_flags``);
    it does not check scheduler bits against the scheduler.  Anything that
    is not a u32 is EINVAL here, as it could not be sent."""
    if isinstance(flags, bool) or not isinstance(flags, int) \
            or not 0 <= flags <= 0xFFFFFFFF:
        raise SchedulerError(errno.EINVAL,
                             f"service flags must be a u32, got {flags!r}")
    return flags


def sched_hook(netns, name, svc, dest=None):
    """Run hook ``name`` of ``svc.sched_name``'s scheduler.

    The body for the control plane's ``Netns._sched_hook(name, svc, dest)``:
    ``init_service`` binds (with ``netns`` as clock and sysctl source),
    ``done_service`` unbinds, ``add_dest``/``del_dest``/``upd_dest`` run the
    scheduler's hook if it has one.  ``"none"`` has no hooks."""
    sched = lookup_scheduler(svc.sched_name)
    if sched is None:
        return
    if name == "init_service":
        bind_scheduler(svc, sched, netns)
    elif name == "done_service":
        unbind_scheduler(svc, sched)
    elif name in ("add_dest", "del_dest", "upd_dest"):
        fn = getattr(sched, name)
        if fn is not None:
            fn(svc, dest)
    else:
        raise ValueError(f"unknown scheduler hook {name!r}")
