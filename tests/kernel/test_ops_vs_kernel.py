"""ipvs-py drain, kernel snapshot and kernel metrics on Debian's kernel.

One boot (tests/kernel/guest/ops_drain.sh): a synced configuration's
snapshot equals the model's; bad input changes nothing; with live TCP and
UDP flows in the guest's namespaces, drains end with the destination
removed and no other destination touched (cut at a deadline, or drained
to zero once a UDP flow stops and its entries time out, and a TCP drain
to zero once `ipvsadm --set` has shortened the TCP timeouts); Ctrl-C
leaves the destination at weight 0, as stated; the metrics text parses
with prometheus_client's parser.
"""
import json
import pathlib

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ipvs_py.ops import SNAPSHOT_SCHEMA
from ipvs_py.ops.snapshot import comparable

pytestmark = pytest.mark.kernel_vm
GUEST_TIMEOUT = 420
GUEST_SCRIPT = (pathlib.Path(__file__).parent / "guest" /
                "ops_drain.sh").read_text()


def js(guest, name):
    return json.loads(guest.text(name))


def rc(guest, name):
    return int(guest.text(f"{name}.rc"))


def without(text, *lines):
    out = text.splitlines()
    for line in lines:
        out.remove(line)
    return out


def test_sync_then_snapshot_equals_the_model(guest):
    assert rc(guest, "sync") == 0, guest.text("sync.err")
    kernel, model = js(guest, "snapshot_synced.out"), js(guest, "model_snapshot.out")
    jsonschema.validate(kernel, SNAPSHOT_SCHEMA)
    assert kernel["source"] == "kernel" and model["source"] == "model"
    assert comparable(kernel) == comparable(model)
    assert kernel["timeouts"] == {"tcp": 3600, "tcpfin": 100, "udp": 8}
    assert "Timeout (tcp tcpfin udp): 3600 100 8" in guest.text("ipvsadm_timeout.txt")
    assert guest.text("save_synced.out").startswith("--set 3600 100 8\n")


@pytest.mark.parametrize("name, msg", [
    ("bad_service", "no service 10.9.9.9:80"),
    ("bad_dest", "has no destination 10.0.1.9:80"),
    ("ambiguous", "names 2 services"),
    ("bad_addr", "not a numeric IP address"),
    ("bad_netns", "network namespace 'nosuch' not found"),
    ("bad_netns_snapshot", "network namespace 'nosuch' not found"),
])
def test_bad_input_is_one_line_and_changes_nothing(guest, name, msg):
    assert rc(guest, name) == 1
    err = guest.text(f"{name}.err")
    assert err.count("\n") == 1 and err.startswith("ipvs-py: ") and msg in err
    assert guest.text("save_after_bad.out") == guest.text("save_synced.out")


def test_live_snapshot_has_the_flows(guest):
    doc = js(guest, "snapshot_live.out")
    jsonschema.validate(doc, SNAPSHOT_SCHEMA)
    conns = {(c["protocol"], c["client"]["port"]): c for c in doc["connections"]}
    for p in (40001, 40002, 40003, 40004):
        assert conns[("TCP", p)]["state"] == "ESTABLISHED"
        assert conns[("TCP", p)]["virtual"] == {"address": "10.0.0.1", "port": 80}
    assert {conns[("UDP", p)]["destination"]["address"] for p in (5001, 5002)} \
        == {"10.0.1.1", "10.0.1.2"}
    tcp80 = next(s for s in doc["services"] if s["name"] == "TCP 10.0.0.1:80")
    assert [d["active_conns"] for d in tcp80["destinations"]] == [2, 2]
    assert tcp80["stats"]["conns"] == 4


def test_metrics_parse(guest):
    assert rc(guest, "metrics_live") == 0
    fam = {f.name: f for f in text_string_to_metric_families(guest.text("metrics_live.out"))}
    active = {(s.labels["service"], s.labels["destination"]): s.value
              for s in fam["ipvs_destination_active_connections"].samples}
    assert active[("TCP 10.0.0.1:80", "10.0.1.1:80")] == 2
    assert {s.labels["service"]: s.value for s in fam["ipvs_service_connections"].samples
            if s.name.endswith("_total")}["TCP 10.0.0.1:80"] == 4
    entries = sum(s.value for s in fam["ipvs_destination_connection_entries"].samples)
    assert entries == len(guest.lines("proc_conn_live.txt")) - 1
    assert fam["ipvs_services"].samples[0].value == 6


def test_drain_tcp_at_deadline_cuts_the_live_flows(guest):
    res = js(guest, "drain_tcp.out")
    assert rc(guest, "drain_tcp") == 0
    assert (res["outcome"], res["deleted"], res["cut"], res["active"]) == \
        ("deadline", True, 2, 2)
    assert res["elapsed"] >= 5
    assert without(guest.text("save_before_tcp.out"),
                   "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1") == \
        guest.text("save_after_tcp.out").splitlines()


def test_drain_udp_at_deadline_cuts_the_refreshed_flow(guest):
    res = js(guest, "drain_udp.out")
    assert (res["outcome"], res["deleted"], res["cut"]) == ("deadline", True, 1)
    assert without(guest.text("save_after_tcp.out"),
                   "-a -u 10.0.0.1:5353 -r 10.0.1.2:5353 -m -w 1") == \
        guest.text("save_after_udp.out").splitlines()


def test_drain_to_zero(guest):
    assert "10.0.1.1:5354" in guest.text("ipvsadm_5354_before.txt")
    res = js(guest, "drain_zero.out")
    assert (res["outcome"], res["deleted"], res["cut"]) == ("drained", True, 0)
    assert 0 < res["elapsed"] < 30          # the 8 s udp timeout, not the deadline
    assert without(guest.text("save_after_udp.out"),
                   "-a -u 10.0.0.1:5354 -r 10.0.1.1:5354 -m -w 1") == \
        guest.text("save_after_zero.out").splitlines()


def test_ctrl_c_leaves_weight_zero_as_stated(guest):
    assert rc(guest, "drain_int") == 130
    out = guest.text("drain_int.out")
    assert "interrupted" in out and "weight 0 (was 1)" in out
    assert "ipvsadm -e -u 10.0.0.1:5353 -r 10.0.1.1:5353 -m -w 1" in out
    after = guest.text("save_after_int.out").splitlines()
    assert after == [line.replace("-r 10.0.1.1:5353 -m -w 1", "-r 10.0.1.1:5353 -m -w 0")
                     for line in guest.text("save_after_zero.out").splitlines()]


def test_dry_run_and_text_output(guest):
    assert rc(guest, "drain_dry") == 0
    assert "ipvsadm -e -t 10.0.0.1:8080 -r 10.0.1.1:8080 -m -w 0 -x 100 -y 10" in \
        guest.text("drain_dry.out")
    assert rc(guest, "drain_text") == 0
    assert guest.text("drain_text.out").startswith("drained 10.0.1.2:0 of FWM 7 in ")
    out = guest.text("drain_text_cut.out")
    assert out.startswith("deadline reached after ")
    assert "deleted 10.0.1.1:5353 of UDP 10.0.0.1:5353 with 2 connection(s) cut" in out
    assert "expire_nodest_conn=0: their packets are dropped" in out
    assert without(guest.text("save_after_int.out"),
                   "-a -u 10.0.0.1:5353 -r 10.0.1.1:5353 -m -w 0",
                   "-a -f 7 -r 10.0.1.2:0 -m -w 2") == \
        guest.text("save_final.out").splitlines()


def test_drain_tcp_to_zero_with_short_timeouts(guest):
    before = guest.text("ipvsadm_8081_before.txt")
    rows = {line.split()[1]: line.split() for line in before.splitlines()
            if line.strip().startswith("->") and ":8081" in line}
    # one live TCP connection on each dest (rr)
    assert rows["10.0.1.1:8081"][4] == "1" and rows["10.0.1.2:8081"][4] == "1"
    assert rc(guest, "drain_tcp_zero") == 0, guest.text("drain_tcp_zero.err")
    res = js(guest, "drain_tcp_zero.out")
    assert (res["outcome"], res["deleted"], res["cut"]) == ("drained", True, 0)
    assert 0 < res["elapsed"] < 40          # the 6 s tcp timeout, not 900 s
    save = guest.text("save_before_tcp_zero.out")
    assert save.startswith("--set 6 6 8\n")
    assert without(save, "-a -t 10.0.0.1:8081 -r 10.0.1.1:8081 -m -w 1") == \
        guest.text("save_after_tcp_zero.out").splitlines()


def test_explain_reads_the_live_kernel(guest):
    from ipvs_py.ops.explain import EXPLAIN_SCHEMA
    assert rc(guest, "explain_live") == 0, guest.text("explain_live.err")
    doc = js(guest, "explain_live.out")
    jsonschema.validate(doc, EXPLAIN_SCHEMA)
    # the rr service's dests with the kernel's counts (two flows each)
    rows = {d["dest"]["address"]: d["activeconns"]
            for d in doc["scheduler"]["dests"]}
    assert rows == {"10.0.1.1": 2, "10.0.1.2": 2}
    entry = [c for c in doc["kernel_entries"]
             if c["client"]["port"] == 40001]
    assert len(entry) == 1 and entry[0]["state"] == "ESTABLISHED"
    dest = entry[0]["destination"]
    assert doc["steps"][-1] == (
        f"kernel    the kernel already has this flow's connection: it "
        f"forwards to {dest['address']}:{dest['port']} (the model's answer "
        f"above is what a new connection would get)")
