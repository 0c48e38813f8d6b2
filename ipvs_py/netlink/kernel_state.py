"""The kernel's IPVS configuration as one read, compared by fingerprint.

A sync must read every destination of every service: one GET_DEST dump
per service, since the kernel lists destinations only service by service.
:meth:`KernelState.read` runs those dumps in one compiled loop
(``_core/nldump``) and reduces each service to a fingerprint
(``_core/cfgdigest``); the replies are kept raw and decoded into
:class:`~.config.ServiceConfig` / :class:`~.config.DestConfig` only for
the services a caller asks for, i.e. those whose fingerprint differs from
the desired one.  A no-op re-sync of 2,000 x 4 thus decodes nothing.
"""
from .._core import load
from . import wire
from .config import config_of_pairs, dest_from_kernel, service_from_kernel

_cfgdigest = load("cfgdigest")


class KernelState:
    """What the kernel held at one read: ``fingerprints`` maps each service
    key to its fingerprint; :meth:`config` decodes services on demand."""

    def __init__(self, fingerprints, decode, raw=None):
        self.fingerprints = fingerprints
        self._decode = decode          # key -> (ServiceConfig, {key: Dest})
        self._raw = raw                # key -> (service payload, dest dump)

    @classmethod
    def read(cls, channel):
        """Read the kernel over a :class:`wire.WireChannel`.  Raises OSError
        with the failing dump's errno, and ``service_key`` set when a
        destination dump failed (see IPVSConnection.snapshot)."""
        (services,) = channel.dump_each(wire.CMD_GET_SERVICE, [b""])
        keys, requests, records, payloads = _cfgdigest.kernel_services(services)
        try:
            dumps = channel.dump_each(wire.CMD_GET_DEST, requests)
        except OSError as exc:        # which service's dump the kernel refused
            exc.service_key = keys[exc.dump_index]
            raise
        prints = _cfgdigest.kernel_fingerprints(records, dumps)
        raw = dict(zip(keys, zip(payloads, dumps)))

        def decode(key):
            svc, dests = _replies(*raw[key], stats=False)
            sc = service_from_kernel(svc)
            dcs = (dest_from_kernel(d, sc.af) for d in dests)
            return sc, {dc.key: dc for dc in dcs}
        return cls(dict(zip(keys, prints)), decode, raw)

    def replies(self, stats=True):
        """Every service as ``(service dict, [dest dicts])``, the dicts
        IPVSConnection.services()/dests() return (counters, and stats
        unless ``stats=False``), in the kernel's order."""
        if self._raw is None:
            raise ValueError("this state was not read from a kernel")
        return [_replies(payload, dump, stats)
                for payload, dump in self._raw.values()]

    @classmethod
    def of_config(cls, config):
        """The state of a Config already decoded (from a connection that
        answers with dicts, such as a test double of IPVSConnection)."""
        keys, prints = _cfgdigest.model_fingerprints(config.values())
        return cls(dict(zip(keys, prints)), config.__getitem__)

    def config(self, keys=None):
        """The Config of ``keys`` (default: every service)."""
        return {k: self._decode(k)
                for k in (self.fingerprints if keys is None else keys)}

    def differing(self, desired, prune=False):
        """Keys of the services a sync to ``desired`` would touch: those it
        names whose fingerprint differs (or that are missing here), and
        with ``prune`` those it does not name.  ``desired``: a Netns or a
        Config.  Returns ``(keys, desired Config of those keys)``."""
        items = list(desired.values() if isinstance(desired, dict) else
                     desired.services(sort=False))
        keys, touched = _cfgdigest.differing(items, self.fingerprints)
        changed = config_of_pairs(_pair(items[i]) for i in touched)
        named = [keys[i] for i in touched]
        if prune:
            want = set(keys)
            named += [k for k in self.fingerprints if k not in want]
        return named, changed


def _pair(item):
    """A Config's (ServiceConfig, dests) or a model Service as a pair."""
    return item if isinstance(item, tuple) else (item, item.dests)


def _replies(payload, dump, stats):
    svc = wire.decode_reply(payload, stats)[1]
    dests = [d for kind, d in (wire.decode_reply(msg, stats) for *_, msg in
                               wire.decode_messages(dump)) if kind == "dest"]
    return svc, dests
