"""What this host gives the runtime: CPUs (backends size their threads by it)."""

from __future__ import annotations

import os


def available_cpus() -> int:
    """CPUs this process may run on (respects affinity, unlike os.cpu_count())."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
