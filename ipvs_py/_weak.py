"""Back references that do not keep their target alive.

A Netns owns its sysctls, timers, packet path, services and dests; when
those point back at the Netns (or a dest at its service) through plain
references, every Netns sits in reference cycles and is freed only when
the cyclic garbage collector next runs, with its conn table still
allocated.  A sweep that builds one Netns per setting and drops it (what
``ipvs-py tune`` does) then kept each dead namespace's memory: six nets
in a row, each replaying 1M SYNs to NAT dests
(``bench_multicore.syns(1_000_000, 8)``) and dropped with ``del``, took
RSS from 214 to 812 MiB; with these, it stays at 224 MiB.  The owners
hold their parts strongly; the parts hold their owners through these.
"""
import weakref

__all__ = ["weak_method"]


def weak_method(method):
    """A callable that runs bound ``method`` while its object lives and
    returns None (doing nothing) once it is gone."""
    ref = weakref.WeakMethod(method)

    def call(*args, **kwargs):
        m = ref()
        return None if m is None else m(*args, **kwargs)
    call.__name__ = getattr(method, "__name__", "call")
    call.__doc__ = f"{call.__name__} of a weakly referenced object."
    return call
