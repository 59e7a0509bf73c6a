"""Write the worked-example notebooks (outputs stripped); run ``python notebooks/make_notebooks.py``."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

AUTOCONTEXT = [
    new_markdown_cell(
        "# Autocontext on ISBI 2012 EM with cascade's Python API\n\n"
        "Two stages: stage 1 classifies membranes from the raw EM image; stage 2 sees the raw image *and* "
        "stage 1's probabilities and computes features on both. We label a few percent of the pixels of two "
        "slices with scribbles drawn from the ground truth, train, predict held-out slices lazily with dask, "
        "and compare the stages."
    ),
    new_code_cell(
        "from pathlib import Path\n\n"
        "import dask\n"
        "import matplotlib.pyplot as plt\n"
        "import numpy as np\n"
        "import tifffile\n\n"
        "import cascade\n"
        "from cascade.demo import membrane_scores\n"
        "from cascade.training import scribble_labels\n\n"
        "DATA = Path('..').resolve().parent / 'shared' / 'data' / 'isbi2012'\n"
        "raw = tifffile.imread(DATA / 'train-volume.tif')\n"
        "truth = np.where(tifffile.imread(DATA / 'train-labels.tif') == 0, 1, 2).astype(np.uint8)  # 1 = membrane\n"
        "raw.shape, raw.dtype"
    ),
    new_markdown_cell("Sparse labels: short strokes inside membranes and inside cells, 3 % of the pixels."),
    new_code_cell(
        "train_slices, test_slices = [0, 10], [5, 25]\n"
        "images = []\n"
        "for i in train_slices:\n"
        "    labels = scribble_labels(truth[i], fraction=0.03, seed=i)\n"
        "    images.append(cascade.TrainingImage(raw[i][..., None], 'yxc', (labels, labels)))\n"
        "print([int((im.labels[0] > 0).sum()) for im in images], 'labelled pixels per slice')"
    ),
    new_markdown_cell(
        "A compact feature set (see `configs/features/em-membranes.yaml`); `'ilastik-default'` gives "
        "ilastik's full grid. Training computes features only around the labels."
    ),
    new_code_cell(
        "selection = cascade.parse_feature_selection({'features': {\n"
        "    'GaussianSmoothing': [0.7, 1.6, 3.5], 'LaplacianOfGaussian': [1.0, 3.5],\n"
        "    'GaussianGradientMagnitude': [1.0, 3.5], 'DifferenceOfGaussians': [1.6, 5.0],\n"
        "    'StructureTensorEigenvalues': [1.0, 3.5], 'HessianOfGaussianEigenvalues': [1.0, 1.6, 3.5]}})\n"
        "names = ('membrane', 'cell interior')\n"
        "stages = [cascade.Stage(selection, names), cascade.Stage(selection, names)]\n"
        "model = cascade.fit(images, stages, trees=100, seed=0)\n"
        "[stage.forest.n_trees for stage in model.stages]"
    ),
    new_markdown_cell("Prediction is lazy: each stage's outputs are dask arrays, computed block by block."),
    new_code_cell(
        "results = cascade.predict(model, raw[test_slices][..., None], axes='tyxc', chunks=(1, 256, 256, 1))\n"
        "results[1].probabilities"
    ),
    new_code_cell(
        "probabilities = dask.compute(*[r.probabilities for r in results])\n"
        "for k, p in enumerate(probabilities):\n"
        "    accuracy, f1 = membrane_scores(np.argmax(p, -1) + 1, truth[test_slices])\n"
        "    print(f'stage {k + 1}: accuracy {accuracy:.3f}, membrane F1 {f1:.3f}')"
    ),
    new_code_cell(
        "fig, axes = plt.subplots(1, 4, figsize=(16, 4))\n"
        "panels = [raw[test_slices[0]], probabilities[0][0, ..., 0], probabilities[1][0, ..., 0], truth[test_slices[0]] == 1]\n"
        "for ax, image, title in zip(axes, panels, ['raw', 'stage 1 membrane', 'stage 2 membrane', 'ground truth']):\n"
        "    ax.imshow(image, cmap='gray'); ax.set_title(title); ax.axis('off')\n"
        "plt.tight_layout()"
    ),
    new_markdown_cell("Projects are plain HDF5 (no pickles) and load back to the same predictions."),
    new_code_cell(
        "import tempfile\n"
        "path = cascade.save_cascade(model, Path(tempfile.mkdtemp()) / 'isbi.cascade')\n"
        "again = cascade.predict(cascade.open_project(path), raw[test_slices][..., None], axes='tyxc', chunks=(1, 256, 256, 1))\n"
        "assert np.array_equal(again[1].probabilities.compute(), probabilities[1])\n"
        "path"
    ),
]


CLUSTER = [
    new_markdown_cell(
        "# The same prediction on a Dask cluster\n\n"
        "cascade builds one dask graph per image; *where* it runs is a choice made around it. Here a "
        "local distributed cluster (worker processes on this machine, dashboard on loopback) runs a "
        "two-stage prediction of an ISBI 2012 EM stack and writes it chunk by chunk to zarr. Switching "
        "to SLURM is a change of profile, shown at the end."
    ),
    new_code_cell(
        "import tempfile\n"
        "from pathlib import Path\n\n"
        "import dask\n"
        "import numpy as np\n"
        "import tifffile\n\n"
        "import cascade\n"
        "from cascade.demo import DEMO_FEATURES\n"
        "from cascade.training import scribble_labels\n\n"
        "DATA = Path('..').resolve().parent / 'shared' / 'data' / 'isbi2012'\n"
        "raw = tifffile.imread(DATA / 'train-volume.tif')\n"
        "truth = np.where(tifffile.imread(DATA / 'train-labels.tif') == 0, 1, 2).astype(np.uint8)"
    ),
    new_markdown_cell("Train a small two-stage model on one slice (threads, in this process)."),
    new_code_cell(
        "labels = scribble_labels(truth[0], fraction=0.03, seed=0)\n"
        "selection = cascade.parse_feature_selection(DEMO_FEATURES)\n"
        "stages = [cascade.Stage(selection, ('membrane', 'cell')), cascade.Stage(selection, ('membrane', 'cell'))]\n"
        "model = cascade.fit([cascade.TrainingImage(raw[0][..., None], 'yxc', (labels, labels))], stages, trees=30)"
    ),
    new_markdown_cell(
        "Predict slices 1-6 on a `LocalCluster` of 2 worker processes. The input is read lazily from "
        "the TIFF, page by page; every worker writes its own chunks of the zarr output; the client never "
        "holds the volume. Open the printed dashboard link while it runs."
    ),
    new_code_cell(
        "out = Path(tempfile.mkdtemp()) / 'stage2.zarr'\n"
        "image = cascade.open_image(str(DATA / 'train-volume.tif'), axes='zyx')\n"
        "volume = image.data[1:7, :, :, None]\n"
        "with cascade.execution('local', threads=2) as info:\n"
        "    print('dashboard:', info.dashboard_link, '| workers:', info.n_workers)\n"
        "    results = cascade.predict(model, volume, axes='tyxc', chunks=(1, 256, 256, 1))\n"
        "    cascade.write_image(results[1].probabilities, str(out), format='zarr', axes='tyxc')\n"
        "distributed_result = cascade.open_image(str(out)).data.compute()\n"
        "distributed_result.shape"
    ),
    new_markdown_cell("The cluster's result is identical to the threaded one."),
    new_code_cell(
        "with dask.config.set(scheduler='threads'):\n"
        "    threaded = cascade.predict(model, volume, axes='tyxc', chunks=(1, 256, 256, 1))[1].probabilities.compute()\n"
        "assert np.array_equal(threaded, distributed_result)\n"
        "'identical'"
    ),
    new_markdown_cell(
        "## On SLURM\n\n"
        "The same block with `cascade.execution('slurm', profile='my-site.yaml')` submits worker jobs through "
        "dask-jobqueue. Copy `configs/cluster/slurm-example.yaml`, set the partition, account, cores, "
        "memory, walltime and the network interface the compute nodes reach; the dashboard stays on the "
        "login node's loopback (`ssh -L 8787:127.0.0.1:8787 login-node`). From the command line:\n\n"
        "```bash\n"
        "cascade predict --project model.cascade --scheduler slurm --profile my-site.yaml \\\n"
        "    --output_format zarr 'stack/*.tif'\n"
        "```"
    ),
]


def write(name: str, cells: list) -> None:
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})
    nbformat.write(nb, HERE / name)


if __name__ == "__main__":
    write("autocontext.ipynb", AUTOCONTEXT)
    write("cluster.ipynb", CLUSTER)
