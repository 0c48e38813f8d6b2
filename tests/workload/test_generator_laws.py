"""Distribution checks test_generators.py leaves out: arrival processes,
the whole train-length law, the long/short mix's timing, the tune
workload's shape.  Fixed seeds and tolerances: deterministic."""
import numpy as np
from scipy import stats

from ipvs_py import workload as w


def first_times(b):
    """Each flow's first packet time, in flow-start order."""
    _, first = np.unique(b.flow_ids(), return_index=True)
    return np.sort(b.time[np.sort(first)])


def test_new_connections_start_as_a_poisson_process():
    rate = 50_000.0
    b = w.new_connections(20_000, rate=rate, seed=11)
    gaps = np.diff(first_times(b))
    assert abs(gaps.mean() * rate - 1) < 0.03
    _, p = stats.kstest(gaps, "expon", args=(0, 1 / rate))
    assert p > 0.001
    # each connection: SYN, ACK, FIN|ACK 0.1 ms apart
    ids = b.flow_ids()
    assert np.all(np.bincount(ids) == 3)
    order = np.lexsort((b.time, ids))
    t = b.time[order].reshape(-1, 3)
    assert np.allclose(np.diff(t, axis=1), 1e-4)
    assert b.tcp_flags[order].reshape(-1, 3).tolist()[:2] == [
        [0x02, 0x10, 0x11]] * 2


def test_uniform_and_zipf_packets_arrive_at_the_rate():
    for gen in (w.uniform, w.zipf):
        b = gen(30_000, 300, rate=20_000.0, seed=2)
        gaps = np.diff(b.time)
        _, p = stats.kstest(gaps, "expon", args=(0, 1 / 20_000.0))
        assert p > 0.001, gen.__name__


def test_bursty_train_lengths_are_geometric():
    mean = 8
    b = w.bursty(20_000, mean_train=mean, seed=6)
    lengths = np.bincount(b.flow_ids())
    k = np.arange(1, 25)
    observed = np.array([(lengths == i).sum() for i in k] +
                        [(lengths >= 25).sum()])
    pk = stats.geom.pmf(k, 1 / mean)
    expected = np.append(pk, 1 - pk.sum()) * len(lengths)
    _, p = stats.chisquare(observed, expected)
    assert p > 0.001
    # packets of one train are gap (1 us) apart
    ids = b.flow_ids()
    order = np.lexsort((b.time, ids))
    same = ids[order][1:] == ids[order][:-1]
    assert np.allclose(np.diff(b.time[order])[same], 1e-6)


def test_long_short_mix_short_flows_start_uniformly():
    b = w.long_short_mix(5, 4000, duration=100.0, short_packets=2, seed=8)
    ids = b.flow_ids()
    lengths = np.bincount(ids)
    short = np.flatnonzero(lengths == 2)
    _, first = np.unique(ids, return_index=True)
    starts = b.time[first[short]]
    _, p = stats.kstest(starts, "uniform", args=(0, 100.0))
    assert p > 0.001


def test_syn_flood_sources_spread_over_the_client_net():
    b = w.syn_flood(40_000, seed=3)
    addr = b.saddr[:, :4].astype(np.uint32)
    host = (addr[:, 1] & 1) << 16 | addr[:, 2] << 8 | addr[:, 3]  # /15
    counts = np.bincount(host >> 13, minlength=16)            # 16 bins
    _, p = stats.chisquare(counts)
    assert p > 0.001
