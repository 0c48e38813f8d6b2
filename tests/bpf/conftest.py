"""Fixtures for the BPF fast-path tests.

Tests skip, with the kernel's reason, only when the kernel refuses BPF
(EPERM/EACCES, missing support).  A missing clang or a verifier rejection
is a failure: those are bugs or setup errors, not the kernel saying no.
"""
import os
import shutil

import pytest

from ipvs_py.bpf import (BpfPermissionError, BpfUnsupportedError, FastPath,
                         Map, SessionMirror)
from ipvs_py.bpf.layout import KEY, VALUE
from ipvs_py.bpf.syscall import MAP_TYPE_HASH

from .nettopo import Topology


def kernel_refuses(exc):
    pytest.skip(f"kernel refuses BPF here: {exc}")


@pytest.fixture
def fastpath():
    """A freshly loaded program with small session maps."""
    try:
        fp = FastPath(max_sessions=1024)
    except (BpfPermissionError, BpfUnsupportedError) as e:
        kernel_refuses(e)
    yield fp
    fp.close()


@pytest.fixture
def mirror(fastpath):
    return SessionMirror(fastpath)


def session_maps_of(entries):
    """Two bare session-layout maps (no program) of ``entries`` each;
    skips when the kernel refuses BPF."""
    try:
        return [Map(MAP_TYPE_HASH, KEY.size, VALUE.size, entries, name=n)
                for n in ("t_in", "t_out")]
    except (BpfPermissionError, BpfUnsupportedError) as e:
        kernel_refuses(e)


@pytest.fixture
def session_maps():
    """Two bare session-layout maps (no program) of 8 entries each."""
    maps = session_maps_of(8)
    yield maps
    for m in maps:
        m.close()


@pytest.fixture
def topo():
    """Client, balancer and server namespaces (nettopo.Topology)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to create network namespaces")
    try:
        t = Topology()
    except RuntimeError as e:
        if "Operation not permitted" in str(e):
            pytest.skip(f"kernel refuses network namespaces: {e}")
        raise
    yield t
    t.close()
