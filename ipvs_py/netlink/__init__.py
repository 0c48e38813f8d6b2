"""The bridge to kernel IPVS over generic netlink (pyroute2)."""
from .errors import (IPVSUnavailable, KernelRejected, NetlinkError,
                     NetnsNotFound, PermissionDenied)
from .socket import IPVSConnection

__all__ = ["IPVSConnection", "NetlinkError", "IPVSUnavailable",
           "KernelRejected", "NetnsNotFound", "PermissionDenied"]
