"""Service fingerprints (_core/cfgdigest.pyx): equal exactly when the
decoded configurations are equal, on replies laid out as the kernel's
ip_vs_genl_fill_service / ip_vs_genl_fill_dest write them and on replies
captured from the 6.1 kernel."""
import dataclasses
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ipvs_py
from ipvs_py._core import load
from ipvs_py.netlink import wire
from ipvs_py.netlink.config import (DestConfig, ServiceConfig, config_of_model,
                                    dest_from_kernel, normalise_model_svc,
                                    service_from_kernel)
from ipvs_py.netlink.kernel_state import KernelState

from .test_nlattr import DEST_REPLIES, SERVICE_REPLIES

cfgdigest = load("cfgdigest")
AF_INET, AF_INET6 = 2, 10


def test_attribute_numbers_are_the_schema_wire_py_uses():
    for name, num in cfgdigest.SVC_ATTRS.items():
        assert wire.SVC_ATTR[name] == num, name
    for name, num in cfgdigest.DEST_ATTRS.items():
        assert wire.DEST_ATTR[name] == num, name


# ---------------------------------------------------------------- kernel
# Replies as the kernel writes them: the address always as 16 bytes
# (union nf_inet_addr), F_HASHED set, stats nests, every dest attribute.

def _a(name, fmt, value, table=wire.SVC_ATTR):
    return wire._nla(table[name], struct.pack(fmt, value))


def _stats(num):
    return wire._nla(num, b"".join(wire._nla(i, struct.pack("=Q", 7 * i))
                                   for i in range(1, 11)))


def _message(body, seq=5):
    payload = struct.pack("=BBH", 1, 1, 0) + body
    return struct.pack("=IHHII", 16 + len(payload), 32, 2, seq, 0) + payload


def kernel_service(sc):
    af = sc.af
    parts = [_a("af", "=H", af)]
    if sc.fwmark:
        parts.append(_a("fwmark", "=I", sc.fwmark))
    else:
        parts += [_a("protocol", "=H", sc.protocol),
                  wire._nla(wire.SVC_ATTR["addr"], sc.addr_bytes.ljust(16, b"\0")),
                  _a("port", ">H", sc.port)]
    parts.append(wire._nla(wire.SVC_ATTR["sched_name"], sc.sched_name.encode() + b"\0"))
    if sc.pe_name:
        parts.append(wire._nla(wire.SVC_ATTR["pe_name"], sc.pe_name.encode() + b"\0"))
    netmask = sc.netmask if af == AF_INET6 else \
        struct.unpack("=I", struct.pack(">I", sc.netmask))[0]
    parts += [wire._nla(wire.SVC_ATTR["flags"], struct.pack("=II", sc.flags | 2, 0xFFFFFFFF)),
              _a("timeout", "=I", sc.timeout), _a("netmask", "=I", netmask),
              _stats(wire.SVC_ATTR["stats"]), _stats(wire.SVC_ATTR["stats64"])]
    return _message(wire._nla(1, b"".join(parts)))


def kernel_dest(dc, tun=(0, 0, 0)):
    """``tun``: the tunnel fields the kernel holds for a non-tunnel dest
    (it reports them for every dest)."""
    t = DEST = wire.DEST_ATTR
    tun_type, tun_port, tun_flags = (dc.tun_type, dc.tun_port, dc.tun_flags) \
        if dc.fwd_method == 2 else tun
    parts = [wire._nla(t["addr"], dc.addr_bytes.ljust(16, b"\0")),
             _a("port", ">H", dc.port, DEST), _a("fwd_method", "=I", dc.fwd_method, DEST),
             _a("weight", "=I", dc.weight, DEST), _a("tun_type", "=B", tun_type, DEST),
             _a("tun_port", ">H", tun_port, DEST), _a("tun_flags", "=H", tun_flags, DEST),
             _a("u_thresh", "=I", dc.u_thresh, DEST), _a("l_thresh", "=I", dc.l_thresh, DEST),
             _a("active_conns", "=I", 3, DEST), _a("inact_conns", "=I", 4, DEST),
             _a("persist_conns", "=I", 5, DEST), _a("addr_family", "=H", dc.af, DEST),
             _stats(t["stats"]), _stats(t["stats64"])]
    return _message(wire._nla(2, b"".join(parts)))


def kernel_read(config, tun=(0, 0, 0)):
    """What KernelState.read computes, from replies built for ``config``:
    (fingerprints, the dest-dump requests, the config decoded the
    dict way, as config_of_kernel did before fingerprints)."""
    dump = b"".join(kernel_service(sc) for sc, _ in config.values())
    keys, requests, records, payloads = cfgdigest.kernel_services(dump)
    dumps = [b"".join(kernel_dest(dc, tun) for dc in dests.values())
             for _, dests in config.values()]
    prints = cfgdigest.kernel_fingerprints(records, dumps)
    decoded = {}
    for payload, raw in zip(payloads, dumps):
        sc = service_from_kernel(wire.decode_reply(payload, stats=False)[1])
        ds = {}
        for _t, _f, _s, msg in wire.decode_messages(raw):
            dc = dest_from_kernel(wire.decode_reply(msg, stats=False)[1], sc.af)
            ds[dc.key] = dc
        decoded[sc.key] = (sc, ds)
    return dict(zip(keys, prints)), requests, decoded


# ------------------------------------------------------------ strategies

def _addr(af):
    size = 16 if af == AF_INET6 else 4
    fam = socket.AF_INET6 if af == AF_INET6 else socket.AF_INET
    return st.binary(min_size=size, max_size=size).map(lambda b: socket.inet_ntop(fam, b))


@st.composite
def dest_configs(draw, svc_af):
    af = draw(st.sampled_from([svc_af, svc_af, AF_INET, AF_INET6]))
    fwd = draw(st.sampled_from([0, 2, 3]))
    return DestConfig(af, draw(_addr(af)), draw(st.integers(0, 65535)), fwd,
                      draw(st.integers(0, 65535)), draw(st.integers(0, 9)),
                      draw(st.integers(0, 9)),
                      draw(st.integers(0, 2)) if fwd == 2 else 0,
                      draw(st.integers(0, 65535)) if fwd == 2 else 0,
                      draw(st.integers(0, 2)) if fwd == 2 else 0)


@st.composite
def service_configs(draw):
    af = draw(st.sampled_from([AF_INET, AF_INET6]))
    fwmark = draw(st.sampled_from([0, 0, draw(st.integers(1, 2**32 - 1))]))
    zero = "::" if af == AF_INET6 else "0.0.0.0"
    netmask = draw(st.integers(1, 128)) if af == AF_INET6 else \
        (0xFFFFFFFF << draw(st.integers(0, 32))) & 0xFFFFFFFF
    sc = ServiceConfig(
        af, 0 if fwmark else draw(st.sampled_from([6, 17, 132])),
        zero if fwmark else draw(_addr(af)),
        0 if fwmark else draw(st.integers(0, 65535)), fwmark,
        draw(st.sampled_from(["rr", "wrr", "mh", "sh"])),
        draw(st.integers(0, 0x3F)) & ~2, draw(st.integers(0, 2**32 - 1)),
        netmask, draw(st.sampled_from(["", "sip"])))
    dests = draw(st.lists(dest_configs(af), max_size=5, unique_by=lambda d: d.key))
    return sc, {d.key: d for d in dests}


configs = st.lists(service_configs(), max_size=6, unique_by=lambda p: p[0].key) \
    .map(lambda pairs: {sc.key: (sc, ds) for sc, ds in pairs})


def _mutate(draw, config):
    """``config`` with one field of one service or dest redrawn (maybe to
    the same value)."""
    if not config:
        return config
    key = draw(st.sampled_from(sorted(config, key=repr)))
    sc, dests = config[key]
    if dests and draw(st.booleans()):
        dkey = draw(st.sampled_from(sorted(dests, key=repr)))
        field = draw(st.sampled_from(["port", "fwd_method", "weight", "u_thresh",
                                      "l_thresh", "tun_type", "tun_port", "tun_flags"]))
        new = dataclasses.replace(dests[dkey], **{field: draw(st.integers(0, 3))})
        if new.fwd_method != 2:        # configs hold tunnel fields only for
            new = dataclasses.replace(new, tun_type=0, tun_port=0,  # tunnels
                                      tun_flags=0)
        dests = {**dests, dkey: new}
        dests = {d.key: d for d in dests.values()}
    else:
        field = draw(st.sampled_from(["sched_name", "flags", "timeout", "pe_name"]))
        value = draw(st.sampled_from(["rr", "wrr", "", "sip"])) \
            if field.endswith("name") else draw(st.integers(0, 3))
        if field == "flags":
            value &= ~2                # F_HASHED is the kernel's, not config
        sc = dataclasses.replace(sc, **{field: value})
    return {**config, key: (sc, dests)}


# ----------------------------------------------------------------- tests

@settings(max_examples=300, deadline=None)
@given(configs)
def test_kernel_and_model_fingerprints_of_one_config_agree(config):
    prints, _, decoded = kernel_read(config)
    keys, model = cfgdigest.model_fingerprints(list(config.values()))
    assert dict(zip(keys, model)) == prints
    assert decoded.keys() == config.keys()


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_equal_fingerprints_exactly_when_decoded_configs_are_equal(data):
    a = data.draw(configs)
    b = _mutate(data.draw, a)
    # the tunnel fields the kernel keeps for a non-tunnel dest: not config
    tun = data.draw(st.sampled_from([(0, 0, 0), (1, 6080, 1)]))
    a_prints, _, a_decoded = kernel_read(a, tun)
    keys, b_prints = cfgdigest.model_fingerprints(list(b.values()))
    for key, b_print in zip(keys, b_prints):
        same = a_decoded.get(key) == KernelState.of_config(b).config([key])[key]
        assert (a_prints.get(key) == b_print) == same, key


@settings(max_examples=100, deadline=None)
@given(configs)
def test_dest_dump_requests_carry_the_service_key(config):
    """The GET_DEST request of each service is its key nest: the key
    attributes exactly as the kernel reported them."""
    _, requests, decoded = kernel_read(config)
    for (sc, _), request in zip(config.values(), requests):
        length, kind = struct.unpack_from("=HH", request)
        assert kind == 1 and length == len(request)
        attrs = {}
        pos = 4
        while pos < length:
            alen, akind = struct.unpack_from("=HH", request, pos)
            attrs[akind] = request[pos + 4:pos + alen]
            pos += (alen + 3) & ~3
        want = {wire.SVC_ATTR["af"]} | ({wire.SVC_ATTR["fwmark"]} if sc.fwmark else
                                        {wire.SVC_ATTR[k] for k in ("protocol", "addr", "port")})
        assert set(attrs) == want


def test_model_objects_and_their_config_have_one_fingerprint():
    net = ipvs_py.Netns()
    net.restore("-A -t 10.0.0.1:80 -s wrr -p 300 -M 255.255.255.0\n"
                "-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -m -w 3 -x 10 -y 2\n"
                "-a -t 10.0.0.1:80 -r 10.0.1.2:8080 -i -w 1 --tun-type gue --tun-port 6080\n"
                "-A -f 7 -s mh -b mh-port\n-a -f 7 -r 10.0.2.1:0 -g\n"
                "-A -u [2001:db8::1]:53 -s sh --pe sip\n"
                "-a -u [2001:db8::1]:53 -r [2001:db8::10]:53 -m\n")
    pairs = [(s, s.dests) for s in net.services(sort=False)]
    cfg = config_of_model(net)
    assert cfgdigest.model_fingerprints(pairs) == \
        cfgdigest.model_fingerprints(list(cfg.values()))
    prints, _, decoded = kernel_read(cfg)
    keys, model = cfgdigest.model_fingerprints(pairs)
    assert dict(zip(keys, model)) == prints
    # the model keeps TCP as a fwmark service's protocol (as ipvsadm sends
    # it); the kernel reports none, and plan() compares them normalised
    assert decoded == {k: (normalise_model_svc(s), d) for k, (s, d) in cfg.items()}


def test_replies_captured_from_the_6_1_kernel():
    dump = b"".join(_message(p[4:]) for p in SERVICE_REPLIES)
    keys, requests, records, payloads = cfgdigest.kernel_services(dump)
    assert keys == [(AF_INET, 6, socket.inet_aton(a), 80)
                    for a in ("10.107.249.1", "10.107.248.1")]
    dests = b"".join(_message(p[4:]) for p in DEST_REPLIES)
    (print_,) = cfgdigest.kernel_fingerprints(records[:1], [dests])
    sc = service_from_kernel(wire.decode_reply(payloads[0])[1])
    ds = [dest_from_kernel(wire.decode_reply(p)[1], sc.af) for p in DEST_REPLIES]
    assert cfgdigest.model_fingerprints([(sc, ds)]) == ([sc.key], [print_])


@pytest.mark.parametrize("bad, match", [
    (struct.pack("=IHHII", 8, 32, 2, 1, 0), "length 8 outside"),
    (struct.pack("=IHHII", 99, 32, 2, 1, 0) + bytes(12), "length 99 outside"),
    (_message(struct.pack("=HH", 200, 1)), "runs past its nest"),
])
def test_malformed_dumps_raise_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        cfgdigest.kernel_services(bad)
    with pytest.raises(ValueError, match=match):
        cfgdigest.kernel_fingerprints([bytes(cfgdigest.SVC_RECORD_BYTES)],
                                      [bad.replace(b"\xc8\x00\x01", b"\xc8\x00\x02")])


def test_an_attribute_too_short_for_its_type_is_named():
    body = wire._nla(1, wire._nla(wire.SVC_ATTR["port"], b"\x01"))
    with pytest.raises(ValueError, match="attribute 4: 1 bytes, its type needs 2"):
        cfgdigest.kernel_services(_message(body))


def test_model_side_errors_name_the_field():
    sc = ServiceConfig(2, 6, "10.0.0.1", 80, 0, "x" * 40, 0, 0, 0xFFFFFFFF)
    with pytest.raises(ValueError, match="sched_name"):
        cfgdigest.model_fingerprints([(sc, {})])


@settings(max_examples=300, deadline=None)
@given(st.data(), st.booleans())
def test_planning_only_differing_services_gives_the_full_plan(data, prune):
    """What sync() does: plan only the services whose fingerprints differ;
    the steps are exactly those of planning every service."""
    from ipvs_py.netlink import plan
    have = data.draw(configs)
    want = _mutate(data.draw, data.draw(st.sampled_from([have, data.draw(configs)])))
    state = KernelState.of_config(have)
    keys, changed = state.differing(want, prune=prune)
    assert set(changed) <= set(want) and len(set(keys)) == len(keys)
    sub = plan(state.config([k for k in keys if k in state.fingerprints]),
               changed, prune=prune)
    assert sub == plan(have, want, prune=prune)
    if not sub:
        assert keys == [] or not prune and all(k in want for k in keys)


def test_differing_reads_model_services_directly():
    net = ipvs_py.Netns()
    net.restore("-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m\n"
                "-A -t 10.0.0.2:80 -s rr\n")
    have = config_of_model(net)
    keys, touched = cfgdigest.differing(net.services(sort=False),
                                        KernelState.of_config(have).fingerprints)
    assert sorted(keys, key=repr) == sorted(have, key=repr) and touched == []
    net.edit_dest(net.services()[0], "10.0.1.1", 80, weight=5)
    keys, touched = cfgdigest.differing(net.services(sort=False),
                                        KernelState.of_config(have).fingerprints)
    assert [keys[i] for i in touched] == [net.services()[0].key]
