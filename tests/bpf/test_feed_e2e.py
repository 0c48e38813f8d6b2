"""End to end, fed by the model: the model's packet path sees a client's
TCP handshake and UDP datagram, the feed installs the sessions, and then
real traffic between the client and real-server namespaces goes through
the tc program on those sessions.  When the model expires the conns, the
sessions are gone and a datagram no longer reaches the real server.  All
traffic stays inside the three namespaces of nettopo.Topology.
"""
import subprocess
import sys

import pytest

import ipvs_py
from ipvs_py.bpf import ConnRecord, SessionMirror, attach_clsact

from .test_netns_e2e import (ADDRS, CPORT_T, CPORT_U, PEER, RPORT_T, RPORT_U,
                             VPORT_T, VPORT_U, run_echo)


def _hostport(addr, port):
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def model_for(vip, server):
    net = ipvs_py.Netns()
    v_t, v_u = _hostport(vip, VPORT_T), _hostport(vip, VPORT_U)
    net.restore(f"-A -t {v_t} -s rr\n"
                f"-a -t {v_t} -r {_hostport(server, RPORT_T)} -m\n"
                f"-A -u {v_u} -s rr\n"
                f"-a -u {v_u} -r {_hostport(server, RPORT_U)} -m\n")
    return net


def udp_probe_reaches_server(topo, vip, server):
    """Send one datagram client -> VIP; True if the real server got it."""
    lis = topo.popen(topo.srv, [sys.executable, PEER, "listen-udp", server,
                                str(RPORT_U), "2"],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert lis.stdout.readline().strip() == "ready", lis.stderr.read()
        subprocess.run(["ip", "netns", "exec", topo.cli, sys.executable, PEER,
                        "send-udp", vip, str(VPORT_U), str(CPORT_U)],
                       check=True, timeout=30)
        out, err = lis.communicate(timeout=30)
    finally:
        if lis.poll() is None:
            lis.kill()
            lis.wait()
    assert out.strip() in ("nothing", "got udp-probe"), (out, err)
    return out.strip() == "got udp-probe"


@pytest.mark.parametrize("fam", [4, 6], ids=["ipv4", "ipv6"])
def test_sessions_from_the_model_carry_real_traffic(topo, fastpath, fam):
    client, vip, server = ADDRS[fam]
    net = model_for(vip, server)
    mirror = SessionMirror(fastpath)
    feed = mirror.attach(net)
    for dev in ("l0", "l1"):
        attach_clsact(fastpath.prog_fd, dev, netns=topo.lb)

    # The model's slow path sees the flows first.
    assert net.packet("tcp", client, CPORT_T, vip, VPORT_T, "S").dest == \
        (server, RPORT_T)
    assert len(mirror) == 0                     # SYN_RECV: not yet
    net.packet("tcp", server, RPORT_T, client, CPORT_T, "SA",
               direction="out")
    net.packet("tcp", client, CPORT_T, vip, VPORT_T, "A")
    net.packet("udp", client, CPORT_U, vip, VPORT_U, "")
    assert len(mirror) == 2 and feed.stats.installs == 2

    lines = run_echo(topo, client, vip, server)
    reply, sent = lines["tcp"].split(" sent=")
    assert reply == f"echo:{sent}+tcp-ping|peer={client}:{CPORT_T}"
    assert lines["udp"] == (f"echo:udp-ping|peer={client}:{CPORT_U} "
                            f"from={vip}:{VPORT_U}")
    tcp = ConnRecord("tcp", client, CPORT_T, vip, VPORT_T, server, RPORT_T)
    fwd, rev = mirror.stats(tcp)
    assert fwd.packets >= 3 and rev.packets >= 2

    assert udp_probe_reaches_server(topo, vip, server)
    # UDP expires in the model after 300 s, TCP ESTABLISHED after 900 s.
    net.advance(301)
    assert len(mirror) == 1 and mirror.stats(tcp) is not None
    assert not udp_probe_reaches_server(topo, vip, server)
    net.advance(600)
    assert len(mirror) == 0 and len(fastpath.sess_out) == 0
    assert feed.stats.removals == 2
    feed.detach()
