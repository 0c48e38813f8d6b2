"""BPF session fast path (seed 004, issue 11).

Established IPVS sessions are mirrored into two eBPF hash maps, keyed by
the client-side tuple and by the reply tuple, and a tc (sched_cls) program
rewrites the packets of those sessions (masq: destination on the way in,
source on the way back) so they skip the model's slow path.  See
docs/bpf.md.

Public API:

* :class:`ConnRecord` - the connection record the model feeds in;
* :class:`SessionMirror` - keeps the maps in step with the model:
  ``attach(net)`` feeds it from a Netns's conn table (a :class:`ModelFeed`),
  or by hand with ``on_established``/``on_expired``/``resync``;
* :class:`FastPath` - the loaded program and its maps (``run`` =
  BPF_PROG_TEST_RUN);
* :func:`attach_clsact`/:func:`detach_clsact` - put it on a device;
* :class:`Map` and the error classes of :mod:`.errors`.
"""
from .conn import ConnRecord
from .errors import (BpfBuildError, BpfError, BpfMapFullError,
                     BpfPermissionError, BpfUnsupportedError,
                     BpfVerifierError, ElfError)
from .feed import FeedStats, ModelFeed
from .mirror import SessionMirror
from .program import FastPath
from .syscall import Map
from .attach import attach_clsact, detach_clsact

__all__ = ["ConnRecord", "SessionMirror", "ModelFeed", "FeedStats",
           "FastPath", "Map",
           "attach_clsact", "detach_clsact",
           "BpfError", "BpfPermissionError", "BpfUnsupportedError",
           "BpfMapFullError", "BpfVerifierError", "BpfBuildError", "ElfError"]
