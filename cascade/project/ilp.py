"""Read ilastik project files (``.ilp``) of the Pixel Classification and Autocontext workflows.

The file is opened read-only and without HDF5 file locking, so any number of processes can read
the same project at once. Everything cascade needs is read eagerly into frozen dataclasses and
the file is closed again; only :func:`read_lane_data` reopens it, for images stored inside it.

Layout (see ``reference/ilastik.md`` section 4): stage ``k`` of a project (``k = 0`` for Pixel
Classification, ``0 .. n-1`` for Autocontext) lives in ``FeatureSelections{k:02d}`` and
``PixelClassification{k:02d}``, with no suffix for ``k = 0``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import CascadeError, ProjectError
from ..features import FeatureSelection
from ..forest import PackedForest
from ._h5 import feature_name, text, texts
from ._ilp_describe import describe_ilp
from ._ilp_labels import LabelBlock, read_label_sets
from ._ilp_lanes import IlpLane, read_lanes
from ._ilp_settings import _label_names, _read_export, _read_selection
from ._vigra import read_vigra_forests

__all__ = [
    "WORKFLOWS",
    "IlpLane",
    "IlpProject",
    "IlpStage",
    "LabelBlock",
    "describe_ilp",
    "read_ilp",
    "read_lane_data",
]

#: Accepted ``workflowName`` values (lower case) -> (cascade's name for the workflow, stage count).
WORKFLOWS: dict[str, tuple[str, int]] = {
    "pixel classification": ("Pixel Classification", 1),
    "pixelclassificationworkflow": ("Pixel Classification", 1),
    "autocontexttwostage": ("AutocontextTwoStage", 2),
    "autocontext (2-stage)": ("AutocontextTwoStage", 2),
    "autocontextthreestage": ("AutocontextThreeStage", 3),
    "autocontext (3-stage)": ("AutocontextThreeStage", 3),
    "autocontextfourstage": ("AutocontextFourStage", 4),
    "autocontext (4-stage)": ("AutocontextFourStage", 4),
}


@dataclass(frozen=True)
class IlpStage:
    """One classification stage: its features, classes, labels and (optionally) trained forest.

    Attributes
    ----------
    index : int
        0 for the first stage (``PixelClassification``), 1 for ``PixelClassification01``...
    selection : FeatureSelection or None
        The stored feature matrix. When the project stores no ``ComputeIn2d`` flags
        (``compute_in_2d_stored`` is False) its flags are all False; use :meth:`selection_for`
        to apply ilastik's default. None when the project stores no usable selection.
    compute_in_2d_stored : bool
        Whether ``ComputeIn2d`` was stored (non-empty) in the project.
    label_names : tuple of str
        Class names; class k (label value k) is output channel k-1.
    forest : PackedForest or None
        All stored vigra trees as one forest with ``len(label_names)`` outputs; None if the
        project holds no trained classifier.
    feature_names : tuple of str or None
        ``ClassifierForests/feature_names``: the forest's input columns, in order.
    known_labels : tuple of int or None
        ``ClassifierForests/known_labels``: the label values the forest was trained on.
    label_blocks : tuple of tuple of LabelBlock
        Per lane (same index as :attr:`IlpProject.lanes`), that lane's label blocks.
    """

    index: int
    selection: FeatureSelection | None
    compute_in_2d_stored: bool
    label_names: tuple[str, ...]
    forest: PackedForest | None
    feature_names: tuple[str, ...] | None
    known_labels: tuple[int, ...] | None
    label_blocks: tuple[tuple[LabelBlock, ...], ...]

    @property
    def n_classes(self) -> int:
        """Number of classes (output channels)."""
        return len(self.label_names)

    def selection_for(self, z_size: int | None) -> FeatureSelection | None:
        """The feature selection with ilastik's default 2D flags applied if none were stored.

        ilastik's default for a project without ``ComputeIn2d``: every column in 2D when the
        data has no z axis (``z_size`` None or 1), every column in 3D otherwise.

        Parameters
        ----------
        z_size : int or None
            Length of the data's z axis (None: no z axis).

        Returns
        -------
        FeatureSelection or None
            None when the stage stores no selection.
        """
        if self.selection is None or self.compute_in_2d_stored:
            return self.selection
        flat = z_size is None or z_size == 1
        return dataclasses.replace(self.selection, compute_in_2d=(flat,) * len(self.selection.scales))

    def label_counts(self) -> np.ndarray:
        """Labelled pixels per class over all lanes, shape (n_classes,), int64.

        Returns
        -------
        numpy.ndarray
            The counts.
        """
        total = np.zeros(self.n_classes, dtype=np.int64)
        for blocks in self.label_blocks:
            for block in blocks:
                total += block.counts(self.n_classes)
        return total


@dataclass(frozen=True)
class IlpProject:
    """What cascade reads from an ilastik project.

    Attributes
    ----------
    path : Path
        The ``.ilp`` file (absolute).
    ilastik_version : str
        ``ilastikVersion`` as stored, e.g. ``"1.4.1b15"``.
    workflow : str
        ``"Pixel Classification"``, ``"AutocontextTwoStage"``, ``"AutocontextThreeStage"`` or
        ``"AutocontextFourStage"``.
    stages : tuple of IlpStage
        One stage for Pixel Classification, 2-4 for Autocontext, in order.
    lanes : tuple of IlpLane
        The training images.
    export : dict
        The ``Prediction Export`` settings the project stores, decoded: ``RegionStart`` /
        ``RegionStop`` (tuples, None for ilastik's -1), ``InputMin``/``InputMax``/``ExportMin``/
        ``ExportMax`` (numbers), ``ExportDtype``, ``OutputAxisOrder``, ``OutputFilenameFormat``,
        ``OutputInternalPath``, ``OutputFormat`` (str). Absent settings are absent keys.
    saved : str or None
        The ``time`` the project was saved, as stored.
    issues : tuple of str
        Why the project cannot be run as it is (no feature selection, no trained forest...).
    """

    path: Path
    ilastik_version: str
    workflow: str
    stages: tuple[IlpStage, ...]
    lanes: tuple[IlpLane, ...]
    export: dict[str, Any]
    saved: str | None
    issues: tuple[str, ...]

    @property
    def usable_features(self) -> bool:
        """Whether every stage has a usable feature selection."""
        return all(stage.selection is not None for stage in self.stages)

    def raw_channels(self) -> int | None:
        """Channel count of the raw data (first lane whose shape is known), or None.

        Returns
        -------
        int or None
            The channel count.
        """
        for lane in self.lanes:
            channels = lane.size("c")
            if channels is not None:
                return channels
        return None

    def z_size(self) -> int | None:
        """z extent of the first lane whose shape is known (1 without z), or None.

        Returns
        -------
        int or None
            The z extent.
        """
        for lane in self.lanes:
            z = lane.size("z")
            if z is not None:
                return z
        return None

    def input_channels(self, stage: int) -> int | None:
        """Input channels of ``stage``: raw channels, plus the previous stage's classes for stage > 0.

        Parameters
        ----------
        stage : int
            0-based stage index.

        Returns
        -------
        int or None
            The channel count, or None when the raw channel count is unknown.
        """
        raw = self.raw_channels()
        if raw is None or stage == 0:
            return raw
        return raw + self.stages[stage - 1].n_classes


def read_ilp(path: str | Path) -> IlpProject:
    """Read an ilastik Pixel Classification or Autocontext project.

    Parameters
    ----------
    path : str or Path
        The ``.ilp`` file.

    Returns
    -------
    IlpProject

    Raises
    ------
    ProjectError
        If the file is missing, is not HDF5, is damaged, is not an ilastik project, or holds a
        workflow other than Pixel Classification or Autocontext.
    """
    path = Path(path).absolute()
    if not path.exists():
        raise ProjectError(f"project file not found: {path}")
    if path.is_dir():
        raise ProjectError(f"{path}: is a directory, not an ilastik project file")
    try:
        handle = h5py.File(path, "r", locking=False)
    except OSError as err:
        raise ProjectError(
            f"{path}: not an ilastik project (not a readable HDF5 file: {_one_line(err)})"
        ) from err
    try:
        with handle as f:
            return _read_project(f, path)
    except CascadeError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError) as err:
        raise ProjectError(f"{path}: the project file is damaged or incomplete ({_one_line(err)})") from err


def read_lane_data(project: IlpProject, lane_index: int) -> np.ndarray:
    """Pixels of a lane stored inside the project (``ProjectInternal``), in the lane's own axes.

    Parameters
    ----------
    project : IlpProject
        The project.
    lane_index : int
        0-based lane index.

    Returns
    -------
    numpy.ndarray
        The lane's pixels.

    Raises
    ------
    ProjectError
        If there is no such lane, the lane's data is an outside file, or the dataset is missing.
    """
    if not 0 <= lane_index < len(project.lanes):
        raise ProjectError(
            f"{project.path}: no lane {lane_index}; the project has {len(project.lanes)} lane(s)"
        )
    lane = project.lanes[lane_index]
    if lane.location != "ProjectInternal" or lane.internal_path is None:
        raise ProjectError(
            f"{project.path}: lane {lane_index} ({lane.nickname}) is not stored in the project; "
            f"read its file {lane.resolved_path} instead"
        )
    try:
        with h5py.File(project.path, "r", locking=False) as f:
            ds = f.get(lane.internal_path)
            if not isinstance(ds, h5py.Dataset):
                raise ProjectError(
                    f"{project.path}: lane {lane_index}: dataset {lane.internal_path} is missing"
                )
            return np.asarray(ds[()])
    except OSError as err:
        raise ProjectError(f"{project.path}: cannot read lane {lane_index} ({_one_line(err)})") from err


# internals ----------------------------------------------------------------------------------------
def _one_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _workflow(f: h5py.File, path: Path) -> tuple[str, int]:
    if "workflowName" not in f:
        raise ProjectError(f"{path}: not an ilastik project (no 'workflowName' entry)")
    name = text(f["workflowName"][()])
    if name.strip().lower().startswith("object classification"):
        raise ProjectError(
            f"{path}: '{name}' is an Object Classification project, not a pixel classifier; "
            "run it with cascade --headless (object export sources)"
        )
    if name.strip().lower() not in WORKFLOWS:
        raise ProjectError(
            f"{path}: workflow '{name}' is not supported; cascade runs Pixel Classification and "
            "Autocontext projects"
        )
    return WORKFLOWS[name.strip().lower()]


def _read_project(f: h5py.File, path: Path) -> IlpProject:
    workflow, n_stages = _workflow(f, path)
    suffixes = ["" if k == 0 else f"{k:02d}" for k in range(n_stages)]
    groups = ("FeatureSelections", "PixelClassification")
    required = ["Input Data"] + [f"{g}{s}" for s in suffixes for g in groups]
    missing = [g for g in required if not isinstance(f.get(g), h5py.Group)]
    if missing:
        raise ProjectError(f"{path}: a {workflow} project needs the group(s) {', '.join(missing)}")
    version = text(f["ilastikVersion"][()]) if "ilastikVersion" in f else "unknown"
    lanes = read_lanes(f, path.parent)
    issues: list[str] = []
    stages = tuple(
        _read_stage(f, k, suffixes[k], lanes, version, f"{path}:PixelClassification{suffixes[k]}", issues)
        for k in range(n_stages)
    )
    if not lanes:
        issues.append("the project has no input data")
    return IlpProject(
        path=path,
        ilastik_version=version,
        workflow=workflow,
        stages=stages,
        lanes=lanes,
        export=_read_export(f.get("Prediction Export")),
        saved=text(f["time"][()]) if "time" in f else None,
        issues=tuple(issues),
    )


def _read_classifier(
    group: h5py.Group, n_outputs: int, where: str, issues: list[str], stage: int
) -> tuple[PackedForest | None, tuple[str, ...] | None, tuple[int, ...] | None]:
    """(forest, feature names, known labels) of a ``ClassifierForests`` group."""
    kind = text(group["pickled_type"][()]) if "pickled_type" in group else "VigraRf"
    if "VigraRf" not in kind:
        return None, None, None
    known = np.ravel(group["known_labels"][()]).astype(np.int64) if "known_labels" in group else None
    labels = known if known is not None else np.zeros(0, dtype=np.int64)
    forest = read_vigra_forests(group, labels, n_outputs, f"{where}/ClassifierForests")
    names = None
    if "feature_names" in group:
        names = tuple(feature_name(n) for n in texts(group["feature_names"][()]))
    if forest is not None and names is not None and len(names) != forest.n_features:
        issues.append(
            f"stage {stage}: forest expects {forest.n_features} features, {len(names)} names stored"
        )
    return forest, names, None if known is None else tuple(int(v) for v in known)


def _read_stage(
    f: h5py.File, k: int, suffix: str, lanes: tuple[IlpLane, ...], version: str, where: str, issues: list[str]
) -> IlpStage:
    pc = f[f"PixelClassification{suffix}"]
    selection, stored, problem = _read_selection(f[f"FeatureSelections{suffix}"])
    if problem is not None:
        issues.append(f"stage {k + 1}: {problem}")
    label_names = _label_names(pc)
    forest, names, known = None, None, None
    cf = pc.get("ClassifierForests")
    if isinstance(cf, h5py.Group):
        forest, names, known = _read_classifier(cf, len(label_names), where, issues, k + 1)
    if forest is None:
        issues.append(f"stage {k + 1}: no trained vigra forest stored; it must be trained from the labels")
    return IlpStage(
        index=k,
        selection=selection,
        compute_in_2d_stored=stored,
        label_names=label_names,
        forest=forest,
        feature_names=names,
        known_labels=known,
        label_blocks=read_label_sets(pc.get("LabelSets"), lanes, version, f"{where}/LabelSets"),
    )
