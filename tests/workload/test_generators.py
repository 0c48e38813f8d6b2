"""Workload generators: deterministic under a seed, true to their laws.

Statistical checks use fixed seeds and fixed tolerances, so they are
deterministic: a failure means the generator changed, not bad luck.
"""
import numpy as np
import pytest
from scipy import stats

from ipvs_py import workload as w
from ipvs_py.packets import PacketBatch

SYN, ACK, FIN = 0x02, 0x10, 0x01

GENERATORS = {
    "uniform": lambda seed: w.uniform(5000, 500, seed=seed),
    "zipf": lambda seed: w.zipf(5000, 500, seed=seed),
    "bursty": lambda seed: w.bursty(300, seed=seed),
    "mix": lambda seed: w.long_short_mix(20, 100, duration=10, seed=seed),
    "syn_flood": lambda seed: w.syn_flood(2000, seed=seed),
    "many_clients": lambda seed: w.many_clients_few_vips(50, 20, seed=seed),
    "new_connections": lambda seed: w.new_connections(1000, seed=seed),
}


def same(a, b):
    return all(np.array_equal(x, b.columns()[k]) for k, x in a.columns().items())


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_deterministic_under_seed(name):
    gen = GENERATORS[name]
    assert same(gen(7), gen(7))
    assert not same(gen(7), gen(8))


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_time_ordered_and_tcp_flows_open_with_syn(name):
    b = GENERATORS[name](1)
    assert isinstance(b, PacketBatch) and len(b) > 0
    assert np.all(np.diff(b.time) >= 0)
    ids = b.flow_ids()
    _, first = np.unique(ids, return_index=True)
    assert np.all(b.tcp_flags[first] == SYN)
    others = np.setdiff1d(np.arange(len(b)), first)
    assert np.all(b.tcp_flags[others] & ACK)
    assert np.all((b.saddr[:, 0] == 198) & ((b.saddr[:, 1] & 0xFE) == 18))


def test_uniform_flow_counts_pass_chi_square():
    b = w.uniform(200_000, 200, seed=3)
    counts = np.bincount(b.flow_ids(), minlength=200)
    assert len(counts) == 200
    _, p = stats.chisquare(counts)
    assert p > 0.001


def test_zipf_frequencies_follow_the_law():
    n_flows, s = 1000, 1.1
    b = w.zipf(300_000, n_flows, s=s, seed=5)
    counts = np.sort(np.bincount(b.flow_ids(), minlength=n_flows))[::-1]
    expected = w.generators.zipf_weights(n_flows, s) * len(b)
    # The head of the distribution within 5% of the law...
    assert np.allclose(counts[:10], expected[:10], rtol=0.05)
    # ...and the log-log slope of rank vs frequency is -s within 0.05.
    ranks = np.arange(1, 101)
    slope = np.polyfit(np.log(ranks), np.log(counts[:100]), 1)[0]
    assert abs(slope + s) < 0.05


def test_bursty_trains_are_back_to_back_with_the_declared_mean():
    b = w.bursty(5000, mean_train=16, seed=2)
    ids = b.flow_ids()
    lengths = np.bincount(ids)
    assert abs(lengths.mean() - 16) < 0.5
    # Consecutive packets mostly belong to the same flow (trains).
    same_flow = np.mean(ids[1:] == ids[:-1])
    assert same_flow > 0.7
    # Every train ends with FIN|ACK when longer than one packet.
    rev_first = np.unique(ids[::-1], return_index=True)[1]
    last = len(ids) - 1 - rev_first
    multi = lengths[np.unique(ids)] > 1
    assert np.all(b.tcp_flags[last[multi]] == FIN | ACK)


def test_long_short_mix_has_slow_periodic_flows():
    b = w.long_short_mix(10, 200, duration=20, long_interval=1.0,
                         short_packets=4, seed=4)
    ids = b.flow_ids()
    lengths = np.bincount(ids)
    assert sorted(lengths.tolist()).count(20) == 10     # the long flows
    assert sorted(lengths.tolist()).count(4) == 200      # the short flows
    long_ids = np.flatnonzero(lengths == 20)
    for fid in long_ids[:3]:
        gaps = np.diff(b.time[ids == fid])
        assert np.allclose(gaps, 1.0)


def test_syn_flood_is_all_new_flows_from_distinct_sources():
    b = w.syn_flood(20_000, seed=9)
    assert np.all(b.tcp_flags == SYN)
    assert len(np.unique(b.flow_ids())) == 20_000
    # Poisson arrivals at the declared rate: mean gap 1/rate within 3%.
    assert abs(np.diff(b.time).mean() * 1e6 - 1.0) < 0.03
    _, p = stats.kstest(np.diff(b.time), "expon", args=(0, 1e-6))
    assert p > 0.001


def test_many_clients_few_vips():
    vips = [("192.0.2.1", 80), ("192.0.2.2", 443)]
    b = w.many_clients_few_vips(100, 30, vips=vips, packets_per_conn=2, seed=1)
    clients = {bytes(a[:4]) for a in b.saddr}
    assert len(clients) <= 100 and len(clients) > 90
    assert set(b.dport.tolist()) == {80, 443}
    assert len(np.unique(b.flow_ids())) == 3000


def test_new_connections_million_is_fast_enough_for_the_demo():
    b = w.new_connections(1_000_000, packets_per_conn=2, seed=0)
    assert len(b) == 2_000_000
    assert len(np.unique(b.flow_ids())) == 1_000_000


def test_udp_and_sctp_flows():
    u = w.uniform(100, 10, proto="udp", seed=1)
    assert set(u.proto.tolist()) == {17} and not u.tcp_flags.any()
    s = w.new_connections(10, proto="sctp", seed=1)
    ids = s.flow_ids()
    _, first = np.unique(ids, return_index=True)
    assert np.all(s.tcp_flags[first] == 1)    # INIT chunk


@pytest.mark.parametrize("call, match", [
    (lambda: w.uniform(0, 10), "n_packets"),
    (lambda: w.uniform(10, 0), "n_flows"),
    (lambda: w.uniform(10, 10, vips=[]), "vips"),
    (lambda: w.uniform(10, 10, vips=[("nope", 80)]), "bad VIP"),
    (lambda: w.uniform(10, 10, vips=[("192.0.2.1", 0)]), "port"),
    (lambda: w.uniform(10, 10, proto="icmp"), "protocol"),
    (lambda: w.zipf(10, 10, s=0), "s must"),
    (lambda: w.uniform(10, 10, rate=0), "rate"),
    (lambda: w.many_clients_few_vips(1, 40000), "fit"),
])
def test_bad_parameters_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
