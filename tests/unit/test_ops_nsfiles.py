"""Reading a namespace's /proc files from a thread that entered it."""
import os

import pytest

from ipvs_py.netlink import NetnsNotFound
from ipvs_py.ops.nsfiles import read_in_netns, read_sysctl


def test_own_namespace_and_missing_files():
    got = read_in_netns(None, ["/proc/net/dev", "/proc/net/no_such_file"])
    assert got["/proc/net/dev"].startswith("Inter-")
    assert got["/proc/net/no_such_file"] is None
    assert read_sysctl(None, "no_such_sysctl") is None


def test_unknown_namespace():
    with pytest.raises(NetnsNotFound, match="no-such-ns-x"):
        read_in_netns("no-such-ns-x", ["/proc/net/dev"])


@pytest.mark.skipif(os.geteuid() != 0, reason="setns needs CAP_SYS_ADMIN")
def test_entering_a_namespace_by_pid_reads_through_thread_self():
    # our own namespace by pid: the setns path, same answer as without it
    a = read_in_netns(os.getpid(), ["/proc/net/dev"])["/proc/net/dev"]
    assert a.splitlines()[:2] == \
        read_in_netns(None, ["/proc/net/dev"])["/proc/net/dev"].splitlines()[:2]
