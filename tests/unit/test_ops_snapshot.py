"""kernel snapshot (JSON schema), /proc/net/ip_vs_conn parsing, metrics."""
import json
import pathlib

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families

import ipvs_py
from ipvs_py import cli
from ipvs_py.ops import (SNAPSHOT_SCHEMA, kernel_snapshot, model_snapshot,
                         parse_ip_vs_conn, render_metrics)
from ipvs_py.ops.snapshot import comparable

from .model_kernel import ModelKernel

GOLDEN = pathlib.Path(__file__).parents[1] / "kernel" / "golden"
RULES = """--set 1000 0 60
-A -t 10.0.0.1:80 -s wrr
-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 2
-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 3 -x 100 -y 10
-A -u 10.0.0.2:53 -s rr -p 300 -M 255.255.255.0
-a -u 10.0.0.2:53 -r 10.0.1.5:53 -g -w 1
-A -f 7 -s sh -b sh-fallback,sh-port
-a -f 7 -r 10.0.1.2:0 -g -w 1
-A -t [2001:db8::1]:443 -s wlc -p
-a -t [2001:db8::1]:443 -r [2001:db8::10]:443 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum
-A -u 10.0.0.3:53 -s rr -o
"""
# ip_vs_conn_seq_show(): IPv6 as %pI6, a template (cport 0), SIP pe data
PROC_V6 = (
    "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires "
    "PEName PEData\n"
    "TCP 2001:0db8:0000:0000:0000:0000:0000:0002 C350 "
    "2001:0db8:0000:0000:0000:0000:0000:0001 01BB "
    "2001:0db8:0000:0000:0000:0000:0000:0010 01BB ESTABLISHED     899\n"
    "TCP 2001:0db8:0000:0000:0000:0000:0000:0002 0000 "
    "2001:0db8:0000:0000:0000:0000:0000:0001 01BB "
    "2001:0db8:0000:0000:0000:0000:0000:0010 01BB NONE            359\n"
    "UDP 0A000202 1F90 0A000002 0035 0A000105 0035 UDP             "
    "299 sip call-1@host\n")


@pytest.fixture
def net():
    n = ipvs_py.Netns(kernel="6.1")
    n.restore(RULES)
    (d,) = [x for x in n.get_service("tcp", "10.0.0.1", 80).dests
            if str(x.addr) == "10.0.1.1"]
    d.activeconns, d.inactconns = 5, 2
    d.stats.conns, d.stats.inbytes, d.stats.cps = 70, 12345, 3
    return n


def test_kernel_and_model_documents_validate_and_agree(net):
    k = kernel_snapshot(ModelKernel(net), "lb1", conns=True,
                        conn_text=PROC_V6)
    m = model_snapshot(net)
    jsonschema.validate(k, SNAPSHOT_SCHEMA)
    jsonschema.validate(m, SNAPSHOT_SCHEMA)
    k.pop("connections")
    assert comparable(k) == comparable(m)
    assert k["netns"] == "lb1" and k["timeouts"] == \
        {"tcp": 1000, "tcpfin": 120, "udp": 60}
    assert [s["name"] for s in k["services"]] == [
        "TCP 10.0.0.1:80", "TCP [2001:db8::1]:443", "UDP 10.0.0.2:53",
        "UDP 10.0.0.3:53", "FWM 7"]


def test_snapshot_fields(net):
    doc = model_snapshot(net)
    by = {s["name"]: s for s in doc["services"]}
    tcp = by["TCP 10.0.0.1:80"]
    assert tcp["destinations"][0] | {"stats": None} == {
        "address": "10.0.1.1", "port": 80, "af": "inet", "forward": "masq",
        "weight": 2, "u_thresh": 0, "l_thresh": 0, "active_conns": 5,
        "inactive_conns": 2, "persistent_conns": 0, "tunnel": None,
        "stats": None}
    assert tcp["destinations"][0]["stats"]["inbytes"] == 12345
    assert by["UDP 10.0.0.2:53"]["persistent"] == 300
    assert by["UDP 10.0.0.2:53"]["netmask"] == "255.255.255.0"
    assert by["UDP 10.0.0.3:53"]["one_packet"] is True
    assert by["FWM 7"]["sched_flags"] == ["sh-fallback", "sh-port"]
    assert by["FWM 7"]["protocol"] is None and by["FWM 7"]["fwmark"] == 7
    v6 = by["TCP [2001:db8::1]:443"]
    assert v6["netmask"] == "128" and v6["persistent"] == 360
    assert v6["destinations"][0]["tunnel"] == {"type": "gue", "port": 6080,
                                               "flags": "csum"}


def test_schema_rejects_drift(net):
    doc = model_snapshot(net)
    doc["services"][0]["destinations"][0]["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SNAPSHOT_SCHEMA)


def test_parse_the_kernels_own_output():
    rows = parse_ip_vs_conn((GOLDEN / "traffic_proc_ip_vs_conn.txt").read_text())
    assert rows == [
        {"protocol": "TCP", "client": {"address": "10.0.2.2", "port": 40001},
         "virtual": {"address": "10.0.0.1", "port": 80},
         "destination": {"address": "10.0.1.1", "port": 80},
         "state": "TIME_WAIT", "expires": 117, "template": False,
         "pe_name": None, "pe_data": None},
        {"protocol": "TCP", "client": {"address": "10.0.2.2", "port": 40002},
         "virtual": {"address": "10.0.0.1", "port": 80},
         "destination": {"address": "10.0.1.1", "port": 80},
         "state": "ESTABLISHED", "expires": 898, "template": False,
         "pe_name": None, "pe_data": None}]


def test_parse_ipv6_templates_and_pe_data():
    rows = parse_ip_vs_conn(PROC_V6)
    assert rows[0]["client"] == {"address": "2001:db8::2", "port": 50000}
    assert rows[1]["template"] and rows[1]["state"] == "NONE"
    assert (rows[2]["pe_name"], rows[2]["pe_data"]) == ("sip", "call-1@host")
    with pytest.raises(ValueError, match="malformed"):
        parse_ip_vs_conn("TCP 0A000202 9C41\n")


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metrics_parse_and_aggregate(net):
    doc = kernel_snapshot(ModelKernel(net), conns=True, conn_text=PROC_V6)
    fam = families(render_metrics(doc))
    assert fam["ipvs_service_connections"].type == "counter"
    d = {(s.labels["service"], s.labels["destination"]): s.value
         for s in fam["ipvs_destination_active_connections"].samples}
    assert d[("TCP 10.0.0.1:80", "10.0.1.1:80")] == 5
    assert {s.labels["service"]: s.value for s in
            fam["ipvs_service_inactive_connections"].samples}[
        "TCP 10.0.0.1:80"] == 2
    inb = [s for s in fam["ipvs_destination_incoming_bytes"].samples
           if s.labels["destination"] == "10.0.1.1:80"]
    assert inb[0].name == "ipvs_destination_incoming_bytes_total"
    assert inb[0].value == 12345
    t = {s.labels["timeout"]: s.value for s in
         fam["ipvs_timeout_seconds"].samples}
    assert t == {"tcp": 1000, "tcpfin": 120, "udp": 60}
    # connections: counted per destination and state, templates apart
    e = {(s.labels["destination"], s.labels["state"]): s.value
         for s in fam["ipvs_destination_connection_entries"].samples}
    assert e == {("[2001:db8::10]:443", "ESTABLISHED"): 1,
                 ("10.0.1.5:53", "UDP"): 1}
    assert [s.value for s in
            fam["ipvs_service_persistence_templates"].samples] == [1]


def test_metrics_never_grow_with_connections(net):
    row = "TCP 0A000202 %04X 0A000001 0050 0A000101 0050 ESTABLISHED     899\n"
    many = "".join(row % (1024 + i) for i in range(5000))
    doc = kernel_snapshot(ModelKernel(net), conns=True, conn_text=many)
    few = kernel_snapshot(ModelKernel(net), conns=True, conn_text=row % 2000)
    assert len(render_metrics(doc).splitlines()) == \
        len(render_metrics(few).splitlines())


def test_label_values_are_escaped():
    doc = model_snapshot(ipvs_py.Netns(kernel="6.1"))
    doc["info"]["version"] = 'a"b\\c\nd'
    fam = families(render_metrics(doc))
    assert fam["ipvs_info"].samples[0].labels["version"] == 'a"b\\c\nd'


@pytest.mark.parametrize("action", ["snapshot", "metrics"])
def test_cli(net, monkeypatch, capsys, action):
    import ipvs_py.netlink as nl
    monkeypatch.setattr(nl, "IPVSConnection", lambda ns: ModelKernel(net))
    assert cli.main(["kernel", action, "--json"] if action == "snapshot"
                    else ["kernel", action]) == 0
    out = capsys.readouterr().out
    if action == "snapshot":
        jsonschema.validate(json.loads(out), SNAPSHOT_SCHEMA)
    else:
        assert "ipvs_services 5" in out


def test_cli_missing_netns_is_one_line(capsys):
    assert cli.main(["kernel", "snapshot", "--netns", "no-such-ns-x"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not found" in err
