"""The JSON document of ``ipvs-py explain --json``
(:meth:`ipvs_py.ops.explain.Explanation.as_dict`), as JSON Schema draft
2020-12; docs/operators.md describes the fields, the tests validate every
explanation they make against it."""
from .explain_steps import ACTIONS, FORMAT, LOOKUPS

_ENDPOINT = {"type": "object", "additionalProperties": False,
             "required": ["address", "port"],
             "properties": {"address": {"type": "string"},
                            "port": {"type": "integer", "minimum": 0,
                                     "maximum": 65535}}}
_MAYBE_ENDPOINT = {"oneOf": [{"type": "null"}, _ENDPOINT]}
_NUM_OR_NULL = {"type": ["number", "null"]}

EXPLAIN_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "ipvs-py explain",
    "type": "object",
    "additionalProperties": False,
    "required": ["format", "packet", "service_lookup", "connection",
                 "persistence", "scheduler", "verdict", "steps",
                 "trace_lost"],
    "properties": {
        "format": {"const": FORMAT},
        "packet": {
            "type": "object", "additionalProperties": False,
            "required": ["protocol", "client", "vip", "fwmark", "flags",
                         "time"],
            "properties": {"protocol": {"enum": ["tcp", "udp", "sctp"]},
                           "client": _ENDPOINT, "vip": _ENDPOINT,
                           "fwmark": {"type": "integer", "minimum": 0},
                           "flags": {"type": "string"},
                           "time": {"type": "number"}}},
        "service_lookup": {
            "type": "object", "additionalProperties": False,
            "required": ["ran", "lookups", "matched", "service"],
            "properties": {
                "ran": {"type": "boolean"},
                "lookups": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False,
                    "required": ["lookup", "ran", "counter", "value"],
                    "properties": {"lookup": {"enum": list(LOOKUPS)},
                                   "ran": {"type": "boolean"},
                                   "counter": {"type": "string"},
                                   "value": {"type": "integer"}}}},
                "matched": {"enum": list(LOOKUPS) + [None]},
                "service": {"type": ["string", "null"]}}},
        "connection": {
            "type": "object", "additionalProperties": False,
            "required": ["found", "id", "dest", "state", "expires_in",
                         "outcome"],
            "properties": {
                "found": {"type": "boolean"},
                "id": {"type": ["integer", "null"]},
                "dest": _MAYBE_ENDPOINT,
                "state": {"type": ["string", "null"]},
                "expires_in": _NUM_OR_NULL,
                "outcome": {"enum": ["used", "none", "rescheduled",
                                     "expired_nodest", "dropped_nodest"]}}},
        "persistence": {
            "oneOf": [{"type": "null"}, {
                "type": "object", "additionalProperties": False,
                "required": ["template", "dest", "expires_in", "controls",
                             "outcome", "timeout"],
                "properties": {
                    "template": {"type": ["integer", "null"]},
                    "dest": _MAYBE_ENDPOINT,
                    "expires_in": _NUM_OR_NULL,
                    "controls": {"type": ["integer", "null"]},
                    "timeout": _NUM_OR_NULL,
                    "outcome": {"enum": ["used", "created", "invalid_dest",
                                         "invalid_quiescent",
                                         "none"]}}}]},
        "scheduler": {
            "oneOf": [{"type": "null"}, {
                "type": "object", "additionalProperties": False,
                "required": ["name", "engine", "basis", "state_before",
                             "state_after", "dests", "slot", "notes",
                             "chosen"],
                "properties": {
                    "name": {"type": "string"},
                    "engine": {"enum": ["c", "python"]},
                    "basis": {"type": "string"},
                    "state_before": {"type": "object"},
                    "state_after": {"type": "object"},
                    "dests": {"type": "array", "items": {
                        "type": "object", "additionalProperties": False,
                        "required": ["dest", "weight", "activeconns",
                                     "inactconns", "overhead", "overloaded",
                                     "u_threshold", "score", "chosen"],
                        "properties": {
                            "dest": _ENDPOINT,
                            "weight": {"type": "integer"},
                            "activeconns": {"type": "integer"},
                            "inactconns": {"type": "integer"},
                            "overhead": {"type": "integer"},
                            "overloaded": {"type": "boolean"},
                            "u_threshold": {"type": "integer"},
                            "score": {"type": ["number", "null"]},
                            "chosen": {"type": "boolean"}}}},
                    "slot": {"oneOf": [{"type": "null"}, {
                        "type": "object", "additionalProperties": False,
                        "required": ["index", "dest", "table_size"],
                        "properties": {"index": {"type": "integer"},
                                       "dest": _MAYBE_ENDPOINT,
                                       "table_size": {"type": "integer"}}}]},
                    "notes": {"type": "array", "items": {"type": "string"}},
                    "chosen": _MAYBE_ENDPOINT}}]},
        "verdict": {
            "type": "object", "additionalProperties": False,
            "required": ["action", "dest", "conn", "state", "timeout",
                         "reason"],
            "properties": {
                "action": {"enum": list(ACTIONS)},
                "dest": _MAYBE_ENDPOINT,
                "conn": {"type": ["integer", "null"]},
                "state": {"type": ["string", "null"]},
                "timeout": _NUM_OR_NULL,
                "reason": {"type": "string"}}},
        "steps": {"type": "array", "items": {"type": "string"}},
        "trace_lost": {"type": "integer", "minimum": 0},
        # ipvs-py explain --netns only: the kernel's entries of the client
        # (the /proc/net/ip_vs_conn rows of the kernel snapshot schema)
        "kernel_entries": {"type": "array", "items": {"type": "object"}},
    },
}


