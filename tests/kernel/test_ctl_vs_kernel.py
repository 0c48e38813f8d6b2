"""Differential test: the control-plane model against real IPVS (Debian 6.1).

One boot.  The guest restores N generated rule sets with ``ipvsadm -R``
(after ``ipvsadm -C``), captures every text after each, then runs a list
of invalid commands one by one on top of a base set and records ipvsadm's
exit code and message.  The host feeds the same rules to
``Netns(kernel="6.1")`` and compares byte for byte:

* ``ipvsadm -Ln`` plain, --stats, --rate, --thresholds, --persistent-conn,
  ``ipvsadm -S -n``, /proc/net/ip_vs_stats: exact;
* /proc/net/ip_vs: exact too, once the model's ``svc_salt`` (bits 8..15 of
  the kernel's netns_ipvs pointer, which the 6.1 service hash mixes in) is
  set to the one value that reproduces every capture of the boot; the test
  fails if no salt fits all of them;
* /proc/sys/net/ipv4/vs/*: names and values (sync_qlen_max depends on the
  guest's free memory);
* invalid commands: ipvsadm fails and the model raises RuleError with the
  same message, and the state afterwards is the base state.
"""
from __future__ import annotations

import pathlib
import random
import shlex

import pytest

import ipvs_py
from tests.rulegen import rule_set

pytestmark = pytest.mark.kernel_vm

N_SETS = 8
LINES = 60
SEED = 20261124

SETS = [rule_set(random.Random(SEED + i), LINES) for i in range(N_SETS)]

# Hand-written syntax variety for the parser (popt forms, inet_aton forms,
# service names, optional -p argument, -6 fwmark, edits, trash revival).
SYNTAX = """\
ipvsadm -A -t 10.1:http -s rr
--add-service --udp-service=10.0.0.2:domain --scheduler wrr --persistent
-A --tcp-service 0x0a000003:https -srr -p 100 -M 255.255.0.0
-a -t 10.1:80 -r 10.2.0.1:8080 -mw3
--add-server --tcp-service 10.0.0.1:80 --real-server=10.2.0.2 --gatewaying
-a -t 10.0.0.1:80 -r 10.2.0.3 -i --tun-type=gue --tun-port=7777 --tun-remcsum
-a -t 10.0.0.1:80 -r 10.2.0.4 --ipip --tun-type gre --tun-csum
-a -t 10.0.0.1:80 -r [2001:db8::44]:80 -i
-A -f 77 -6 -s mh -b mh-fallback -p 20 -M 48
-a -f 77 -6 -r 2001:db8::9 -m -w 0
-a -f 77 -6 -r [2001:db8::a]:99 -m -x 10
-E -t 10.0.0.1:80 -s sh -b sh-port,sh-fallback
-e -t 10.0.0.1:80 -r 10.2.0.2:80 -g -w 7 -x 100 -y 20
-d -t 10.0.0.1:80 -r 10.2.0.1:8080
-a -t 10.0.0.1:80 -r 10.2.0.1:8080 -m -w 9
-A -u 10.0.0.9:0 -s lblcr -p 5 -o --pe sip
-a -u 10.0.0.9:0 -r 10.3.0.1 -m
-D -u 10.0.0.9:0
-A -u 10.0.0.9:0 -s dh -p 5
-a -u 10.0.0.9:0 -r 10.3.0.1 -g
-A --sctp-service [2001:db8::1]:3868 -s fo -p 7 --pe sip
-a --sctp-service [2001:db8::1]:3868 -r [2001:db8::2]:3868 -m -w 65536
-A -f 4294967295 -s none
-a -f 4294967295 -r 10.4.0.1 -g
-A -t 200.0.0.1:80 -s nq
-A -t 100.0.0.1:80 -s sed
-A -t 10.0.0.100:80 -s lblc
-A -t 150.0.0.1:80 -s ovf
-A -t 250.0.0.1:80 -s lc
""".splitlines()
SETS.append(SYNTAX)
N_SETS += 1

BASE = """\
-A -t 10.0.0.1:80 -s rr
-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 2
-A -u [2001:db8::1]:53 -s wrr
-a -u [2001:db8::1]:53 -r [2001:db8::10]:53 -m
-A -f 5 -s sh
"""

# Each case runs alone on top of BASE, in the guest and in the model; most
# are refused (the comments say why), a few probe ipvsadm's limits.
CASES = [
    "-A -t 10.0.0.1:80 -s rr",                       # duplicate service
    "-A -t 10.0.0.2:80 -s nosuch",                   # unknown scheduler
    "-A -t 10.0.0.2:80 -s twos",                     # not built on Debian 6.1
    "-A -t 10.0.0.2:80 -s rr --pe nosuch",           # unknown pe
    "-D -t 10.9.9.9:80",                             # missing service
    "-E -t 10.9.9.9:80 -s rr",
    "-a -t 10.9.9.9:80 -r 10.0.1.9:80 -m",           # service not defined
    "-a -u 10.0.0.1:80 -r 10.0.1.9:80 -m",
    "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m",           # dest exists
    "-e -t 10.0.0.1:80 -r 10.0.1.99:80 -m",          # no such dest
    "-d -t 10.0.0.1:80 -r 10.0.1.99:80",
    "-a -t 10.0.0.1:80 -r 224.0.0.1:80 -m",          # not unicast
    "-a -t 10.0.0.1:80 -r 0.0.0.0:80 -m",
    "-a -t 10.0.0.1:80 -r 255.255.255.255:80 -m",
    "-a -u [2001:db8::1]:53 -r [ff02::1]:53 -m",
    "-a -u [2001:db8::1]:53 -r [fe80::1]:53 -m",
    "-a -u [2001:db8::1]:53 -r [::ffff:10.0.0.1]:53 -m",
    "-a -t 10.0.0.1:80 -r 10.0.1.5:80 -m -x 10 -y 20",  # ERANGE
    "-a -t 10.0.0.1:80 -r [2001:db8::5]:80 -m",      # mixed af, not tunnel
    "-A -t 10.0.0.300:80",                           # bad address
    "-A -t 10.0.0.1:70000",                          # port out of range
    "-A -t 80",
    "-a -t 10.0.0.1:80 -r 10.0.1.5:80 -m -w 70000",  # Debian: up to INT_MAX
    "-a -t 10.0.0.1:80 -r 10.0.1.5:80 -m -w -1",
    "-a -t 10.0.0.1:80 -r 10.0.1.5:80 -m -x 2147483648",
    "-A -t 10.0.0.2:0 -s rr",                        # zero port, no -p
    "-A -t 10.0.0.2:81 -o",                          # ops only for UDP
    "-A -t 10.0.0.2:81 -x 5",                        # illegal option
    "-A -6 -f 9",                                    # -6 before -f
    "-A -f 0",
    "-A -f 4294967296",
    "-A -t 10.0.0.2:82 -s rr -b sh-port",            # flag vs scheduler
    "-A -t 10.0.0.2:82 -s rr -b bogus",
    "-A -t 10.0.0.2:82 -p 0",                        # timeout range
    "-A -t 10.0.0.2:82 -p 2678401",
    "-A -t 10.0.0.2:82 -s rr -s wrr",                # duplicate option
    "-A -t [2001:db8::2]:80 -p 60 -M 129",           # v6 prefix
    "-a -t 10.0.0.1:80 -r 10.0.1.5:80 -i --tun-type gue",
    "-a -t 10.0.0.1:80 -r 10.0.1.5:80 -m --tun-type gre",
    "-a -t 10.0.0.1:80 -r 10.0.1.5:80 -i --tun-type ipip --tun-port 5",
    "-a -t 10.0.0.1:80 -r 10.0.1.5:80 -i --tun-type gre --tun-remcsum",
    "-a -t 10.0.0.1:80 -r 10.0.1.5:80 -i --tun-type gue --tun-port 9 "
    "--tun-csum --tun-nocsum",
    "-a -t 10.0.0.1:80 -m",                          # no -r
    "-A -t 10.0.0.2:83 -s rr extra",
    "-A -E -t 10.0.0.2:83",
    "-a -t 10.0.0.1:80 -r 10.1.0.5:80 -m -w 65535",  # probes
    "-a -t 10.0.0.1:80 -r 10.1.0.5:80 -m -w 65536",
    "-a -t 10.0.0.1:80 -r 10.1.0.5:80 -m -w 2147483647",
    "-a -t 10.0.0.1:80 -r 10.1.0.5:80 -m -w 2147483648",
    "-a -t 10.0.0.1:80 -r 10.1.0.5:80 -m -x 2147483647 -y 5",
    "-A -t 10.0.0.2:84 -p 2678400 -s rr",
    "-A -u 10.0.0.2:84 -o -s rr",
    "-A -f 4294967295 -s rr",
    "-A -t 10.0.0.2:85 -s none",
    "-a -t 10.0.0.1:80 -r [2001:db8::7]:80 -i",
    "-e -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 9",
    "-d -t 10.0.0.1:80 -r 10.0.1.1:80",
    "-D -f 5",
    "-E -u [2001:db8::1]:53 -s mh -b mh-port -p 30 -M 64",
    "-A -t 127.0.0.1:86 -s rr",
    "-a -t 10.0.0.1:80 -r 127.0.0.2:80 -m",
    "-a -u [2001:db8::1]:53 -r [::1]:53 -m",
    "-a -u [2001:db8::1]:53 -r [fe80::1]:53 -i",
]

CAPTURES = {
    "Ln": "ipvsadm -Ln",
    "S": "ipvsadm -S -n",
    "stats": "ipvsadm -Ln --stats",
    "rate": "ipvsadm -Ln --rate",
    "thr": "ipvsadm -Ln --thresholds",
    "pc": "ipvsadm -Ln --persistent-conn",
    "proc": "cat /proc/net/ip_vs",
    "pstats": "cat /proc/net/ip_vs_stats",
}


def _model_text(net, kind):
    return {
        "Ln": net.list_text, "S": net.save,
        "stats": lambda: net.list_text(stats=True),
        "rate": lambda: net.list_text(rate=True),
        "thr": lambda: net.list_text(thresholds=True),
        "pc": lambda: net.list_text(persistent_conn=True),
        "proc": net.proc_ip_vs, "pstats": net.proc_ip_vs_stats,
    }[kind]()


def _heredoc(path, text):
    return f"cat > {path} <<'IPVS_PY_EOF'\n{text}IPVS_PY_EOF\n"


def GUEST_SCRIPT():
    s = ["cd \"$OUT\"", "modprobe ip_vs || exit 3"]
    # ipvsadm -C, -R, then capture; the schedulers load on first use
    for i, lines in enumerate(SETS):
        s.append(_heredoc(f"set{i}.rules", "\n".join(lines) + "\n"))
        s.append("ipvsadm -C")
        s.append(f"ipvsadm -R < set{i}.rules 2> set{i}.err; "
                 f"echo $? > set{i}.rc")
        for kind, cmd in CAPTURES.items():
            s.append(f"{cmd} > set{i}.{kind} 2>&1")
    s.append(_heredoc("base.rules", BASE))
    for j, line in enumerate(CASES):
        s.append("ipvsadm -C; ipvsadm -R < base.rules")
        s.append(f"ipvsadm {line} > case{j}.out 2> case{j}.err; "
                 f"echo $? > case{j}.rc; ipvsadm -S -n > case{j}.S")
    s.append("ipvsadm -C; ipvsadm -R < base.rules 2> base.err; "
             "echo $? > base.rc")
    s.append("ipvsadm -S -n > base.S; cat /proc/net/ip_vs > base.proc")
    # lblc/lblcr add their sysctls when loaded
    s.append("modprobe ip_vs_lblc; modprobe ip_vs_lblcr")
    s.append("for f in /proc/sys/net/ipv4/vs/*; do printf '%s\\t%s\\n' "
             "\"${f##*/}\" \"$(cat $f)\"; done > sysctl.txt")
    s.append("echo done > done.txt")
    return "\n".join(s) + "\n"


GUEST_TIMEOUT = 1200


def _models(salt):
    out = []
    for lines in SETS:
        net = ipvs_py.Netns(kernel="6.1", svc_salt=salt)
        net.restore("\n".join(lines) + "\n")
        out.append(net)
    return out


@pytest.fixture(scope="module")
def salt(guest):
    procs = [guest.text(f"set{i}.proc") for i in range(N_SETS)]
    fits = [s for s in range(256)
            if all(m.proc_ip_vs() == p for m, p in zip(_models(s), procs))]
    assert fits, "no svc_salt reproduces every /proc/net/ip_vs capture"
    return fits[0]


def test_guest_finished(guest):
    assert guest.text("done.txt").strip() == "done", guest.tail()


@pytest.mark.parametrize("i", range(N_SETS))
def test_restore_accepted(guest, i):
    assert guest.text(f"set{i}.rc").strip() == "0", guest.text(f"set{i}.err")
    assert guest.text(f"set{i}.err") == ""


@pytest.mark.parametrize("kind", sorted(CAPTURES))
@pytest.mark.parametrize("i", range(N_SETS))
def test_texts_identical(guest, salt, i, kind):
    net = _models(salt)[i]
    assert _model_text(net, kind) == guest.text(f"set{i}.{kind}")


def test_sysctls(guest):
    net = ipvs_py.Netns(kernel="6.1")
    real = dict(line.split("\t", 1)
                for line in guest.text("sysctl.txt").splitlines())
    assert sorted(real) == sorted(net.sysctl)
    for name, value in real.items():
        if name == "sync_qlen_max":
            continue
        assert net.sysctl.text(name).rstrip("\n").replace("\t", " ") == \
            value.replace("\t", " "), name


@pytest.mark.parametrize("j", range(len(CASES)))
def test_case_like_ipvsadm(guest, j):
    """Accepted by the model iff accepted by ipvsadm + the kernel; then the
    same state; else the same message and no change at all."""
    line = CASES[j]
    rc = int(guest.text(f"case{j}.rc"))
    err = guest.text(f"case{j}.err").strip().splitlines()
    net = ipvs_py.Netns(kernel="6.1")
    net.restore(BASE)
    before = net.save()
    try:
        net.restore(line + "\n")
    except ipvs_py.RuleError as exc:
        assert rc != 0, f"model refused {line!r}: {exc.message}"
        assert net.save() == before
        # ipvsadm prints its own message or libipvs' strerror text; the
        # model's message starts with the same words (it may add the errno
        # name and the reason)
        assert err, "ipvsadm printed nothing"
        assert exc.message.startswith(err[0].strip()), (err, exc.message)
    else:
        assert rc == 0, f"model accepted {line!r}; ipvsadm: {err}"
    assert net.save() == guest.text(f"case{j}.S")


def test_state_after_invalid(guest, salt):
    net = ipvs_py.Netns(kernel="6.1", svc_salt=salt)
    net.restore(BASE)
    assert guest.text("base.S") == net.save()
    assert guest.text("base.proc") == net.proc_ip_vs()
