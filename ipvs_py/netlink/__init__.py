"""The bridge to kernel IPVS over generic netlink (pyroute2).

* :class:`IPVSConnection`: requests to kernel IPVS in one namespace;
* :func:`read_kernel`: the kernel's state as an ``ipvs_py.Netns``;
* :func:`sync`: the fewest changes from the kernel's state to a desired
  one, applied with rollback (:func:`plan`, :func:`apply` underneath).
"""
from .config import DestConfig, ServiceConfig, config_of_kernel, config_of_model
from .errors import (IPVSUnavailable, KernelRejected, NetlinkError,
                     NetnsNotFound, PermissionDenied)
from .plan import Step, SyncError, apply, plan
from .socket import IPVSConnection
from .sync import SyncResult, kernel_profile, read_kernel, sync

__all__ = ["IPVSConnection", "read_kernel", "sync", "SyncResult", "plan",
           "apply", "Step", "SyncError", "ServiceConfig", "DestConfig",
           "config_of_model", "config_of_kernel", "kernel_profile",
           "NetlinkError", "IPVSUnavailable", "KernelRejected",
           "NetnsNotFound", "PermissionDenied"]
