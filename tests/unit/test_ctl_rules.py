"""ipvsadm rule parsing and the all-or-nothing restore()."""
import pytest

import ipvs_py
from ipvs_py import rules


def test_short_long_and_clustered_options():
    a, b, c = (ipvs_py.Netns(seed=1) for _ in range(3))
    a.restore("-A -t 10.0.0.1:80 -s rr -p 60\n"
              "-a -t 10.0.0.1:80 -r 10.1.0.1:8080 -m -w 3")
    b.restore("--add-service --tcp-service 10.0.0.1:80 --scheduler=rr "
              "--persistent 60\n"
              "--add-server --tcp-service=10.0.0.1:80 --real-server "
              "10.1.0.1:8080 --masquerading --weight 3")
    c.restore("ipvsadm -A -t10.0.0.1:80 -srr -p60\n"
              "ipvsadm -a -t 10.0.0.1:80 -r 10.1.0.1:8080 -mw3")
    assert a.save() == b.save() == c.save()


def test_optional_persistent_argument():
    net = ipvs_py.Netns(seed=1)
    net.restore("-A -t 10.0.0.1:80 -p -s rr\n-A -t 10.0.0.2:80 -s rr -p\n")
    assert [s.timeout for s in net.services()] == [360, 360]


def test_route_and_tunnel_force_service_port():
    net = ipvs_py.Netns(seed=1)
    net.restore("-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.1.0.1:8080 -g\n"
                "-a -t 10.0.0.1:80 -r 10.1.0.2:8080 -m\n")
    assert sorted(d.port for d in net.services()[0].dests) == [80, 8080]


def test_inet_aton_forms_and_service_names():
    net = ipvs_py.Netns(seed=1)
    net.restore("-A -t 10.1:http\n-A -u 0x0a000002:domain\n")
    assert net.save() == ("-A -t 10.0.0.1:80 -s wlc\n"
                          "-A -u 10.0.0.2:53 -s wlc\n")


def test_comments_blank_lines_and_line_numbers():
    net = ipvs_py.Netns(seed=1)
    with pytest.raises(ipvs_py.RuleError) as e:
        net.restore("# a comment\n\n-A -t 10.0.0.1:80\n"
                    "-a -t 10.0.0.1:80 -r 10.1.0.1 -w 2147483648\n")
    assert e.value.line == 4
    assert e.value.message == "illegal weight specified"
    assert "line 4" in str(e.value)
    assert net.save() == ""


@pytest.mark.parametrize("line,errno_name", [
    ("-A -t 10.0.0.1:80", "EEXIST"),
    ("-D -t 10.0.0.9:80", "ESRCH"),
    ("-A -t 10.0.0.2:80 -s nope", "ENOENT"),
    ("-a -t 10.0.0.1:80 -r 10.1.0.1", "EEXIST"),
    ("-e -t 10.0.0.1:80 -r 10.1.0.9", "ENOENT"),
    ("-a -t 10.0.0.1:80 -r 224.1.1.1", "EINVAL"),
    ("-a -t 10.0.0.1:80 -r 10.1.0.3 -x 1 -y 2", "ERANGE"),
    ("-A -t 10.0.0.1", None),
    ("-A -t 10.0.0.1:80 -r 10.1.0.1", None),
])
def test_errors_change_nothing(line, errno_name):
    net = ipvs_py.Netns(seed=1)
    net.restore("-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.1.0.1\n")
    before = (net.save(), net.proc_ip_vs(), net.status())
    with pytest.raises(ipvs_py.RuleError) as e:
        net.restore("-A -t 10.0.0.5:80\n-a -t 10.0.0.5:80 -r 10.1.0.5\n"
                    + line + "\n-A -t 10.0.0.6:80\n")
    assert e.value.line == 3
    assert e.value.errno_name == errno_name
    assert (net.save(), net.proc_ip_vs(), net.status()) == before


def test_whole_file_is_checked_in_order():
    """A later line may rely on an earlier one of the same file, and a
    flush inside the file counts."""
    net = ipvs_py.Netns(seed=1)
    net.restore("-A -t 10.0.0.1:80")
    net.restore("-C\n-A -t 10.0.0.1:80 -s rr\n-D -t 10.0.0.1:80\n"
                "-A -t 10.0.0.1:80 -s sh\n")
    assert net.save() == "-A -t 10.0.0.1:80 -s sh\n"
    with pytest.raises(ipvs_py.RuleError) as e:
        net.restore("-D -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.1.0.1\n")
    assert e.value.line == 2 and e.value.errno_name == "ESRCH"
    assert net.save() == "-A -t 10.0.0.1:80 -s sh\n"


def test_refused_commands():
    net = ipvs_py.Netns()
    for line in ("-L -n", "-S", "--start-daemon master", "-h", "foo"):
        with pytest.raises(ipvs_py.RuleError):
            net.restore(line)


def test_set_timeouts_and_zero():
    net = ipvs_py.Netns()
    net.restore("--set 100 0 30\n-A -t 10.0.0.1:80\n-Z -t 10.0.0.1:80\n-Z")
    assert net.timeouts == {"tcp": 100, "tcp_fin": 120, "udp": 30}


def test_parse_line_shapes():
    op, s, d = rules.parse_line("-a -f 5 -6 -r 2001:db8::1 -m")
    assert op == "add_dest" and s.af == 10 and s.fwmark == 5
    assert (d.af, d.port, d.fwd_method) == (10, 0, 0)
    assert rules.parse_line("   ") is None
    assert rules.inet_aton("1.2.3") == 0x01020003
    assert rules.inet_aton("010.0.0.1") == 0x08000001
    assert rules.inet_aton("1.2.3.256") is None
