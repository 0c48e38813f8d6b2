"""The harness's own tests: real IPVS in Debian's kernel, one VM boot.

The guest side is tests/kernel/guest/ipvs_basic.sh (rules input:
guest/mixed_rules.txt). What it captures is compared with the golden copies
in tests/kernel/golden/, which the model's text renderers are checked against
elsewhere. Regenerate them with

    IPVS_PY_REGEN_GOLDEN=1 python -m pytest tests/kernel/test_guest_ipvs.py

(then review `git diff tests/kernel/golden`).
"""

from __future__ import annotations

import os
import pathlib
import re
import sys

import pytest

pytestmark = pytest.mark.kernel_vm

HERE = pathlib.Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
GUEST_SCRIPT = (HERE / "guest" / "ipvs_basic.sh").read_text()
GUEST_TIMEOUT = 900

SCHEDULERS = "rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos".split()
HEADER = "IP Virtual Server version 1.2.1 (size=4096)"


# --- golden files and how each is compared -------------------------------
# exact: byte for byte. procsvc: /proc/net/ip_vs, whose service order is the
# 6.1 svc hash order, salted with the netns pointer (varies per boot): header
# exact, service blocks compared as a multiset, dests in a block in order.
# conn: /proc/net/ip_vs_conn rows without Expires, as a multiset. lnc:
# ipvsadm -Lnc without the expire column. sysctl: exact but sync_qlen_max
# (depends on free memory). saved: kept for renderers, checked loosely by
# the tests below (counters and rates depend on timing).
GOLDEN_FILES = {
    "uname_r.txt": "saved",
    "ipvsadm_version.txt": "exact",
    "schedulers.txt": "exact",
    "ipvsadm_Ln_empty.txt": "exact",
    "proc_ip_vs_empty.txt": "exact",
    "basic_ipvsadm_Ln.txt": "exact",
    "basic_ipvsadm_S_n.txt": "exact",
    "basic_proc_ip_vs.txt": "exact",
    "basic_proc_ip_vs_stats.txt": "exact",
    "basic_proc_ip_vs_conn.txt": "exact",
    "sysctl_vs.txt": "sysctl",
    "mixed_ipvsadm_Ln.txt": "exact",
    "mixed_ipvsadm_S_n.txt": "exact",
    "mixed_ipvsadm_Ln_stats.txt": "exact",
    "mixed_ipvsadm_Ln_rate.txt": "exact",
    "mixed_ipvsadm_Ln_thresholds.txt": "exact",
    "mixed_ipvsadm_Ln_persistent.txt": "exact",
    "mixed_proc_ip_vs.txt": "procsvc",
    "sched_ipvsadm_S_n.txt": "exact",
    "traffic_proc_ip_vs_conn.txt": "conn",
    "traffic_ipvsadm_Lnc.txt": "lnc",
    "traffic_ipvsadm_Ln.txt": "exact",
    "traffic_ipvsadm_Ln_stats.txt": "saved",
    "traffic_proc_ip_vs_stats.txt": "saved",
}


def _blocks(text: str) -> tuple[list[str], list[tuple[str, ...]]]:
    lines = text.splitlines()
    head, body = lines[:3], lines[3:]
    blocks: list[list[str]] = []
    for ln in body:
        if ln.startswith("  ->") and blocks:
            blocks[-1].append(ln)
        else:
            blocks.append([ln])
    return head, sorted(tuple(b) for b in blocks)


def _normalize(kind: str, text: str):
    if kind == "procsvc":
        return _blocks(text)
    if kind == "conn":
        lines = text.splitlines()
        rows = sorted(tuple(ln.split()[:6]) + (ln.split()[6] if "9C42" in ln else "",) for ln in lines[1:])
        return lines[0], rows
    if kind == "lnc":
        lines = text.splitlines()
        rows = sorted(" ".join(ln.split()[:1] + ln.split()[3:]) for ln in lines[2:])
        return lines[:2], rows
    if kind == "sysctl":
        return [ln for ln in text.splitlines() if not ln.startswith("sync_qlen_max\t")]
    return text


def test_guest_script_ran(guest):
    assert guest.returncode == 0, guest.tail()
    assert "== done" in guest.stderr, guest.tail()


def test_kernel_is_debian_6_1(guest):
    assert guest.text("uname_r.txt").startswith("6.1.")


def test_guest_python_imports_checkout(guest):
    # differential tests run the model in the guest with "$PY" (see vm.py)
    assert guest.text("guest_python.rc").strip() == "0", guest.text("guest_python.err")
    version, path = guest.lines("guest_python.txt")[:2]
    assert version == sys.version.split()[0]
    assert pathlib.Path(path).resolve().is_relative_to(HERE.parents[1])


def test_modprobe_ip_vs(guest):
    assert guest.text("modprobe_ip_vs.rc").strip() == "0"
    assert re.search(r"^ip_vs\s", guest.text("lsmod_after_ip_vs.txt"), re.M)


def test_empty_table(guest):
    assert guest.text("ipvsadm_Ln_empty.txt") == (
        HEADER + "\nProt LocalAddress:Port Scheduler Flags\n"
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
    )
    assert guest.text("proc_ip_vs_empty.txt") == (
        HEADER + "\nProt LocalAddress:Port Scheduler Flags\n"
        "  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n"
    )


def test_schedulers(guest):
    got = dict(ln.split() for ln in guest.lines("schedulers.txt"))
    assert list(got) == SCHEDULERS
    # Debian 6.1 ships every scheduler module but twos (added in 6.7)
    assert [s for s, st in got.items() if st == "ok"] == SCHEDULERS[:-1]
    assert got["twos"] == "missing"
    # and each one schedules a service
    assert all(ln.endswith(" 0") for ln in guest.lines("sched_add.txt"))
    assert len(guest.lines("sched_add.txt")) == len(SCHEDULERS) - 1


def test_basic_rules(guest):
    assert guest.text("basic_add_svc.rc").strip() == "0"
    assert guest.text("basic_add_dest.rc").strip() == "0"
    assert guest.lines("basic_ipvsadm_Ln.txt")[0] == HEADER
    assert guest.text("basic_ipvsadm_S_n.txt") == (
        "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 2\n"
    )
    proc = guest.lines("basic_proc_ip_vs.txt")
    assert proc[3] == "TCP  0A000001:0050 rr  "
    assert proc[4] == "  -> 0A000101:0050      Masq    2      0          0         "


def test_sysctls(guest):
    vals = dict(ln.split("\t", 1) for ln in guest.lines("sysctl_vs.txt"))
    assert vals["amemthresh"] == "1024"
    assert vals["conn_reuse_mode"] == "1"
    assert vals["sync_threshold"] == "3\t50"
    # 6.1 has neither the 2026 lfactor sysctls nor est_* knobs of 6.2+
    assert "conn_lfactor" not in vals and "svc_lfactor" not in vals


def test_mixed_rules_restore(guest):
    assert guest.text("mixed_restore.rc").strip() == "0", guest.text("mixed_restore.err")
    save = guest.text("mixed_ipvsadm_S_n.txt")
    # ipvsadm 1.31's -S drops -x/-y thresholds; -Ln --thresholds shows them
    assert "-x" not in save
    assert "10.0.1.2:8080                100        10" in guest.text("mixed_ipvsadm_Ln_thresholds.txt")


def test_nat_traffic(guest):
    assert guest.text("traffic_rules.rc").strip() == "0"
    assert guest.text("client1.txt") == "hello-from-rs\n", guest.text("client1.err")
    assert guest.text("client2.txt") == "hello-from-rs\n", guest.text("client2.err")
    conn = guest.lines("traffic_proc_ip_vs_conn.txt")
    assert conn[0] == "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData"
    rows = {ln.split()[2]: ln.split() for ln in conn[1:]}
    # 10.0.2.2:40001 / :40002 -> VIP 10.0.0.1:80 -> real server 10.0.1.1:80
    assert set(rows) == {"9C41", "9C42"}
    for r in rows.values():
        assert r[:2] == ["TCP", "0A000202"] and r[3:7] == ["0A000001", "0050", "0A000101", "0050"]
    assert rows["9C42"][7] == "ESTABLISHED" and 880 <= int(rows["9C42"][8]) <= 900
    assert rows["9C41"][7] in {"TIME_WAIT", "FIN_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK"}
    ln = guest.lines("traffic_ipvsadm_Ln.txt")
    assert ln[4] == "  -> 10.0.1.1:80                  Masq    2      1          1         "
    stats = guest.lines("traffic_proc_ip_vs_stats.txt")
    assert stats[2].split()[0] == "2"  # total conns (hex)


@pytest.mark.parametrize("name", sorted(GOLDEN_FILES))
def test_golden(guest, name):
    kind = GOLDEN_FILES[name]
    got = guest.text(name)
    gpath = GOLDEN / name
    if os.environ.get("IPVS_PY_REGEN_GOLDEN", "") not in ("", "0"):
        GOLDEN.mkdir(exist_ok=True)
        gpath.write_text(got)
        return
    assert gpath.is_file(), f"no golden {gpath}; regenerate with IPVS_PY_REGEN_GOLDEN=1"
    if kind == "saved":
        return
    assert _normalize(kind, got) == _normalize(kind, gpath.read_text()), f"{name} differs from golden"
