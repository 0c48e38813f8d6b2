"""Every Linux IPVS scheduler, decision for decision.

One module per kernel scheduler, named like the kernel file
(``net/netfilter/ipvs/ip_vs_<name>.c`` -> ``ipvs_py/schedulers/<name>.py``),
behind the registry of :mod:`.sched` (``ip_vs_sched.c``).  Each module
registers one :class:`~.base.Scheduler` with the kernel's hooks
(``init_service``, ``done_service``, ``add_dest``, ``del_dest``,
``upd_dest``, ``schedule``); its per-service state lives in
``svc.sched_data``.  See docs/schedulers.md.

The hot schedulers (rr, wrr, wlc, sh, mh, plus lc/sed/nq/fo/ovf/dh) also run
in C without the GIL: :class:`ipvs_py._core.sched.BatchScheduler`.
"""
from .base import (AF_INET, AF_INET6, HZ, IP_VS_DEST_F_AVAILABLE,
                   IP_VS_DEST_F_OVERLOAD, IP_VS_SVC_F_SCHED1,
                   IP_VS_SVC_F_SCHED2, IP_VS_SVC_F_SCHED3,
                   IP_VS_SVC_F_SCHED_MH_FALLBACK, IP_VS_SVC_F_SCHED_MH_PORT,
                   IP_VS_SVC_F_SCHED_SH_FALLBACK, IP_VS_SVC_F_SCHED_SH_PORT,
                   PacketInfo, Scheduler, SchedulerError, SchedulerNotFound,
                   link_dest, unlink_dest, update_dest)
from .sched import (KERNEL_SCHEDULERS, SchedFlagError, bind_scheduler,
                    check_flags, lookup_scheduler, parse_sched_flags,
                    register_scheduler, sched_flags_text, sched_hook,
                    scheduler_get,
                    scheduler_names, unbind_scheduler, unregister_scheduler)

__all__ = [
    "AF_INET", "AF_INET6", "HZ", "IP_VS_DEST_F_AVAILABLE",
    "IP_VS_DEST_F_OVERLOAD", "IP_VS_SVC_F_SCHED1", "IP_VS_SVC_F_SCHED2",
    "IP_VS_SVC_F_SCHED3", "IP_VS_SVC_F_SCHED_MH_FALLBACK",
    "IP_VS_SVC_F_SCHED_MH_PORT", "IP_VS_SVC_F_SCHED_SH_FALLBACK",
    "IP_VS_SVC_F_SCHED_SH_PORT", "KERNEL_SCHEDULERS", "PacketInfo",
    "SchedFlagError", "Scheduler", "SchedulerError", "SchedulerNotFound",
    "bind_scheduler", "check_flags", "link_dest", "lookup_scheduler",
    "parse_sched_flags", "register_scheduler", "sched_flags_text", "sched_hook",
    "scheduler_get", "scheduler_names", "unbind_scheduler", "unlink_dest",
    "unregister_scheduler", "update_dest",
]
