"""Where cascade computes: resources, cluster profiles, SLURM and the ``execution`` context.

Importing this package merges the packaged ``cluster.yaml`` defaults into ``dask.config``.
"""

from ._fork import prepare_workers
from .execution import SCHEDULERS, ExecutionInfo, execution
from .profiles import PROFILES_DIR, load_profile, parse_overrides
from .resources import available_cores, available_memory
from .slurm import slurm_job_script

__all__ = [
    "PROFILES_DIR",
    "SCHEDULERS",
    "ExecutionInfo",
    "available_cores",
    "available_memory",
    "execution",
    "load_profile",
    "parse_overrides",
    "prepare_workers",
    "slurm_job_script",
]
