"""Remote data: zarr, OME-Zarr and N5 stores read over HTTP and S3, OME-Zarr and zarr written to S3.

A real HTTP server (``http.server`` in a thread) and a real S3 server (moto's) are started on
127.0.0.1; the CLI runs end to end in a subprocess whose environment points botocore at the
local S3 endpoint with fake credentials, so nothing leaves the machine. Every remote result
is compared with the same run on a local file.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from helpers import cascade

from cascade.errors import DataError, ExportError
from cascade.io import open_image

zarr = pytest.importorskip("zarr")
pytest.importorskip("s3fs")

PROJECT = "ilp/ilastik__ilastik/api_projects/PixelClass.ilp"
IMAGE = "ilp/ilastik__ilastik/api_projects/Data_1channel.png"
#: Environment of the S3 client: fake credentials, no metadata service, no user config.
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}


# ---------------------------------------------------------------------------- stores
def _write_ome(root: Path, levels: list[np.ndarray], *, zarr_format: int, names: list[str]) -> None:
    """An OME-Zarr image of 2D ``levels`` (axes y, x): 0.4 with zarr format 2, 0.5 with 3."""
    group = zarr.open_group(str(root), mode="w", zarr_format=zarr_format)
    for name, level in zip(names, levels):
        group.create_array(name, data=level, chunks=(32, 32))
    multiscale = {
        "name": root.name,
        "axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
        "datasets": [
            {"path": name, "coordinateTransformations": [{"type": "scale", "scale": [2.0**i, 2.0**i]}]}
            for i, name in enumerate(names)
        ],
    }
    if zarr_format == 2:
        group.attrs["multiscales"] = [{"version": "0.4", **multiscale}]
    else:
        group.attrs["ome"] = {"version": "0.5", "multiscales": [multiscale]}


def _write_n5(root: Path, image: np.ndarray, block: tuple[int, int]) -> None:
    """A raw N5 container with the dataset ``raw`` (axes y, x), written by hand from the spec."""
    root.mkdir()
    (root / "attributes.json").write_text(json.dumps({"n5": "4.0.0"}))
    dataset = root / "raw"
    dataset.mkdir()
    attrs = {
        "dimensions": [image.shape[1], image.shape[0]],
        "blockSize": [block[1], block[0]],
        "dataType": "uint8",
        "compression": {"type": "raw"},
        "axes": ["x", "y"],
    }
    (dataset / "attributes.json").write_text(json.dumps(attrs))
    for by in range(0, image.shape[0], block[0]):
        for bx in range(0, image.shape[1], block[1]):
            tile = image[by : by + block[0], bx : bx + block[1]]
            header = np.array([0, 2, tile.shape[1], tile.shape[0]], ">u2")
            dims = np.array([tile.shape[1], tile.shape[0]], ">u4")
            path = dataset / str(bx // block[1]) / str(by // block[0])
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(header[:2].tobytes() + dims.tobytes() + np.ascontiguousarray(tile).tobytes())


@pytest.fixture(scope="module")
def image(data_dir: Path) -> np.ndarray:
    """The PNG's pixels (128 x 128 uint8)."""
    return np.asarray(iio.imread(data_dir / IMAGE))


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, image: np.ndarray) -> Path:
    """A folder of stores holding the PNG's pixels: OME-Zarr 0.4 and 0.5 with two scales of
    different shapes (the second is every other pixel), plain zarr v2 and v3, and N5."""
    root = tmp_path_factory.mktemp("served")
    half = np.ascontiguousarray(image[::2, ::2])
    _write_ome(root / "img.ome.zarr", [image, half], zarr_format=2, names=["s0", "s1"])
    _write_ome(root / "img5.ome.zarr", [image, half], zarr_format=3, names=["0", "1"])
    plain = zarr.create_array(str(root / "plain.zarr"), data=image, chunks=(64, 64), zarr_format=2)
    plain.attrs["_ARRAY_DIMENSIONS"] = ["y", "x"]
    zarr.create_array(str(root / "plain3.zarr"), data=image, chunks=(64, 64), dimension_names=["y", "x"])
    _write_n5(root / "img.n5", image, (48, 40))
    iio.imwrite(root / "Data_1channel.png", image)
    (root / "private").mkdir()
    return root


# ---------------------------------------------------------------------------- servers
class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the stores; records the paths asked for; ``/private/...`` is forbidden."""

    requested: list[str]

    def do_GET(self) -> None:
        self.requested.append(self.path)
        if self.path.startswith("/private/"):
            self.send_error(403)
            return
        super().do_GET()

    def do_HEAD(self) -> None:
        if self.path.startswith("/private/"):
            self.send_error(403)
            return
        super().do_HEAD()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def http_url(stores: Path) -> Iterator[tuple[str, list[str]]]:
    """Base URL of an HTTP server on 127.0.0.1 serving ``stores``, and its request log."""
    requested: list[str] = []
    handler = type("Handler", (_Handler,), {"requested": requested})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(stores))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requested
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def s3(stores: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A moto S3 server on 127.0.0.1 with the stores uploaded to ``s3://data``; yields the
    environment a client needs (fake credentials, ``AWS_ENDPOINT_URL``)."""
    moto_server = pytest.importorskip("moto.server")
    home = tmp_path_factory.mktemp("aws")
    env = {
        **FAKE_AWS,
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
    }
    saved = {key: os.environ.get(key) for key in [*env, "AWS_ENDPOINT_URL"]}
    os.environ.update(env)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env["AWS_ENDPOINT_URL"] = os.environ["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=env["AWS_ENDPOINT_URL"], skip_instance_cache=True)
    fs.mkdir("data")
    fs.mkdir("results")
    for store in ("img.ome.zarr", "img5.ome.zarr", "img.n5"):
        fs.put(str(stores / store), f"data/{store}", recursive=True)
    public = s3fs.S3FileSystem(
        endpoint_url=env["AWS_ENDPOINT_URL"],
        skip_instance_cache=True,
        s3_additional_kwargs={"ACL": "public-read"},
    )
    public.mkdir("public", acl="public-read")
    public.put(str(stores / "img.ome.zarr"), "public/img.ome.zarr", recursive=True)
    try:
        yield env
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ---------------------------------------------------------------------------- runs
def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m cascade --headless ...`` in a fresh interpreter, with the fake S3 credentials."""
    return cascade("--headless", *args, cwd=cwd, env={**FAKE_AWS, **(env or {})}, timeout=600)


def predict(
    data_dir: Path, out: Path, *inputs: str, env: dict[str, str] | None = None
) -> dict[str, np.ndarray]:
    """Probabilities (y, x, c) of each input, by nickname, written as numpy files into ``out``."""
    out.mkdir(exist_ok=True)
    done = run_cli(
        f"--project={data_dir / PROJECT}",
        "--output_format=numpy",
        "--output_axis_order=yxc",
        f"--output_filename_format={out}/{{nickname}}.npy",
        *inputs,
        cwd=out,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return {p.stem: np.load(p) for p in out.glob("*.npy")}


@pytest.fixture(scope="module")
def local(
    data_dir: Path, image: np.ndarray, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, np.ndarray]:
    """The same runs on local files: the PNG (full scale) and a .npy of the half scale."""
    work = tmp_path_factory.mktemp("local")
    np.save(work / "half.npy", np.ascontiguousarray(image[::2, ::2]))
    results = predict(data_dir, work / "out", str(data_dir / IMAGE), str(work / "half.npy"))
    return {"full": results["Data_1channel"], "half": results["half"]}


def test_http_stores_predict_as_the_local_file(
    data_dir: Path, http_url: tuple[str, list[str]], local: dict[str, np.ndarray], tmp_path: Path
) -> None:
    """Each kind of store over HTTP, and the PNG itself, gives the local file's probabilities;
    the scale asked for (here the half-size one) is the one processed."""
    base, _ = http_url
    inputs = [
        f"{base}/img.ome.zarr/s0",
        f"{base}/img.ome.zarr/s1",
        f"{base}/img5.ome.zarr/1",
        f"{base}/plain.zarr",
        f"{base}/plain3.zarr",
        f"{base}/img.n5/raw",
        f"{base}/Data_1channel.png",
    ]
    results = predict(data_dir, tmp_path / "out", *inputs)
    assert sorted(results) == [
        "Data_1channel",
        "img-raw",
        "img-s0",
        "img-s1",
        "img5-1",
        "plain",
        "plain3",
    ]
    assert local["half"].shape[:2] == (64, 64)
    assert local["full"].shape[:2] == (128, 128)
    for name in ("img-s1", "img5-1"):
        np.testing.assert_array_equal(results[name], local["half"])
    for name in ("img-s0", "plain", "plain3", "img-raw", "Data_1channel"):
        np.testing.assert_array_equal(results[name], local["full"])


def test_http_read_is_chunk_wise(http_url: tuple[str, list[str]], image: np.ndarray) -> None:
    """Reading one block of a remote image fetches that chunk only, not the whole image."""
    base, requested = http_url
    opened = open_image(f"{base}/img.ome.zarr/s0")
    assert opened.axes == "yx"
    assert opened.data.chunks == ((32,) * 4, (32,) * 4)
    requested.clear()
    block = opened.data[32:64, 64:96].compute()
    np.testing.assert_array_equal(block, image[32:64, 64:96])
    chunks = [p for p in requested if not p.rsplit("/", 1)[-1].startswith((".z", "zarr.json"))]
    assert chunks == ["/img.ome.zarr/s0/1.2"]  # zarr v2 chunk key of block (1, 2)


def test_http_errors_are_one_line(data_dir: Path, http_url: tuple[str, list[str]], tmp_path: Path) -> None:
    """404, 403 and an unreachable host: one line naming the URL and the problem, exit 2."""
    base, _ = http_url
    with socket_closed() as dead:
        cases = {
            f"{base}/missing.ome.zarr/s0": "input not found",
            f"{base}/img.ome.zarr/s7": "no zarr array or group there; the image's scales are s0, s1",
            f"{base}/private/img.zarr": "access denied",
            f"{base}/private/img.png": "access denied",
            f"{base}/missing.png": "input not found",
            f"http://127.0.0.1:{dead}/img.zarr/s0": "cannot connect",
        }
        for url, problem in cases.items():
            done = run_cli(f"--project={data_dir / PROJECT}", url, cwd=tmp_path)
            assert done.returncode == 2, done.stderr
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1, done.stderr
            assert url.split("/img")[0] in lines[0] or url in lines[0]
            assert problem in lines[0]
    assert not list(tmp_path.iterdir())


class socket_closed:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        return self.port

    def __exit__(self, *exc: object) -> None:
        return None


def test_s3_read_and_write_ome_zarr(
    data_dir: Path, s3: dict[str, str], local: dict[str, np.ndarray], tmp_path: Path
) -> None:
    """OME-Zarr 0.4 and 0.5 scales and N5 read from S3 predict as the local files; a
    multi-scale OME-Zarr written to S3 reads back equal to the local result."""
    results = predict(
        data_dir,
        tmp_path / "out",
        "s3://data/img.ome.zarr/s1",
        "s3://data/img5.ome.zarr/0",
        "s3://data/img.n5/raw",
        env=s3,
    )
    np.testing.assert_array_equal(results["img-s1"], local["half"])
    np.testing.assert_array_equal(results["img5-0"], local["full"])
    np.testing.assert_array_equal(results["img-raw"], local["full"])

    done = run_cli(
        f"--project={data_dir / PROJECT}",
        "--output_format=multi-scale OME-Zarr",
        "--output_filename_format=s3://results/pc/{nickname}_{result_type}.zarr",
        "s3://data/img.ome.zarr/s0",
        cwd=tmp_path,
        env=s3,
    )
    assert done.returncode == 0, done.stderr
    written = zarr.open_group(
        "s3://results/pc/img-s0_Probabilities.zarr",
        mode="r",
        storage_options={"endpoint_url": s3["AWS_ENDPOINT_URL"]},
    )
    multiscales = written.attrs["multiscales"]
    assert [a["name"] for a in multiscales[0]["axes"]] == list("tczyx")
    s0 = np.asarray(written["s0"][...])  # t, c, z, y, x
    np.testing.assert_array_equal(np.moveaxis(s0[0, :, 0], 0, -1), local["full"])


def test_s3_zarr_output_and_errors(
    data_dir: Path, s3: dict[str, str], local: dict[str, np.ndarray], tmp_path: Path
) -> None:
    """A plain zarr output to S3 (a new prefix needs no folder); a missing bucket, for input or
    output, and a non-zarr format to S3 are refused in one line before anything is written."""
    done = run_cli(
        f"--project={data_dir / PROJECT}",
        "--output_format=zarr",
        "--output_axis_order=yxc",
        "--output_filename_format=s3://results/new/prefix/{nickname}.zarr",
        "s3://data/img.ome.zarr/s1",
        cwd=tmp_path,
        env=s3,
    )
    assert done.returncode == 0, done.stderr
    array = zarr.open_array(
        "s3://results/new/prefix/img-s1.zarr",
        path="exported_data",
        mode="r",
        storage_options={"endpoint_url": s3["AWS_ENDPOINT_URL"]},
    )
    np.testing.assert_array_equal(array[...], local["half"])

    cases = [
        (["s3://nobucket/img.ome.zarr/s0"], "the bucket 'nobucket' does not exist"),
        (["s3://data/none.ome.zarr/s0"], "input not found"),
        (
            [
                "--output_format=zarr",
                "--output_filename_format=s3://nobucket/out.zarr",
                "s3://data/img.ome.zarr/s0",
            ],
            "the bucket 'nobucket' does not exist",
        ),
        (
            [
                "--output_format=hdf5",
                "--output_filename_format=s3://results/out.h5",
                "s3://data/img.ome.zarr/s0",
            ],
            "only zarr and OME-Zarr outputs can be written to s3://",
        ),
    ]
    for args, problem in cases:
        failed = run_cli(f"--project={data_dir / PROJECT}", *args, cwd=tmp_path, env=s3)
        assert failed.returncode == 2, failed.stderr
        lines = failed.stderr.strip().splitlines()
        assert len(lines) == 1, failed.stderr
        assert problem in lines[0]
        assert "s3://" in lines[0]
    with socket_closed() as dead:  # an S3 endpoint nothing answers: said so, not "no such bucket"
        unreachable = {**s3, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{dead}"}
        failed = run_cli(
            f"--project={data_dir / PROJECT}", "s3://data/img.ome.zarr/s0", cwd=tmp_path, env=unreachable
        )
    assert failed.returncode == 2
    assert failed.stderr.strip().splitlines() == [
        f'cascade: error: cannot read s3://data/img.ome.zarr/s0: cannot connect (Could not connect to the endpoint URL: "http://127.0.0.1:{dead}/data")'
    ]
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=s3["AWS_ENDPOINT_URL"], skip_instance_cache=True)
    assert not fs.exists("results/out.h5")
    assert not fs.exists("results/out.zarr")


def test_missing_remote_input_in_python() -> None:
    """open_image on a URL nothing answers raises DataError naming the URL."""
    with socket_closed() as dead:
        url = f"http://127.0.0.1:{dead}/img.ome.zarr/s0"
        with pytest.raises(DataError, match=f"cannot read {url}: cannot connect"):
            open_image(url)


def test_s3_without_credentials(
    data_dir: Path, s3: dict[str, str], local: dict[str, np.ndarray], tmp_path: Path
) -> None:
    """With no credentials anywhere, a public bucket is read anonymously and a private one
    is refused in one line saying access is denied."""
    anonymous = {
        key: value
        for key, value in os.environ.items()
        if key not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    anonymous.update(
        {key: value for key, value in s3.items() if key not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    )
    out = tmp_path / "out"
    out.mkdir()
    base = [f"--project={data_dir / PROJECT}", "--output_format=numpy", "--output_axis_order=yxc"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cascade",
            "--headless",
            *base,
            f"--output_filename_format={out}/{{nickname}}.npy",
            "s3://public/img.ome.zarr/s1",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=anonymous,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.load(out / "img-s1.npy"), local["half"])
    denied = subprocess.run(
        [
            sys.executable,
            "-m",
            "cascade",
            "--headless",
            *base,
            f"--output_filename_format={out}/x.npy",
            "s3://data/img.ome.zarr/s1",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=anonymous,
        timeout=600,
    )
    assert denied.returncode == 2
    assert denied.stderr.strip().splitlines() == [
        "cascade: error: cannot read s3://data/img.ome.zarr/s1: access denied (Forbidden)"
    ]
    assert not (out / "x.npy").exists()


def test_s3_write_metadata_last_and_removed_on_failure(s3: dict[str, str]) -> None:
    """While the chunks of an s3:// zarr output are written its array metadata is hidden (a
    reader sees no array); a write that fails leaves nothing under the output's name."""
    import dask.array as da

    from cascade.io import write_image
    from cascade.io._remote import read_bytes, remote_exists

    url = "s3://results/meta/out.zarr"
    seen: list[bytes | None] = []

    def watch(block: np.ndarray) -> np.ndarray:
        seen.append(read_bytes(f"{url}/exported_data/zarr.json"))
        return block

    data = da.ones((64, 64), dtype="uint8", chunks=32).map_blocks(watch, meta=np.empty((0, 0), "uint8"))
    assert write_image(data, url, format="zarr", axes="yx") == [url]
    assert len(seen) == 4
    assert seen == [None] * 4
    assert read_bytes(f"{url}/exported_data/zarr.json") is not None
    written = zarr.open_array(
        url, path="exported_data", mode="r", storage_options={"endpoint_url": s3["AWS_ENDPOINT_URL"]}
    )
    np.testing.assert_array_equal(written[...], np.ones((64, 64), "uint8"))

    def fail(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        if block_info is not None and block_info[0]["chunk-location"] == (1, 1):
            raise RuntimeError("disk on fire")
        return block

    broken = da.ones((64, 64), dtype="uint8", chunks=32).map_blocks(fail, meta=np.empty((0, 0), "uint8"))
    target = "s3://results/meta/broken.zarr"
    with pytest.raises(ExportError, match=f"cannot write {target}: disk on fire"):
        write_image(broken, target, format="multi-scale OME-Zarr", axes="yx")
    assert not remote_exists(target)


def test_url_placeholders(data_dir: Path, http_url: tuple[str, list[str]], tmp_path: Path) -> None:
    """With the default output name, a URL input's result goes to the project's folder
    ({dataset_dir}), named after the store and scale ({nickname}), not to the web server."""
    base, _ = http_url
    project = tmp_path / "project" / "PixelClass.ilp"
    project.parent.mkdir()
    project.write_bytes((data_dir / PROJECT).read_bytes())
    work = tmp_path / "cwd"
    work.mkdir()
    done = run_cli(f"--project={project}", "--output_format=numpy", f"{base}/img5.ome.zarr/1", cwd=work)
    assert done.returncode == 0, done.stderr
    written = project.parent / "img5-1_Probabilities.npy"
    assert done.stdout.startswith(str(written))
    assert np.load(written).shape == (64, 64, 2)  # the scale asked for, axes y, x and c
    assert not list(work.iterdir())
