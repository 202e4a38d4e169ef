"""The allocator policy (simulator/host_memory.py): freed frame-sized buffers are reused, not
handed back to the kernel and faulted in again."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

GLIBC = bool(getattr(os, "confstr", None) and os.confstr("CS_GNU_LIBC_VERSION"))

# page faults per round of a frame's worth of temporaries: a dozen 1 MB arrays made, written
# and freed together (as an OpenCV/numpy pipeline does per frame)
PROBE = """
import json, resource
import numpy as np
import simulator.host_memory as host_memory
def round_of_temporaries():
    arrays = [np.ones(1 << 18, np.float32) for _ in range(12)]
    del arrays
for _ in range(10):
    round_of_temporaries()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    round_of_temporaries()
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 50
print(json.dumps({"applied": host_memory.keep_freed_memory(), "faults": faults}))
"""


def _probe(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("MALLOC_") and k != "ARSIM_MALLOC"}
    done = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout)


@pytest.mark.skipif(not GLIBC, reason="the policy is glibc's mallopt")
def test_freed_buffers_are_reused_not_faulted_in_again() -> None:
    tuned = _probe()
    default = _probe(ARSIM_MALLOC="default")
    assert tuned["applied"] and not default["applied"]
    # glibc's default trims the freed heap top: 12 MB faulted in again each round
    assert default["faults"] > 1000, default
    assert tuned["faults"] < 50, tuned


@pytest.mark.skipif(not GLIBC, reason="the policy is glibc's mallopt")
def test_a_user_allocator_setting_is_left_alone() -> None:
    assert not _probe(MALLOC_TRIM_THRESHOLD_="131072")["applied"]
