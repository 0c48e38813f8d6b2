"""``ipvs-py tune`` end to end on small workloads, and its bad-input
errors (one line on stderr, exit status != 0)."""
import csv
import json
import socket

import dpkt
import pytest

from ipvs_py.cli import main

PNG = b"\x89PNG\r\n\x1a\n"
SMALL = ["--conns", "3000", "--chunks", "4", "--timing-rows", "2000"]


def run(capsys, *argv):
    rc = main(["tune", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_end_to_end_outputs(capsys, tmp_path):
    rc, out, err = run(capsys, *SMALL, "--lfactor=-2,0,2",
                       "--csv", str(tmp_path / "t.csv"),
                       "--json", str(tmp_path / "t.json"),
                       "--plots", str(tmp_path / "png"),
                       "--memory-budget", "1G")
    assert rc == 0, err
    rows = list(csv.DictReader(open(tmp_path / "t.csv")))
    assert [int(r["lfactor"]) for r in rows] == [-2, 0, 2]
    assert all(int(r["conns"]) == 3000 for r in rows)
    assert [int(r["buckets"]) for r in rows] == sorted(
        (int(r["buckets"]) for r in rows), reverse=True)
    doc = json.load(open(tmp_path / "t.json"))
    assert doc["workload"]["generator"] == "new_connections"
    assert doc["workload"]["n_conns"] == 3000
    assert doc["workload"]["packets"] == 9000
    rec = doc["recommendation"]
    assert rec["rule"] == "cheapest lookup within the memory budget"
    pick = doc["rows"][rec["index"]]
    assert pick["lookup_ns"] == min(r["lookup_ns"] for r in doc["rows"])
    line = f"sysctl -w net.ipv4.vs.conn_lfactor={pick['lfactor']}"
    assert line in rec["apply"] and line in out
    for name in ("chain-lengths.png", "memory-vs-lookup.png",
                 "table-size.png"):
        data = (tmp_path / "png" / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000
    assert "Recommended" in out and "Plots:" in out


def test_generator_with_params_and_no_target(capsys):
    rc, out, err = run(capsys, "--workload", "zipf", "-p", "n_packets=4000",
                       "-p", "n_flows=500", "-p", "s=1.2", "--lfactor=0",
                       "--chunks", "2", "--timing-rows", "500")
    assert rc == 0, err
    assert "zipf, 4,000 packets" in out
    assert "Give --memory-budget" in out


def test_unmet_target_exits_1(capsys):
    rc, out, err = run(capsys, *SMALL, "--lfactor=8", "--max-chain", "0.01")
    assert rc == 1 and "No recommendation" in out


def test_kernel_61_sweeps_bits_and_says_no_lfactor(capsys):
    rc, out, err = run(capsys, *SMALL, "--kernel", "6.1", "--bits", "10,12",
                       "--max-chain", "100")
    assert rc == 0, err
    assert "Kernel 6.1 has no conn_lfactor" in out
    assert "options ip_vs conn_tab_bits=10" in out
    assert "sysctl -w" not in out


def _pcap(path, n):
    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f)
        for i in range(n):
            tcp = dpkt.tcp.TCP(sport=20000 + i, dport=80, flags=dpkt.tcp.TH_SYN,
                               off=5)
            ip = dpkt.ip.IP(src=socket.inet_aton(f"198.18.{i >> 8}.{i & 255}"),
                            dst=socket.inet_aton("192.0.2.10"), p=6, data=tcp)
            ip.len = 20 + len(bytes(tcp))
            w.writepkt(bytes(dpkt.ethernet.Ethernet(
                src=b"\x02" * 6, dst=b"\x04" * 6, data=ip)), ts=i * 1e-3)
        w.writepkt(b"\x00" * 10, ts=n * 1e-3)          # truncated frame


def test_pcap_workload(capsys, tmp_path):
    _pcap(tmp_path / "c.pcap", 500)
    rc, out, err = run(capsys, "--pcap", str(tmp_path / "c.pcap"),
                       "--lfactor=0", "--chunks", "2", "--timing-rows", "100",
                       "--json", str(tmp_path / "p.json"))
    assert rc == 0, err
    assert "501 frames: 500 packets, skipped 1 (truncated 1)" in out
    doc = json.load(open(tmp_path / "p.json"))
    assert doc["rows"][0]["conns"] == 500


@pytest.mark.parametrize("argv, message", [
    (["--workload", "nope"], "unknown workload 'nope'"),
    (["--workload", "zipf", "-p", "n_packets=10"], "needs n_flows"),
    (["--workload", "zipf", "-p", "n_packets=10", "-p", "n_flows=5",
      "-p", "bogus=1"], "has no parameter 'bogus'"),
    (["-p", "n_conns"], "expected KEY=VALUE"),
    (["--workload", "zipf", "-p", "n_packets=10", "-p", "n_flows=5",
      "-p", "s=-1"], "s must be > 0"),
    (["--lfactor=9"], "conn_lfactor 9 is outside -8..8"),
    (["--lfactor=abc"], "bad --lfactor 'abc'"),
    (["--bits", "40"], "conn_tab_bits 40 is outside 8..27"),
    (["--pcap", "/nonexistent/x.pcap"], "pcap file /nonexistent/x.pcap "
                                        "does not exist"),
    (["--rules", "/nonexistent.rules"], "cannot read rules"),
    (["--memory-budget", "lots"], "bad memory size 'lots'"),
    (["--max-chain", "0"], "--max-chain must be > 0"),
    (["--kernel", "6.1", "--lfactor=0"], "kernel 6.1 has no conn_lfactor"),
    (["--vip", "192.0.2.10"], "bad --vip"),
    (["--conns", "0"], "--conns must be >= 1"),
])
def test_bad_input_is_one_line_and_nonzero(capsys, argv, message):
    rc, out, err = run(capsys, *argv)
    assert rc != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ipvs-py tune: ") and message in lines[0]
    assert out == ""


def test_bad_rules_line_is_named(capsys, tmp_path):
    p = tmp_path / "bad.rules"
    p.write_text("-A -t 192.0.2.1:80 -s rr\n-a -t 192.0.2.1:80 -r nope\n")
    rc, out, err = run(capsys, "--rules", str(p))
    assert rc == 2 and f"{p}:2:" in err and len(err.strip().splitlines()) == 1
