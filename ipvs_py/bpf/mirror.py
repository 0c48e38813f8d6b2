"""Keep the session maps in step with the model's connection table.

The model calls three hooks (seed 004: IPVS inserts into the map when it
creates a connection and removes it when the connection goes):

* :meth:`SessionMirror.on_established` - a connection became established
  (TCP) or was created (UDP): install both directions;
* :meth:`SessionMirror.on_expired` - it expired or was deleted: remove;
* :meth:`SessionMirror.resync` - make the maps equal to a full iteration
  of the table (after a restart, a flush, or a suspected divergence).

:meth:`SessionMirror.on_state_change` covers both directions of a state
transition (e.g. ESTABLISHED -> FIN_WAIT removes the session, so the rest
of the teardown is seen by the model's state machine).

Only masq connections of TCP/UDP are mirrored: DR and tunnel do not
rewrite addresses at the balancer, and the program parses no SCTP.  TCP
connections are mirrored from ESTABLISHED only, so handshakes keep going
through the model's state machine.

Ordering: the reply entry is written before the forward entry and removed
after it, so a packet the program rewrites towards a real server always
finds its reply path already installed.

Limit: entries are keyed by the tuple on the wire, so two connections
whose reply tuples coincide (the same client address and port sent to the
same real server port through two virtual services) share one reply
entry; the later install wins and removing either removes it.  IPVS's own
out-direction lookup is ambiguous in that case too.
"""
import errno as _errno
from dataclasses import dataclass

from .conn import ConnRecord
from .layout import KEY, VALUE, pack_key, pack_value, unpack_value
from .syscall import EXIST, NOEXIST

MIRRORED_PROTOS = {"tcp", "udp", 6, 17}


@dataclass(frozen=True)
class ResyncResult:
    """What a resync changed: entries (per direction) added and removed."""
    installed: int
    removed: int
    kept: int


def eligible(conn: ConnRecord) -> bool:
    """True if the fast path can carry ``conn``."""
    if conn.fwd != "masq" or conn.proto not in MIRRORED_PROTOS:
        return False
    if conn.protonum == 6:
        return conn.state == "ESTABLISHED"
    return True


def entries(conn: ConnRecord):
    """``((in_key, in_val), (out_key, out_val))`` for ``conn``."""
    c, v, d = conn.caddr.packed, conn.vaddr.packed, conn.daddr.packed
    p, af = conn.protonum, conn.af
    fwd = (pack_key(af, p, c, conn.cport, v, conn.vport),
           pack_value(d, conn.dport))
    rev = (pack_key(af, p, d, conn.dport, c, conn.cport),
           pack_value(v, conn.vport))
    return fwd, rev


def _rewrite_of(value):
    """The part of a value that says where to rewrite (not the counters)."""
    return value[:18]


class SessionMirror:
    """Mirror of the model's established masq connections in the maps of
    a :class:`~ipvs_py.bpf.program.FastPath` (or any two maps with the
    session layout: ``sess_in``, ``sess_out``)."""

    def __init__(self, fastpath=None, sess_in=None, sess_out=None):
        self.sess_in = sess_in if sess_in is not None else fastpath.sess_in
        self.sess_out = sess_out if sess_out is not None else fastpath.sess_out
        for m in (self.sess_in, self.sess_out):
            if (m.key_size, m.value_size) != (KEY.size, VALUE.size):
                raise ValueError(f"map {m.name!r} does not have the session "
                                 "layout")

    # -- hooks the model calls -----------------------------------------
    def on_established(self, conn):
        """Hook: ``conn`` became established.  Same as :meth:`install`."""
        return self.install(conn)

    def on_state_change(self, conn):
        """Hook: ``conn`` changed state.  Installs it if it is now
        eligible, removes it otherwise; returns True if it is mirrored."""
        if eligible(conn):
            return self.install(conn)
        self.remove(conn)
        return False

    def on_expired(self, conn):
        """Hook: ``conn`` expired or was deleted.  Same as :meth:`remove`."""
        return self.remove(conn)

    # -- single connections ----------------------------------------------
    def install(self, conn):
        """Install both directions of ``conn``; False if not eligible.

        Re-installing an unchanged connection keeps its counters; a changed
        destination is overwritten.  Raises BpfMapFullError when a map is
        full, after undoing a half-installed pair.
        """
        if not eligible(conn):
            return False
        (ik, iv), (ok, ov) = entries(conn)
        new_out = self._put(self.sess_out, ok, ov)
        try:
            self._put(self.sess_in, ik, iv)
        except OSError:
            if new_out:
                self.sess_out.delete(ok)
            raise
        return True

    @staticmethod
    def _put(m, key, value):
        """Insert or update keeping counters; True if newly inserted."""
        try:
            m.update(key, value, NOEXIST)
            return True
        except OSError as e:
            if e.errno != _errno.EEXIST:
                raise
        old = m.lookup(key)
        if old is not None and _rewrite_of(old) == _rewrite_of(value):
            return False
        m.update(key, value, EXIST if old is not None else NOEXIST)
        return False

    def remove(self, conn):
        """Remove both directions of ``conn``; False if it was not there."""
        if conn.proto not in MIRRORED_PROTOS:
            return False
        (ik, _), (ok, _) = entries(conn)
        had_in = self.sess_in.delete(ik)
        had_out = self.sess_out.delete(ok)
        return had_in or had_out

    def stats(self, conn):
        """``(forward, reply)`` :class:`~.layout.SessionStats` of an installed
        connection, or None.  The model folds these into its counters and
        timers (packets that took the fast path never reached it)."""
        (ik, _), (ok, _) = entries(conn)
        fwd, rev = self.sess_in.lookup(ik), self.sess_out.lookup(ok)
        if fwd is None or rev is None:
            return None
        return unpack_value(fwd, conn.af), unpack_value(rev, conn.af)

    # -- whole table -------------------------------------------------------
    def install_many(self, conns):
        """Install many connections with batch updates; returns how many
        were eligible.  Counters of already present entries are reset."""
        ins, outs = [], []
        for conn in conns:
            if eligible(conn):
                fwd, rev = entries(conn)
                ins.append(fwd)
                outs.append(rev)
        self._batch_put(self.sess_out, outs)
        self._batch_put(self.sess_in, ins)
        return len(ins)

    @staticmethod
    def _batch_put(m, pairs):
        if pairs:
            m.update_batch([k for k, _ in pairs], [v for _, v in pairs])

    def resync(self, conns):
        """Make both maps hold exactly the eligible connections of
        ``conns`` (an iterable of ConnRecord).  Entries whose rewrite is
        unchanged keep their counters."""
        want_in, want_out = {}, {}
        for conn in conns:
            if eligible(conn):
                (ik, iv), (ok, ov) = entries(conn)
                want_in[ik] = iv
                want_out[ok] = ov
        return self.resync_entries(want_in, want_out)

    def resync_entries(self, want_in, want_out):
        """:meth:`resync` from ready-made ``{key: value}`` dicts of both
        maps (the model feed builds them from a snapshot of the table)."""
        kept = 0
        plans = []
        for m, want in ((self.sess_in, want_in), (self.sess_out, want_out)):
            have = dict(m.lookup_batch())
            stale = [k for k in have if k not in want]
            put = [(k, v) for k, v in want.items()
                   if k not in have or _rewrite_of(have[k]) != _rewrite_of(v)]
            kept += len(want) - len(put)
            plans.append((m, stale, put))
        (m_in, stale_in, put_in), (m_out, stale_out, put_out) = plans
        # Forward entries go first on removal and last on insertion (see
        # the module docstring).
        m_in.delete_batch(stale_in)
        m_out.delete_batch(stale_out)
        self._batch_put(m_out, put_out)
        self._batch_put(m_in, put_in)
        installed = len(put_in) + len(put_out)
        removed = len(stale_in) + len(stale_out)
        return ResyncResult(installed, removed, kept)

    def attach(self, net, capacity=65536):
        """Feed this mirror from ``net``'s connection table from now on
        (after a full resync); returns the :class:`~.feed.ModelFeed`,
        whose ``detach()`` stops it.  See :mod:`ipvs_py.bpf.feed`."""
        from .feed import ModelFeed
        return ModelFeed(self, net, capacity)

    def __len__(self):
        """Number of mirrored connections (forward entries)."""
        return len(self.sess_in.keys())
