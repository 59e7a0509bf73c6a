"""Project files: ilastik ``.ilp`` import (read-only)."""

from __future__ import annotations

from .ilp import IlpLane, IlpProject, IlpStage, LabelBlock, describe_ilp, read_ilp, read_lane_data

__all__ = ["IlpLane", "IlpProject", "IlpStage", "LabelBlock", "describe_ilp", "read_ilp", "read_lane_data"]
