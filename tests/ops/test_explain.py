"""ipvs-py explain: exact text for a small scenario, the JSON schema, the
scheduler state each step reports, bad input, the CLI."""
import json

import jsonschema
import pytest

import ipvs_py
from ipvs_py import cli
from ipvs_py.ops.explain import EXPLAIN_SCHEMA, ExplainError

RULES = """\
-A -t 10.0.0.1:80 -s wrr
-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 3
-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 1
-A -t 10.0.0.2:443 -s sh -p 300
-a -t 10.0.0.2:443 -r 10.0.1.1:443 -m
-a -t 10.0.0.2:443 -r 10.0.1.2:443 -m
"""


@pytest.fixture
def net():
    n = ipvs_py.Netns(seed=1)
    n.restore(RULES)
    return n


def test_text_exact_for_a_wrr_service(net):
    ex = net.explain("tcp", "198.18.0.1", 40000, "10.0.0.1", 80)
    assert ex.text() == """\
packet    TCP 198.18.0.1:40000 -> 10.0.0.1:80 flags S at t=0s
conn      no connection for this client address and port
service   proto_addr_port ran
          matched by proto_addr_port: TCP 10.0.0.1:80 (scheduler wrr)
scheduler wrr: the next dest after the last one chosen with weight >= the \
current weight cw (cw drops by di at the end of each pass)
          before: last list head, cw 1, mw 3, di 1
            dest                   weight  active  inact overhead    score  flags
          * 10.0.1.2:80                 1       0      0        0        -
            10.0.1.1:80                 3       0      0        0        -
          chose 10.0.1.2:80
          after: last 10.0.1.2:80, cw 1, mw 3, di 1
conn      new connection 0 to 10.0.1.2:80
verdict   forward to 10.0.1.2:80: new connection (conn 0, SYN_RECV, \
expires in 60 s)
"""
    assert ex.dest == ("10.0.1.2", 80)
    ex2 = net.explain("tcp", "198.18.0.1", 40000, "10.0.0.1", 80, "A")
    assert ex2.text().splitlines()[1:] == [
        "conn      existing connection 0 to 10.0.1.2:80, SYN_RECV, "
        "expires in 60 s",
        "verdict   forward to 10.0.1.2:80: existing connection (conn 0, "
        "ESTABLISHED, expires in 900 s)"]


def test_text_exact_for_persistence(net):
    net.explain("tcp", "198.18.0.1", 40000, "10.0.0.2", 443)
    net.advance(5)
    ex = net.explain("tcp", "198.18.0.1", 40001, "10.0.0.2", 443)
    assert ex.text().splitlines()[4:] == [
        "persist   template 0 for this client -> 10.0.1.2:443, expires in "
        "295 s, controls 1 connection(s)",
        "conn      new connection 2 to 10.0.1.2:443 under template 0",
        "verdict   forward to 10.0.1.2:443: new connection (conn 2, "
        "SYN_RECV, expires in 60 s)"]
    doc = ex.as_dict()
    assert doc["persistence"] == {
        "template": 0, "dest": {"address": "10.0.1.2", "port": 443},
        "expires_in": 295.0, "controls": 1, "outcome": "used",
        "timeout": None}
    assert doc["scheduler"] is None


def test_json_validates_and_round_trips(net):
    for args in (("tcp", "198.18.0.1", 1, "10.0.0.1", 80),
                 ("tcp", "198.18.0.1", 1, "10.0.0.1", 80, "A"),
                 ("tcp", "198.18.0.1", 2, "10.0.0.2", 443),
                 ("udp", "198.18.0.1", 2, "10.0.0.9", 53),
                 ("tcp", "198.18.0.1", 3, "10.0.0.1", 80, "A")):
        doc = net.explain(*args).as_dict()
        jsonschema.validate(doc, EXPLAIN_SCHEMA)
        assert json.loads(json.dumps(doc)) == doc
    assert doc["verdict"]["action"] == "pass"
    assert doc["connection"]["found"] is False


def test_wrr_position_is_the_schedulers_own(net):
    svc = net.get_service("tcp", "10.0.0.1", 80)
    for port in range(1, 9):
        before = (svc.sched_data.cw, svc.sched_data.mw, svc.sched_data.di)
        sd = net.explain("tcp", "198.18.0.1", port, "10.0.0.1", 80) \
            .as_dict()["scheduler"]
        st = sd["state_before"]
        assert (st["cw"], st["mw"], st["di"]) == before
        assert sd["state_after"]["cw"] == svc.sched_data.cw


def test_wlc_rows_are_the_dest_counters():
    net = ipvs_py.Netns(seed=1)
    net.restore("-A -t 10.0.0.1:80 -s wlc\n"
                "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1\n"
                "-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 4 -x 3\n")
    for port in range(1, 7):
        net.packet("tcp", "198.18.0.1", port, "10.0.0.1", 80, "S")
    net.packet("tcp", "198.18.0.1", 1, "10.0.0.1", 80, "A")
    want = {(str(d.addr), d.activeconns, d.inactconns, d.is_overloaded()
             if hasattr(d, "is_overloaded") else bool(d.flags & 2))
            for d in net.get_service("tcp", "10.0.0.1", 80).dests}
    sd = net.explain("tcp", "198.18.0.2", 9, "10.0.0.1", 80) \
        .as_dict()["scheduler"]
    got = {(d["dest"]["address"], d["activeconns"], d["inactconns"],
            d["overloaded"]) for d in sd["dests"]}
    assert got == want
    for d in sd["dests"]:
        assert d["overhead"] == d["activeconns"] * 256 + d["inactconns"]
        assert d["score"] == pytest.approx(d["overhead"] / d["weight"],
                                           abs=1e-4)
        if d["overloaded"]:
            assert not d["chosen"]


def test_sh_slot_is_the_table_entry():
    net = ipvs_py.Netns(seed=1)
    net.restore("-A -t 10.0.0.1:80 -s sh\n" + "".join(
        f"-a -t 10.0.0.1:80 -r 10.0.1.{i}:80 -m\n" for i in range(1, 6)))
    svc = net.get_service("tcp", "10.0.0.1", 80)
    for c in range(1, 20):
        sd = net.explain("tcp", f"198.18.0.{c}", 1000, "10.0.0.1", 80) \
            .as_dict()["scheduler"]
        d = svc.sched_data[sd["slot"]["index"]]     # the Python twin's table
        assert sd["slot"]["dest"] == {"address": str(d.addr), "port": d.port}
        assert sd["chosen"] == sd["slot"]["dest"]


def test_removed_dest_with_and_without_expire_nodest_conn(net):
    net.explain("tcp", "198.18.0.1", 5, "10.0.0.1", 80)
    net.packet("tcp", "198.18.0.1", 5, "10.0.0.1", 80, "A")
    net.del_dest(("tcp", "10.0.0.1", 80), "10.0.1.2", 80)
    ex = net.explain("tcp", "198.18.0.1", 5, "10.0.0.1", 80, "A")
    assert ex.action == "drop"
    assert ex.as_dict()["connection"]["outcome"] == "dropped_nodest"
    net.sysctl["expire_nodest_conn"] = 1
    ex = net.explain("tcp", "198.18.0.1", 5, "10.0.0.1", 80, "A")
    assert ex.as_dict()["connection"]["outcome"] == "expired_nodest"
    assert ex.action == "pass"      # an ACK may not start a new conn
    assert "may not create a connection" in ex.text()


def test_quiescent_template_is_refused(net):
    net.explain("tcp", "198.18.0.1", 1, "10.0.0.2", 443)
    dest = net.get_service("tcp", "10.0.0.2", 443).dests[0]
    net.edit_dest(("tcp", "10.0.0.2", 443), "10.0.1.2", 443, weight=0,
                  fwd_method="masq")
    net.sysctl["expire_quiescent_template"] = 1
    doc = net.explain("tcp", "198.18.0.1", 2, "10.0.0.2", 443).as_dict()
    assert doc["persistence"]["outcome"] == "invalid_quiescent"
    # sh without sh-fallback: the client's slot holds the quiesced dest
    assert doc["verdict"]["action"] == "drop"
    assert doc["scheduler"]["slot"]["dest"] == {"address": str(dest.addr),
                                                "port": 443}
    assert doc["scheduler"]["notes"][-1].endswith("no fallback, no dest")


def test_python_scheduler_notes_its_draws():
    net = ipvs_py.Netns(seed=1)
    net.restore("-A -u 10.0.0.3:53 -s twos\n"
                "-a -u 10.0.0.3:53 -r 10.0.1.1:53 -m\n"
                "-a -u 10.0.0.3:53 -r 10.0.1.2:53 -m -w 2\n")
    sd = net.explain("udp", "198.18.0.1", 5, "10.0.0.3", 53) \
        .as_dict()["scheduler"]
    assert sd["engine"] == "python" and sd["name"] == "twos"
    assert sd["notes"][0].startswith("draws ")
    assert len(sd["dests"]) == 2


def test_many_dests_fit_the_trace():
    net = ipvs_py.Netns(seed=1)
    net.restore("-A -t 10.0.0.1:80 -s lc\n" + "".join(
        f"-a -t 10.0.0.1:80 -r 10.1.{i >> 8}.{i & 255}:80 -m\n"
        for i in range(1, 301)))
    doc = net.explain("tcp", "198.18.0.1", 1, "10.0.0.1", 80).as_dict()
    assert doc["trace_lost"] == 0 and len(doc["scheduler"]["dests"]) == 300


@pytest.mark.parametrize("args, msg", [
    (("icmp", "1.1.1.1", 1, "10.0.0.1", 80), "bad protocol 'icmp'"),
    (("tcp", "nohost", 1, "10.0.0.1", 80), "bad client address 'nohost'"),
    (("tcp", "1.1.1.1", 0, "10.0.0.1", 80), "bad client port 0"),
    (("tcp", "1.1.1.1", 1, "10.0.0.1", 70000), "bad VIP port 70000"),
    (("tcp", "1.1.1.1", 1, "2001:db8::1", 80), "different address families"),
    (("tcp", "1.1.1.1", 1, "10.0.0.1", 80, "Q"), "bad flags 'Q'"),
])
def test_bad_input_is_one_line_and_changes_nothing(net, args, msg):
    with pytest.raises(ExplainError) as ei:
        net.explain(*args)
    assert msg in str(ei.value) and "\n" not in str(ei.value)
    assert net.conn_rows() == []


def test_cli_rules_file_text_and_json(tmp_path, capsys):
    rules = tmp_path / "rules"
    rules.write_text(RULES)
    assert cli.main(["explain", "--rules", str(rules), "tcp",
                     "198.18.0.1:40000", "10.0.0.1:80"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == ("verdict   forward to 10.0.1.2:80: new "
                                    "connection (conn 0, SYN_RECV, expires "
                                    "in 60 s)")
    assert cli.main(["explain", "--rules", str(rules), "--json", "tcp",
                     "198.18.0.1:40000", "10.0.0.2:443"]) == 0
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, EXPLAIN_SCHEMA)
    assert doc["persistence"]["outcome"] == "created"


@pytest.mark.parametrize("argv, msg", [
    (["tcp", "198.18.0.1:1", "10.0.0.1"], "bad VIP '10.0.0.1'"),
    (["tcp", "host:1", "10.0.0.1:80"], "bad client 'host:1'"),
    (["gre", "198.18.0.1:1", "10.0.0.1:80"], "bad protocol 'gre'"),
])
def test_cli_bad_input(tmp_path, capsys, argv, msg):
    rules = tmp_path / "rules"
    rules.write_text(RULES)
    assert cli.main(["explain", "--rules", str(rules)] + argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ipvs-py: ") and msg in err


def test_cli_bad_rules_file(tmp_path, capsys):
    rules = tmp_path / "rules"
    rules.write_text("-A -t 10.0.0.1:80 -s nosuch\n")
    assert cli.main(["explain", "--rules", str(rules), "tcp",
                     "198.18.0.1:1", "10.0.0.1:80"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"ipvs-py: {rules}:1: ") and err.count("\n") == 1


def test_cli_live_kernel_counts_and_entries(monkeypatch, capsys):
    """--netns: the model starts from the kernel's dests and their
    ActiveConn/InActConn (lc then avoids the loaded one) and lists the
    kernel's entries of the client.  The kernel is the netlink stand-in
    of tests/unit/model_kernel.py over a namespace with live conns."""
    import sys
    import ipvs_py.netlink  # noqa: F401  (loads netlink.sync)
    import ipvs_py.ops.nsfiles as nsfiles
    nlsync = sys.modules["ipvs_py.netlink.sync"]  # the name is a function
    from tests.unit.model_kernel import ModelKernel
    kern = ipvs_py.Netns(seed=3)
    kern.restore("-A -t 10.0.0.1:80 -s lc\n"
                 "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m\n"
                 "-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m\n")
    kern.edit_dest(("tcp", "10.0.0.1", 80), "10.0.1.2", 80, weight=0,
                   fwd_method="masq")
    for port in (1, 2, 3):          # all to 10.0.1.1 while .2 is quiesced
        kern.packet("tcp", "198.18.0.9", port, "10.0.0.1", 80, "S")
        kern.packet("tcp", "198.18.0.9", port, "10.0.0.1", 80, "A")
    kern.edit_dest(("tcp", "10.0.0.1", 80), "10.0.1.2", 80, weight=1,
                   fwd_method="masq")
    monkeypatch.setattr(nlsync, "IPVSConnection", lambda ns: ModelKernel(kern))
    kern.sysctl["expire_nodest_conn"] = 1
    files = {"/proc/net/ip_vs_conn": kern.proc_ip_vs_conn()}
    files.update({f"/proc/sys/net/ipv4/vs/{n}": f"{kern.sysctl[n]}\n"
                  for n in nsfiles.PACKET_PATH_SYSCTLS})
    monkeypatch.setattr(nsfiles, "read_in_netns",
                        lambda ns, paths: {p: files[p] for p in paths})
    assert cli.main(["explain", "--netns", "lb", "--json", "tcp",
                     "198.18.0.9:4", "10.0.0.1:80"]) == 0
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, EXPLAIN_SCHEMA)
    rows = {d["dest"]["address"]: (d["activeconns"], d["overhead"])
            for d in doc["scheduler"]["dests"]}
    assert rows == {"10.0.1.1": (3, 768), "10.0.1.2": (0, 0)}
    assert doc["verdict"]["dest"] == {"address": "10.0.1.2", "port": 80}
    assert sorted(c["client"]["port"] for c in doc["kernel_entries"]) == \
        [1, 2, 3]
    assert doc["steps"][-4].startswith("note      from the live kernel")
    seen = {}
    real = ipvs_py.Netns.explain

    def spy(self, *a, **kw):
        seen["expire_nodest_conn"] = self.sysctl["expire_nodest_conn"]
        return real(self, *a, **kw)
    monkeypatch.setattr(ipvs_py.Netns, "explain", spy)
    # a flow the kernel already holds: its entry decides, and it is said
    assert cli.main(["explain", "--netns", "lb", "tcp", "198.18.0.9:2",
                     "10.0.0.1:80", "--flags", "A"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "kernel    the kernel already has this flow's connection: it "
        "forwards to 10.0.1.1:80 (the model's answer above is what a new "
        "connection would get)")
    assert seen == {"expire_nodest_conn": 1}     # the kernel's sysctl


def test_cli_pcap_first_makes_the_connection(tmp_path, capsys):
    """--pcap: the capture is replayed first, so its connection exists."""
    import dpkt
    from tests.ops.pcaps import write_tcp_pcap
    cap = tmp_path / "c.pcap"
    write_tcp_pcap(cap, [(1.0, "198.18.0.1", 40000, "10.0.0.1", 80,
                          dpkt.tcp.TH_SYN)])
    rules = tmp_path / "rules"
    rules.write_text(RULES)
    assert cli.main(["explain", "--rules", str(rules), "--pcap", str(cap),
                     "--flags", "A", "tcp", "198.18.0.1:40000",
                     "10.0.0.1:80"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == ("conn      existing connection 0 to 10.0.1.2:80, "
                      "SYN_RECV, expires in 60 s")
