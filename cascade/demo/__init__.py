"""The ISBI 2012 demo: train a two-stage cascade on a packaged crop, predict, score and save it."""

from __future__ import annotations

from .run import DEMO_FEATURES, DemoReport, load_demo_data, membrane_scores, run_demo

__all__ = ["DEMO_FEATURES", "DemoReport", "load_demo_data", "membrane_scores", "run_demo"]
