"""Hypothesis profiles: ``ci`` (default; derandomized, 60 examples a test, seconds) and ``deep``
(``DEBLURKIT_FUZZ=deep``: 3,000 random examples a test, for a longer search before a release)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]}
settings.register_profile("ci", max_examples=60, derandomize=True, **_COMMON)
settings.register_profile("deep", max_examples=3000, **_COMMON)
settings.load_profile(os.environ.get("DEBLURKIT_FUZZ", "ci"))
