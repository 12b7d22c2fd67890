"""Named random streams derived from one seed (common random numbers).

Each source of randomness draws from its own stream, keyed by name: ``arrivals``, ``order_lines``,
``latency.erp``, ``fault.erp-brownout``, ``supplier.lead_time`` ... Adding a fault window or a new
consumer therefore leaves every other stream's draws unchanged, which is what makes two variants of
a scenario comparable run for run.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np


def derive_seed(seed: int, name: str) -> int:
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class Streams:
    """Factory of independent, reproducible random streams for one run."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._py: dict[str, random.Random] = {}
        self._np: dict[str, np.random.Generator] = {}

    def py(self, name: str) -> random.Random:
        """A ``random.Random`` for scalar draws in SimPy processes (fast per call)."""
        r = self._py.get(name)
        if r is None:
            r = self._py[name] = random.Random(derive_seed(self.seed, name))
        return r

    def np(self, name: str) -> np.random.Generator:
        """A numpy Generator for vectorised draws (demand, master data)."""
        g = self._np.get(name)
        if g is None:
            g = self._np[name] = np.random.default_rng(derive_seed(self.seed, "np:" + name))
        return g

    def fresh_np(self, name: str) -> np.random.Generator:
        """A new Generator at the start of stream ``name`` (same draws as ``np(name)`` from scratch).

        For consumers that may replay their draws (e.g. iterating demand twice), unaffected by
        whoever else has used ``np(name)``."""
        return np.random.default_rng(derive_seed(self.seed, "np:" + name))

    def fresh_py(self, name: str) -> random.Random:
        """A new ``random.Random`` at the start of stream ``name``."""
        return random.Random(derive_seed(self.seed, name))

    def child(self, name: str) -> Streams:
        """A sub-factory whose streams are namespaced, e.g. per replication."""
        return Streams(derive_seed(self.seed, "child:" + name) % (2**63))
