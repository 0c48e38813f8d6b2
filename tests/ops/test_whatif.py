"""What-if figures equal those computed independently from a direct
replay with the change applied (replay part 1, apply the change through
the public API, replay part 2), for each kind of change the issue names;
bad input; the CLI's JSON and PNG."""
import json

import numpy as np
import pytest

import ipvs_py
from ipvs_py import cli
from ipvs_py.ops.whatif import WhatIfError, config_of, what_if
from ipvs_py.packets import PacketBatch
from ipvs_py.workload import generators

RULES = """\
-A -t 192.0.2.1:80 -s wlc
-a -t 192.0.2.1:80 -r 10.0.1.1:80 -m
-a -t 192.0.2.1:80 -r 10.0.1.2:80 -m
-a -t 192.0.2.1:80 -r 10.0.1.3:80 -m
-A -t 192.0.2.2:443 -s rr -p 60
-a -t 192.0.2.2:443 -r 10.0.1.1:443 -m
-a -t 192.0.2.2:443 -r 10.0.1.2:443 -m
-A -u 192.0.2.3:53 -s rr
-a -u 192.0.2.3:53 -r 10.0.1.1:53 -m
-a -u 192.0.2.3:53 -r 10.0.1.2:53 -m
"""
AT = 30.0
STEP = 5.0
HORIZON = 300.0

CHANGES = [
    "-e -t 192.0.2.1:80 -r 10.0.1.1:80 -m -w 0",
    "-d -t 192.0.2.1:80 -r 10.0.1.1:80",
    "-d -t 192.0.2.1:80 -r 10.0.1.1:80; sysctl expire_nodest_conn=1",
    "-a -t 192.0.2.1:80 -r 10.0.1.4:80 -m -w 3",
    "-E -t 192.0.2.1:80 -s rr",
    "-E -t 192.0.2.2:443 -s rr",                      # persistence off
    "-e -t 192.0.2.2:443 -r 10.0.1.1:443 -m -w 0; "
    "sysctl expire_quiescent_template=1",
    "-d -t 192.0.2.2:443 -r 10.0.1.2:443",
    "--set 20 0 0",
    "sysctl conn_reuse_mode=0",
    # UDP: every packet refreshes the entry, so a quiesced dest keeps its
    # flows; with expire_nodest_conn a deleted dest's flows move
    "-e -u 192.0.2.3:53 -r 10.0.1.1:53 -m -w 0",
    "-d -u 192.0.2.3:53 -r 10.0.1.1:53; sysctl expire_nodest_conn=1",
]


@pytest.fixture(scope="module")
def workload():
    a = generators.long_short_mix(40, 120, duration=60.0, seed=3,
                                  vips=(("192.0.2.1", 80),))
    b = generators.many_clients_few_vips(20, 6, rate=2.0, seed=4,
                                         vips=(("192.0.2.2", 443),))
    c = generators.long_short_mix(12, 0, duration=60.0, seed=5,
                                  proto="udp", vips=(("192.0.2.3", 53),))
    return PacketBatch.concat([a, b, c])


def _apply(net, change):
    for part in change.split(";"):
        part = part.strip()
        if part.startswith("sysctl "):
            name, value = part[7:].split("=")
            net.sysctl[name] = int(value)
        else:
            net.restore(part + "\n")


def _flow_key(p):
    return (p.proto, p.saddr, p.sport, p.daddr, p.dport)


def _direct(batch, change):
    """Replay part 1, apply the change, replay part 2; then figures from
    the verdicts with plain Python."""
    net = ipvs_py.Netns(seed=0)
    net.restore(RULES)
    t = np.asarray(batch.time)
    cut = int(np.searchsorted(t, AT))
    before_w = {(str(d.addr), d.port): d.weight
                for s in net.services() for d in s.dests}
    persistent = {(str(s.addr), s.port) for s in net.services()
                  if s.flags & 1}
    r1 = net.replay(batch[:cut])
    net.advance(AT - net.now)
    _apply(net, change)
    r2 = net.replay(batch[cut:])
    live = {(str(d.addr), d.port): d.weight
            for s in net.services() for d in s.dests}
    old = {k for k, w in before_w.items()
           if w > 0 and (k not in live or live[k] == 0)}
    last, seen_after, moved, dropped, broken, stuck = {}, set(), set(), \
        set(), set(), set()
    drops = 0
    cl_before, lost = {}, set()
    for i, p in enumerate(batch):
        res = r1 if i < cut else r2
        j = i if i < cut else i - cut
        act, dest = res.action[j], res.dest[j]
        k = _flow_key(p)
        ck = (p.saddr, p.daddr, p.dport)
        pers = (p.daddr, p.dport) in persistent
        if i < cut:
            if act == "forward":
                last[k] = dest
                if pers:
                    cl_before.setdefault(ck, set()).add(dest)
            else:
                last.setdefault(k, None)
            continue
        seen_after.add(k)
        if act == "forward":
            if last.get(k) is not None and dest != last[k]:
                moved.add(k)
            if dest in old:
                stuck.add(k)
            if pers and ck in cl_before and dest not in cl_before[ck]:
                lost.add(ck)
        elif act == "drop":
            dropped.add(k)
            drops += 1
        elif last.get(k) is not None:
            broken.add(k)
    return {"flows_before": len(last),
            "flows_continuing": len(set(last) & seen_after),
            "moved": len(moved), "dropped": len(dropped),
            "dropped_packets": drops, "broken": len(broken),
            "stuck": len(stuck), "lost_persistence": len(lost),
            "old_dests": sorted(f"{a}:{p}" for a, p in old)}


@pytest.mark.parametrize("change", CHANGES)
def test_figures_equal_a_direct_replay(workload, change):
    rep = what_if(RULES, workload, AT, change, step=STEP, horizon=HORIZON)
    want = _direct(workload, change)
    got = {k: getattr(rep, k) for k in want}
    got["old_dests"] = sorted(got["old_dests"])
    assert got == want


@pytest.mark.parametrize("change", CHANGES[:3])
def test_drain_time_and_series_equal_a_windowed_replay(workload, change):
    rep = what_if(RULES, workload, AT, change, step=STEP, horizon=HORIZON)
    net = ipvs_py.Netns(seed=0)
    net.restore(RULES)
    t = np.asarray(workload.time)
    pos, times, counts = 0, [], {}
    edge = 0.0
    applied = False
    while True:
        edge = round(edge + STEP, 9)
        hi = int(np.searchsorted(t, edge))
        net.replay(workload[pos:hi])
        pos = hi
        net.advance(edge - net.now)
        times.append(edge)
        svc = net.get_service("tcp", "192.0.2.1", 80)
        for s in net.services():
            for d in s.dests:
                counts.setdefault(f"{d.addr}:{d.port}", {})[edge] = \
                    d.activeconns + d.inactconns
        if edge == AT and not applied:
            old = [d for d in svc.dests if str(d.addr) == "10.0.1.1"][0]
            _apply(net, change)
            applied = True
        if applied:
            counts["10.0.1.1:80"][edge] = old.activeconns + old.inactconns
        if edge > t[-1] and (old.activeconns + old.inactconns == 0
                             or edge >= t[-1] + HORIZON):
            break
    drained = next((e - AT for e in times if e >= AT and
                    counts["10.0.1.1:80"].get(e) == 0), None)
    assert rep.drain_time == {"10.0.1.1:80": drained}
    assert rep.series_times == times
    assert rep.series["10.0.1.1:80"] == [counts["10.0.1.1:80"][e]
                                         for e in times]


def test_weight_zero_keeps_flows_delete_drops_them(workload):
    quiesce = what_if(RULES, workload, AT, CHANGES[0], step=STEP)
    delete = what_if(RULES, workload, AT, CHANGES[1], step=STEP)
    expire = what_if(RULES, workload, AT, CHANGES[2], step=STEP)
    assert quiesce.stuck > 0 and quiesce.dropped == 0
    assert delete.dropped == quiesce.stuck and delete.stuck == 0
    assert expire.dropped == 0 and expire.broken == quiesce.stuck
    assert quiesce.load["10.0.1.1:80"]["after"] == 0
    assert quiesce.load["10.0.1.1:80"]["after_without_change"] > 0
    assert delete.drain_time["10.0.1.1:80"] is None     # 900 s timeouts
    udp_quiesce = what_if(RULES, workload, AT, CHANGES[-2], step=STEP)
    udp_delete = what_if(RULES, workload, AT, CHANGES[-1], step=STEP)
    assert udp_quiesce.stuck == 6 and udp_quiesce.moved == 0
    assert udp_delete.moved == 6 and udp_delete.dropped == 0


def test_config_of_a_netns(workload):
    net = ipvs_py.Netns(seed=0)
    net.restore(RULES)
    net.sysctl["expire_nodest_conn"] = 1
    rules, sysctls = config_of(net)
    assert sysctls == (("expire_nodest_conn", 1),)
    a = what_if(net, workload, AT, CHANGES[1], step=STEP)
    b = what_if(RULES, workload, AT, CHANGES[1], sysctls=sysctls, step=STEP)
    assert a.as_dict() == b.as_dict()


@pytest.mark.parametrize("change, msg", [
    ("-e -t 192.0.2.1:80 -r 10.0.9.9:80 -m -w 0",
     "bad change: line 1: No such destination"),
    ("sysctl nosuch=1", "bad change: no sysctl 'nosuch'"),
    ("sysctl expire_nodest_conn", "expected sysctl NAME=INTEGER"),
    ("", "empty change"),
])
def test_bad_change_is_one_line(workload, change, msg):
    with pytest.raises(WhatIfError) as ei:
        what_if(RULES, workload, AT, change)
    assert msg in str(ei.value) and "\n" not in str(ei.value)


def test_bad_workload_and_time(workload):
    with pytest.raises(WhatIfError, match="sorted"):
        what_if(RULES, workload.take(np.arange(len(workload))[::-1]), AT,
                CHANGES[0])
    with pytest.raises(WhatIfError, match="bad time"):
        what_if(RULES, workload, -1, CHANGES[0])
    with pytest.raises(WhatIfError, match="no packets"):
        what_if(RULES, workload[:0], AT, CHANGES[0])


def test_cli_json_and_png(tmp_path, capsys):
    rules = tmp_path / "rules"
    rules.write_text(RULES)
    png = tmp_path / "w.png"
    assert cli.main(["whatif", "--rules", str(rules), "--workload",
                     "long_short_mix", "--flows", "80", "--at", "30",
                     "--step", "5", "--change", CHANGES[0], "--json",
                     "--png", str(png)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["old_dests"] == ["10.0.1.1:80"] and doc["stuck"] > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli.main(["whatif", "--rules", str(rules), "--workload",
                     "long_short_mix", "--flows", "80", "--at", "30",
                     "--change", CHANGES[0]]) == 0
    out = capsys.readouterr().out
    assert "flows stuck on a removed/quiesced dest" in out
    assert "10.0.1.1:80 drained after" in out


def test_cli_bad_change(tmp_path, capsys):
    rules = tmp_path / "rules"
    rules.write_text(RULES)
    assert cli.main(["whatif", "--rules", str(rules), "--workload",
                     "new_connections", "--at", "1", "--change",
                     "-d -t 192.0.2.1:80 -r 10.9.9.9:80"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ipvs-py: bad change: line 1: ")
    assert err.count("\n") == 1


def test_cli_from_the_live_kernel(monkeypatch, capsys, tmp_path):
    """--netns: the configuration and packet-path sysctls of the kernel
    (the netlink stand-in of tests/unit/model_kernel.py here)."""
    import sys
    import ipvs_py.netlink  # noqa: F401  (loads netlink.sync)
    import ipvs_py.ops.nsfiles as nsfiles
    from tests.unit.model_kernel import ModelKernel
    kern = ipvs_py.Netns(seed=3)
    kern.restore(RULES)
    kern.sysctl["expire_nodest_conn"] = 1
    files = {f"/proc/sys/net/ipv4/vs/{n}": f"{kern.sysctl[n]}\n"
             for n in nsfiles.PACKET_PATH_SYSCTLS}
    monkeypatch.setattr(sys.modules["ipvs_py.netlink.sync"], "IPVSConnection",
                        lambda ns: ModelKernel(kern))
    monkeypatch.setattr(nsfiles, "read_in_netns",
                        lambda ns, paths: {p: files[p] for p in paths})
    argv = ["whatif", "--netns", "lb", "--workload", "long_short_mix",
            "--flows", "80", "--at", "30", "--step", "5", "--json",
            "--change", "-d -t 192.0.2.1:80 -r 10.0.1.1:80"]
    assert cli.main(argv) == 0
    live = json.loads(capsys.readouterr().out)
    rules = tmp_path / "rules"
    rules.write_text(RULES)
    assert cli.main(["whatif", "--rules", str(rules)] + argv[3:] +
                    ["--change", "sysctl expire_nodest_conn=1"]) == 0
    local = json.loads(capsys.readouterr().out)
    for k in ("moved", "dropped", "broken", "stuck", "drain_time", "load"):
        assert live[k] == local[k]
    assert live["dropped"] == 0          # expire_nodest_conn=1 came along



def test_dest_names_stay_apart_across_services():
    rules = ("-A -t 192.0.2.1:53 -s rr\n-a -t 192.0.2.1:53 -r 10.0.1.1:53 -m\n"
             "-A -u 192.0.2.1:53 -s rr\n-a -u 192.0.2.1:53 -r 10.0.1.1:53 -m\n"
             "-a -u 192.0.2.1:53 -r 10.0.1.2:53 -m\n")
    w = generators.new_connections(20, rate=10.0, proto="udp",
                                   vips=(("192.0.2.1", 53),))
    rep = what_if(rules, w, 1.0, "-e -u 192.0.2.1:53 -r 10.0.1.1:53 -m -w 0")
    assert set(rep.series) == {"10.0.1.1:53 of TCP 192.0.2.1:53",
                               "10.0.1.1:53 of UDP 192.0.2.1:53",
                               "10.0.1.2:53"}
    assert rep.old_dests == ["10.0.1.1:53 of UDP 192.0.2.1:53"]


def test_cli_pcap(tmp_path, capsys):
    """--pcap: a capture of three long flows to one service; deleting one
    of its dests at t=5 drops the packets of the flows it served."""
    import dpkt
    from tests.ops.pcaps import write_tcp_pcap
    pkts = []
    for i in range(3):
        c = f"198.18.0.{i + 1}"
        pkts.append((1000.0 + i / 10, c, 40000, "192.0.2.1", 80,
                     dpkt.tcp.TH_SYN))
        pkts += [(1000.0 + t + i / 10, c, 40000, "192.0.2.1", 80,
                  dpkt.tcp.TH_ACK) for t in range(1, 10)]
    cap = tmp_path / "c.pcap"
    write_tcp_pcap(cap, sorted(pkts))
    rules = tmp_path / "rules"
    rules.write_text(RULES)
    assert cli.main(["whatif", "--rules", str(rules), "--pcap", str(cap),
                     "--at", "5", "--json", "--change",
                     "-d -t 192.0.2.1:80 -r 10.0.1.1:80"]) == 0
    doc = json.loads(capsys.readouterr().out)
    served = doc["load"]["10.0.1.1:80"]["before"]
    assert served >= 1 and doc["flows_before"] == 3
    assert doc["dropped"] == served and doc["dropped_packets"] == 5 * served   # t = 5..9
