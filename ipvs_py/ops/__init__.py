"""Operator tools on a live kernel: drain a destination, snapshot the
whole IPVS state as JSON, export Prometheus metrics.

They read and write kernel IPVS through :mod:`ipvs_py.netlink` and, for
what netlink cannot give (connections, sysctls), the namespace's /proc
files (:mod:`.nsfiles`).
"""
from .drain import DrainResult, drain
from .metrics import render_metrics
from .snapshot import (SNAPSHOT_SCHEMA, kernel_snapshot, model_snapshot,
                       parse_ip_vs_conn)
from .target import TargetError, find_dest, find_service, parse_endpoint

__all__ = ["drain", "DrainResult", "kernel_snapshot", "model_snapshot",
           "parse_ip_vs_conn", "SNAPSHOT_SCHEMA", "render_metrics",
           "find_service", "find_dest", "parse_endpoint", "TargetError"]
