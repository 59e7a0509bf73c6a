"""The training spec YAML: the commented example parses, bad specs give clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cascade.errors import CascadeError
from cascade.training import load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[1]


def test_example_spec_parses() -> None:
    spec = load_spec(ROOT / "configs" / "train-example.yaml")
    assert len(spec.stages) == 2 and len(spec.images) == 2
    assert spec.stages[0].class_names == ("membrane", "cytoplasm", "mitochondria")
    assert spec.stages[0].selection.n_channels(1) == 49
    assert spec.images[1].labels[0] == spec.images[1].labels[1]
    assert spec.images[0].input_axes == "zyx"
    assert spec.trees == 100 and spec.training == "cross-fit"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("images: []\nstages: [{classes: [a, b]}]", "non-empty 'images'"),
        ("images: [{raw: a.tif}]\nstages: []", "non-empty 'stages'"),
        (
            "images: [{raw: a.tif, labels: [x, y, z]}]\nstages: [{classes: [a, b]}, {classes: [b, c]}]",
            "3 label images",
        ),
        ("images: [{raw: a.tif}]\nstages: [{features: ilastik-default}]", "'classes'"),
        ("images: [{raw: a.tif}]\nstages: [{classes: [a, b], features: nope}]", "unknown feature set"),
        (
            "images: [{raw: a.tif, labels: l.tif}]\nstages: [{classes: [a, b]}]\ntraining: cross",
            "cross-fit, oob, in-sample",
        ),
        (
            "images: [{raw: a.tif, labels: l.tif}]\nstages: [{classes: [a, b]}]\nforest: {trees: 0}",
            "from 1 to",
        ),
        ("images: [{raw: a.tif}]\nstages: [{classes: [a]}]", "at least two class names"),
        (
            "images: [{raw: a.tif, labels: l.tif}]\nstages: [{classes: [a, b]}]\nforest: [1, 2]",
            "must be a mapping",
        ),
        (
            "images: [{raw: a.tif, labels: l.tif}]\nstages: [{classes: [a, b]}]\nforest: {trees: true}",
            "forest trees",
        ),
        (
            "images: [{raw: a.tif, labels: l.tif}]\nstages: [{classes: [a, b]}, {classes: [a, b]}]\nforest: {seed: 4294967295}",
            "from 0 to 4294967294",
        ),
        ("images: [{raw: a.tif}]\nstages: [{classes: [a, b]}]\ntress: 3", r"unknown key 'tress'.*forest"),
        ("images: [{raw: a.tif, axes: yx}]\nstages: [{classes: [a, b]}]", r"'axes' in image 1.*input_axes"),
        ("[1, 2]", "must be a mapping"),
    ],
)
def test_bad_specs(text: str, message: str) -> None:
    with pytest.raises(CascadeError, match=message):
        parse_spec(yaml.safe_load(text), Path("."))
