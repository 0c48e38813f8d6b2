"""The ipvs-py command: help, hash and demo."""
import re
import subprocess
import sys

import pytest

from ipvs_py import cli


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out


def test_no_command_prints_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert "usage: ipvs-py" in capsys.readouterr().out


@pytest.mark.parametrize("argv, expected", [
    (["siphash_1u64", "0x0706050403020100"], "0x93f5f5799a932462"),
    (["siphash", "0001020304050607"], "0x93f5f5799a932462"),
    (["hsiphash_1u32", "0x03020100"], "0x88d38328"),
    (["jhash", "466f75722073636f726520616e6420736576656e207965617273206167" "6f"],
     "0x17770551"),
    (["hash_32", "1", "--bits", "8"], "0x61"),
])
def test_hash_command(capsys, argv, expected):
    assert cli.main(["hash", *argv]) == 0
    assert capsys.readouterr().out.strip() == expected


def test_hash_command_bad_input_is_one_clear_line(capsys):
    assert cli.main(["hash", "siphash_1u64", "-1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ipvs-py hash:") and "first" in err
    assert cli.main(["hash", "siphash_1u64", "1", "--key", "00"]) == 2
    assert "16 bytes" in capsys.readouterr().err


def test_demo_runs_as_a_console_script(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ipvs_py.cli", "demo",
                           "--keys", "5000", "--conns", "20000",
                           "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "siphash_2u64" in proc.stdout and "jhash_3words" in proc.stdout
    assert "batch ns/key" in proc.stdout
    # the control-plane tour: kernel texts, scheduler picks, sync plan
    assert "TCP  192.0.2.10:80 wrr" in proc.stdout
    assert "Service buckets:" in proc.stdout
    assert "10.0.1.3:8080" not in proc.stdout.split("Which real server")[1]
    assert "ipvsadm -A -t [2001:db8::10]:80 -s rr -p 300" in proc.stdout
    # the packet-path sweep: the last run's ip_vs_status counts every conn
    assert re.search(r"^Conns:\s+20000$", proc.stdout, re.M)   # rich expands tabs
    assert "20,000 new connections replayed" in proc.stdout
    # the tuning table's pick, its sysctl line, and the plots it wrote
    assert "sysctl -w net.ipv4.vs.conn_lfactor=" in proc.stdout
    assert f"Plots written to {tmp_path / 'out'}" in proc.stdout.replace(
        "\n", "")
    for name in ("chain-lengths.png", "memory-vs-lookup.png",
                 "table-size.png"):
        assert (tmp_path / "out" / name).read_bytes()[:4] == b"\x89PNG"


def test_demo_rejects_zero_keys():
    from ipvs_py.demo import run
    assert run(n_keys=0) == 2
    assert run(n_keys=10, n_conns=-1) == 2
