"""Feed a :class:`~.mirror.SessionMirror` from a Netns's connection table.

Seed 004 has IPVS write a session into the BPF map when it creates a
connection and delete it when the connection goes.  Here the model's C
engine records a session event whenever a conn becomes or stops being
mirrorable (``include/ipvs_events.h``: a masq TCP conn entering or leaving
ESTABLISHED, a masq UDP conn created, either one freed by a timer, by
conn_reuse_mode, by expire_nodest_conn or by drop-entry).  After every
engine call -- ``packet()``, ``replay()``, the timers and defense work of
``advance()`` -- the packet path runs ``after_engine``; the feed drains
the ring there and applies the events as batched map operations:

* events are folded per map key, in order: the last event of a key wins;
  a key that first went UP and last DOWN within one drain was never
  installed, so nothing is sent for it;
* deletes go first (forward map, then reply map), then reply entries are
  inserted, then forward entries -- the mirror's ordering rule: a
  forwarded packet always finds its reply path;
* a full map does not stop the model: the sessions that do not fit stay
  on the slow path and are counted in ``stats.overflow`` (a forward entry
  is only written once its reply entry is in);
* a full event ring (``stats.lost``) makes the drain a full
  resynchronisation from a walk of the table, which is always exact; so
  does a drain after one that failed half-way (a bpf(2) error other than
  a full map is raised to the caller of packet()/replay()/advance()).

The feed never reads the maps on the event path; :meth:`ModelFeed.resync`
does (it diffs the maps against a snapshot of the table and keeps the
counters of unchanged sessions).
"""
import struct
from dataclasses import dataclass

import numpy as np

from .errors import BpfMapFullError
from .layout import FWD_MASQ, KEY, KEY_DTYPE, VALUE, VALUE_DTYPE

# struct ipvs_event (include/ipvs_events.h): raw network-order fields
EVENT_DTYPE = np.dtype([("caddr", "V16"), ("vaddr", "V16"),
                        ("daddr", "V16"), ("cport", ">u2"),
                        ("vport", ">u2"), ("dport", ">u2"), ("kind", "u1"),
                        ("af", "u1"), ("proto", "u1"), ("state", "u1"),
                        ("pad", "V6")])
EVENT = struct.Struct("<16s16s16s2s2s2sBBBB6x")   # the same, for struct
assert EVENT_DTYPE.itemsize == EVENT.size == 64
EV_UP, EV_DOWN = 1, 2
# Below this many events a plain loop beats building numpy records (one
# event: 2 us against 7.5 us, measured on the 6.18 dev VM).
SMALL_DRAIN = 16


@dataclass
class FeedStats:
    """Counters of one feed: ``events`` drained, conn ``installs`` and
    ``removals`` sent to the maps, full ``resyncs``, ``lost`` events (ring
    full), sessions left on the slow path because a map was full
    (``overflow``)."""
    events: int = 0
    installs: int = 0
    removals: int = 0
    resyncs: int = 0
    lost: int = 0
    overflow: int = 0


def _rows(arr):
    """The records of a structured array as a list of bytes."""
    raw, size = arr.tobytes(), arr.dtype.itemsize
    return [raw[i:i + size] for i in range(0, len(raw), size)]


def decode_events(raw):
    """``(kinds, in_keys, in_values, out_keys, out_values)`` of a drained
    event buffer; the lists hold map keys/values as bytes, one per event
    (layouts of :mod:`.layout`, built with numpy, or with struct for a
    few events)."""
    if len(raw) < SMALL_DRAIN * EVENT.size:
        return _decode_few(raw)
    ev = np.frombuffer(raw, EVENT_DTYPE)
    n = len(ev)
    ik, ok = np.zeros(n, KEY_DTYPE), np.zeros(n, KEY_DTYPE)
    iv, ov = np.zeros(n, VALUE_DTYPE), np.zeros(n, VALUE_DTYPE)
    for k in (ik, ok):
        k["family"], k["proto"] = ev["af"], ev["proto"]
    # client -> VIP: rewrite the destination to the real server
    ik["saddr"], ik["sport"], ik["daddr"], ik["dport"] = (
        ev["caddr"], ev["cport"], ev["vaddr"], ev["vport"])
    iv["addr"], iv["port"] = ev["daddr"], ev["dport"]
    # real server -> client: rewrite the source back to the VIP
    ok["saddr"], ok["sport"], ok["daddr"], ok["dport"] = (
        ev["daddr"], ev["dport"], ev["caddr"], ev["cport"])
    ov["addr"], ov["port"] = ev["vaddr"], ev["vport"]
    return ev["kind"].tolist(), _rows(ik), _rows(iv), _rows(ok), _rows(ov)


def _decode_few(raw):
    kinds, ik, iv, ok, ov = [], [], [], [], []
    for c, v, d, cp, vp, dp, kind, af, proto, _ in EVENT.iter_unpack(raw):
        kinds.append(kind)
        ik.append(KEY.pack(af, proto, cp, vp, 0, c, v))
        iv.append(VALUE.pack(d, dp, FWD_MASQ, 0, 0, 0, 0, 0))
        ok.append(KEY.pack(af, proto, dp, cp, 0, d, c))
        ov.append(VALUE.pack(v, vp, FWD_MASQ, 0, 0, 0, 0, 0))
    return kinds, ik, iv, ok, ov


def fold(kinds, keys):
    """Net effect of a run of events on one map: ``(puts, deletes)``,
    ``puts`` mapping key -> index of the event whose value to write,
    ``deletes`` the keys to remove.  Applying them equals applying the
    events one by one, given that the map held exactly the keys whose
    last event before this run was UP."""
    first, last = {}, {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)
        last[key] = i
    puts, deletes = {}, []
    for key, i in last.items():
        if kinds[i] == EV_UP:
            puts[key] = i
        elif kinds[first[key]] == EV_DOWN:
            deletes.append(key)
    return puts, deletes


def _put_all(m, keys, values):
    """Write all pairs (one element: a plain update, half the cost of a
    batch of one); on a full map, the keys not written (else [])."""
    try:
        if len(keys) == 1:
            m.update(keys[0], values[0])
        else:
            m.update_batch(keys, values)
    except BpfMapFullError as e:
        return keys[getattr(e, "done", 0):]
    return []


class ModelFeed:
    """Keeps ``mirror``'s maps equal to the mirrorable conns of ``net``.

    Created by :meth:`SessionMirror.attach`: turns the engine's event ring
    on (``capacity`` events between two drains before a resync is
    needed), resynchronises once, and drains after every engine call
    until :meth:`detach`.
    """

    def __init__(self, mirror, net, capacity=65536):
        self.mirror = mirror
        self.net = net
        self.stats = FeedStats()
        self._path = net._path()
        if self._path.after_engine is not None:
            raise ValueError("this Netns already feeds a session mirror")
        self._path.e.events_on(capacity)
        self._path.after_engine = self.drain
        self._stale = False      # a drain failed half-way: resync next
        try:
            self.resync()
        except BaseException:
            self.detach()
            raise

    def detach(self):
        """Stop feeding; the maps keep what they hold."""
        if self._path.after_engine == self.drain:
            self._path.after_engine = None
            self._path.e.events_off()

    def drain(self):
        """Apply the events recorded since the last drain (ConnPath calls
        this after each engine call)."""
        raw, lost = self._path.e.events_drain()
        self.stats.events += len(raw) // EVENT_DTYPE.itemsize
        self.stats.lost += lost
        if lost or self._stale:
            self.resync()
            return
        if raw:
            try:
                self._apply(*decode_events(raw))
            except BaseException:
                # The events are gone from the ring but not all reached
                # the maps: the next drain rebuilds from the table.
                self._stale = True
                raise

    def _apply(self, kinds, ik, iv, ok, ov):
        m_in, m_out = self.mirror.sess_in, self.mirror.sess_out
        in_puts, in_dels = fold(kinds, ik)
        out_puts, out_dels = fold(kinds, ok)
        self.stats.removals += m_in.discard_batch(in_dels)
        m_out.discard_batch(out_dels)
        failed_out = set(_put_all(m_out, list(out_puts),
                                  [ov[i] for i in out_puts.values()]))
        fwd = [(k, i) for k, i in in_puts.items() if ok[i] not in failed_out]
        failed_in = _put_all(m_in, [k for k, _ in fwd],
                             [iv[i] for _, i in fwd])
        if failed_in:           # their reply entries are of no use now
            by_key = dict(fwd)
            m_out.discard_batch([ok[by_key[k]] for k in failed_in])
        self.stats.installs += len(fwd) - len(failed_in)
        self.stats.overflow += len(in_puts) - len(fwd) + len(failed_in)

    def resync(self):
        """Make the maps exactly the mirrorable conns of the table now
        (a walk of the table); returns the mirror's ResyncResult.  When
        more conns are mirrorable than the maps hold, the first ones of
        the walk are installed and the rest counted in ``overflow``."""
        self._stale = True
        self._path.e.events_drain()       # the snapshot supersedes them
        kinds, ik, iv, ok, ov = decode_events(self._path.e.events_snapshot())
        cap = min(self.mirror.sess_in.max_entries,
                  self.mirror.sess_out.max_entries)
        self.stats.overflow += max(0, len(ik) - cap)
        res = self.mirror.resync_entries(dict(zip(ik[:cap], iv[:cap])),
                                         dict(zip(ok[:cap], ov[:cap])))
        self.stats.resyncs += 1
        self._stale = False
        return res

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.detach()
