"""Workloads for replay: traffic generators and a pcap/pcapng reader.

Every generator returns a :class:`ipvs_py.packets.PacketBatch` ordered by
time and is deterministic under its ``seed``.
"""
from .generators import (Flows, bursty, long_short_mix, many_clients_few_vips,
                         new_connections, syn_flood, uniform, zipf)
from .pcap import PcapStats, read_pcap

__all__ = ["Flows", "uniform", "zipf", "bursty", "long_short_mix",
           "syn_flood", "many_clients_few_vips", "new_connections",
           "read_pcap", "PcapStats"]
