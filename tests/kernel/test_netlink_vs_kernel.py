"""The netlink bridge against Debian's real kernel IPVS (one VM boot).

The guest (guest/netlink_roundtrip.py) drives two namespaces through
ipvs_py.netlink and saves `ipvsadm -S -n` after each step; ipvsadm is the
independent witness of what our requests did to the kernel.
"""
import json

import pytest

pytestmark = pytest.mark.kernel_vm

GUEST_SCRIPT = r'''
set -e
"$PY" "$REPO/tests/kernel/guest/netlink_roundtrip.py" "$OUT" before-modprobe
modprobe ip_vs
for s in rr wrr wlc sh; do modprobe ip_vs_$s; done
ip netns add lb1
ip netns add lb2
# dests must be unicast in the namespace: with lo down every address is
# "not unicast" and the kernel answers EINVAL (ipvsadm too)
ip -n lb1 link set lo up
ip -n lb2 link set lo up
"$PY" "$REPO/tests/kernel/guest/netlink_roundtrip.py" "$OUT" main
'''


@pytest.fixture(scope="module")
def record(guest):
    assert guest.returncode == 0, guest.tail()
    return json.loads(guest.text("record.json"))


def test_added_services_as_ipvsadm_sees_them(guest, record):
    # ipvsadm 1.31's -S omits -x/-y; thresholds are checked on the
    # netlink read-back below.
    assert guest.text("lb1_after_add.txt") == (
        "-A -t 10.0.0.1:80 -s wrr\n"
        "-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -m -w 3\n"
        "-a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w 0\n"
        "-A -u 10.0.0.2:53 -s rr -p 300 -M 255.255.255.0\n"
        "-A -t [2001:db8::1]:443 -s wlc\n"
        "-a -t [2001:db8::1]:443 -r [2001:db8::10]:443 -i -w 1 --tun-type ipip\n"
        "-A -f 7 -s sh -b sh-fallback\n"
        "-a -f 7 -r 10.0.1.2:0 -g -w 0\n")


def test_read_back_fields(record):
    by_port = {(s.get("fwmark") or s.get("port")): s for s in record["services"]}
    tcp = by_port[80]
    assert (tcp["af"], tcp["protocol"], tcp["addr"], tcp["sched_name"]) == \
        (2, 6, "10.0.0.1", "wrr")
    udp = by_port[53]
    assert udp["flags"] & 1 and udp["timeout"] == 300
    assert udp["netmask"] == "255.255.255.0"
    fwm = by_port[7]
    assert fwm["fwmark"] == 7 and fwm["sched_name"] == "sh"
    assert fwm["flags"] & 0x8
    v6 = by_port[443]
    assert v6["af"] == 10 and v6["addr"] == "2001:db8::1"
    assert v6["netmask"] == 128
    dests = {d["addr"]: d for d in record["dests"]["10.0.0.1:80"]}
    assert dests["10.0.1.1"]["weight"] == 3
    assert dests["10.0.1.1"]["fwd_method"] == 0
    assert (dests["10.0.1.1"]["u_thresh"], dests["10.0.1.1"]["l_thresh"]) == (100, 10)
    assert dests["10.0.1.2"]["weight"] == 0          # not defaulted to 1
    assert dests["10.0.1.1"]["activeconns"] == 0
    assert "stats" in dests["10.0.1.1"] or "stats64" in dests["10.0.1.1"]


def test_timeouts_info_daemons(record):
    assert record["timeouts"] == {"tcp": 1000, "tcpfin": 100, "udp": 200}
    assert record["info"]["version"] == "1.2.1"
    assert record["info"]["conn_tab_size"] == 4096
    assert record["daemons"] == []


def test_edits_in_place(guest, record):
    edited = {d["addr"]: d for d in record["dests_after_edit"]}["10.0.1.1"]
    assert (edited["weight"], edited["u_thresh"], edited["l_thresh"]) == (7, 100, 10)
    text = guest.text("lb1_after_edit.txt")
    assert "-A -t 10.0.0.1:80 -s rr\n" in text
    assert "-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -m -w 7\n" in text


def test_kernel_errors_are_named_and_change_nothing(guest, record):
    assert record["duplicate_service"][:2] == ["KernelRejected", 17]     # EEXIST
    assert record["dest_of_missing_service"][:2] == ["KernelRejected", 3]  # ESRCH
    assert record["unknown_scheduler"][:2] == ["KernelRejected", 2]       # ENOENT
    assert record["delete_missing_dest"][:2] == ["KernelRejected", 2]
    assert "adding service TCP 10.0.0.1:80" in record["duplicate_service"][2]
    assert guest.text("lb1_after_errors.txt") == guest.text("lb1_after_edit.txt")


def test_deletes_and_namespaces_are_kept_apart(guest, record):
    final = guest.text("lb1_final.txt")
    assert "10.0.1.2:80" not in final.split("-A -f 7")[0]
    assert "-u 10.0.0.2:53" not in final
    assert record["lb2_services"] == []
    assert guest.text("lb2.txt") == "-A -t 10.0.0.99:80 -s wrr\n"
    assert "10.0.0.99" not in final


def test_missing_netns(record):
    assert record["missing_netns"][0] == "NetnsNotFound"
    assert "no-such-ns" in record["missing_netns"][2]


def test_family_lookup_autoloads_ip_vs(guest):
    """Debian's kernel loads ip_vs on the genl family lookup (module alias
    net-pf-16-proto-16-family-IPVS), so connecting works before modprobe.
    The "module missing" error is tested on the host, which has no IPVS
    (tests/unit/test_netlink_errors.py)."""
    before = json.loads(guest.text("before.json"))
    assert before["connect_without_module"] == "ok"
