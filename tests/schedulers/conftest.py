"""Scheduler suites run against both paths: Python modules and C batch."""
import pytest

from .helpers import CDriver, PyDriver

HOT = ("rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "ovf", "sh", "dh", "mh")


@pytest.fixture(params=[PyDriver(), CDriver()], ids=lambda d: d.tag)
def driver(request):
    """How decisions are made: the Python module or the C batch path."""
    return request.param


@pytest.fixture(autouse=True)
def _quiet_scheduler_errors(caplog):
    caplog.set_level("ERROR", logger="ipvs_py.schedulers")
