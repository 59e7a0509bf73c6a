"""Remote stores: ``http(s)://`` and ``s3://`` URLs, read and written through fsspec.

Zarr (v2, v3), OME-Zarr (0.4, 0.5) and N5 stores are read chunk by chunk from a URL; zarr
and OME-Zarr outputs can be written to ``s3://``. S3 credentials and endpoint come from
botocore's usual chain: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``
and ``~/.aws``, ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``; without credentials, S3
is read anonymously (public buckets). fsspec, s3fs and aiohttp are imported only when a
URL is used, so local runs do not pay for them.

Every failure becomes one line naming the URL and the problem: cannot connect, not found,
access denied, no such bucket.
"""

from __future__ import annotations

import contextlib
import functools
import os
import posixpath
import re
from collections.abc import Iterator
from typing import Any

from ..errors import CascadeError, DataError, ExportError
from ._sources import one_line

__all__ = [
    "check_remote_parent",
    "describe",
    "filesystem",
    "is_url",
    "join",
    "metadata_last",
    "probe",
    "read_bytes",
    "remote_dir",
    "remote_error",
    "remote_exists",
    "storage_options",
    "zarr_options",
]

_URL = re.compile(r"^(?:https?|s3)://", re.IGNORECASE)
#: Metadata files whose presence makes a URL a zarr or N5 node.
_ZARR_KEYS = ("zarr.json", ".zarray", ".zgroup", ".zattrs")


def is_url(path: str) -> bool:
    """True if ``path`` is an ``http://``, ``https://`` or ``s3://`` URL.

    Parameters
    ----------
    path : str
        A path or URL.

    Returns
    -------
    bool
        Whether it is a URL cascade reads remotely.

    Examples
    --------
    >>> is_url("https://s3.embl.de/i2k-2020/platy-raw.ome.zarr/s6"), is_url("/data/img.zarr")
    (True, False)
    """
    return bool(_URL.match(path))


def join(base: str, *parts: str) -> str:
    """Join path components: with ``/`` for URLs, :func:`os.path.join` otherwise.

    Examples
    --------
    >>> join("s3://bucket/img.zarr/", "s0", ".zarray")
    's3://bucket/img.zarr/s0/.zarray'
    """
    if is_url(base):
        return posixpath.join(base.rstrip("/"), *(p.strip("/") for p in parts if p))
    return os.path.join(base, *parts)


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower()


def _has_s3_credentials() -> bool:
    # looked up once per set of AWS_* variables: each lookup reads files and builds a session
    return _credentials_found(tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))))


@functools.lru_cache(maxsize=8)
def _credentials_found(aws_environment: tuple[tuple[str, str], ...]) -> bool:
    import botocore.session

    return botocore.session.Session().get_credentials() is not None


def storage_options(url: str) -> dict[str, Any]:
    """fsspec options for ``url``.

    Parameters
    ----------
    url : str
        An ``http(s)://`` or ``s3://`` URL.

    Returns
    -------
    dict
        Empty for HTTP. For S3: ``endpoint_url`` from ``AWS_ENDPOINT_URL_S3`` or
        ``AWS_ENDPOINT_URL`` if set, and ``anon=True`` when botocore's chain (environment,
        ``~/.aws``, instance metadata unless disabled) finds no credentials.
    """
    if _scheme(url) != "s3":
        return {}
    options: dict[str, Any] = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["endpoint_url"] = endpoint
    if not _has_s3_credentials():
        options["anon"] = True
    return options


def zarr_options(path: str) -> dict[str, Any]:
    """Keyword arguments for ``zarr.open*`` on ``path``.

    Parameters
    ----------
    path : str
        A local path or a URL.

    Returns
    -------
    dict
        ``{"storage_options": ...}`` for a URL (see :func:`storage_options`), else empty.
    """
    return {"storage_options": storage_options(path)} if is_url(path) else {}


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` and the path within it.

    Parameters
    ----------
    url : str
        An ``http(s)://`` or ``s3://`` URL.

    Returns
    -------
    fs : fsspec.AbstractFileSystem
        The (cached) filesystem, configured by :func:`storage_options`.
    path : str
        ``url`` as that filesystem names it (``bucket/key`` for S3, the URL for HTTP).
    """
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **storage_options(url))
    return fs, str(path)


def describe(err: BaseException) -> str:
    """What went wrong with a remote request, in a few words.

    Parameters
    ----------
    err : BaseException
        An error raised by fsspec, s3fs, botocore or aiohttp.

    Returns
    -------
    str
        ``access denied (...)``, ``the bucket does not exist``, ``not found (404)``,
        ``cannot connect (...)``, or the error's own text, on one line.
    """
    text = one_line(err)
    status = getattr(err, "status", None)
    if isinstance(err, PermissionError) or status in (401, 403) or "AccessDenied" in text:
        return f"access denied ({text})"
    if "NoSuchBucket" in text or "bucket does not exist" in text:
        return "the bucket does not exist"
    if isinstance(err, FileNotFoundError) or status == 404:
        return "not found (404)"
    name = type(err).__name__
    if isinstance(err, (ConnectionError, TimeoutError)) or "Connect" in name or "Timeout" in name:
        return f"cannot connect ({text})"
    return text


def remote_error(url: str, err: BaseException, *, write: bool = False) -> CascadeError:
    """The error to raise for a failed request to ``url``.

    Parameters
    ----------
    url : str
        The URL the user gave (named in the message).
    err : BaseException
        What went wrong; a :class:`CascadeError` is returned as it is.
    write : bool
        True for an output: an :class:`ExportError` "cannot write ...", else a
        :class:`DataError` "cannot read ...".

    Returns
    -------
    CascadeError
        An error with a one-line message (see :func:`describe`).
    """
    if isinstance(err, CascadeError):
        return err
    kind = ExportError if write else DataError
    return kind(f"cannot {'write' if write else 'read'} {url}: {describe(err)}")


def read_bytes(url: str) -> bytes | None:
    """The content at ``url``.

    Parameters
    ----------
    url : str
        The URL of one object (file).

    Returns
    -------
    bytes or None
        The object's bytes, or None if there is nothing there (HTTP 404, missing S3 key).

    Raises
    ------
    Exception
        The filesystem's error for anything else: refused, unreachable, missing bucket.
    """
    fs, path = filesystem(url)
    try:
        return bytes(fs.cat_file(path))
    except FileNotFoundError as err:
        if "bucket" in one_line(err).lower():
            raise
        return None


def remote_exists(url: str) -> bool:
    """True if anything (an object, or objects under the prefix) exists at ``url``.

    Parameters
    ----------
    url : str
        An ``http(s)://`` or ``s3://`` URL.

    Returns
    -------
    bool
        False only when the server says there is nothing there.

    Unlike fsspec's ``exists``, a refused request (access denied, no connection) raises.
    """
    fs, path = filesystem(url)
    try:
        if _scheme(url) == "s3":
            fs.info(path)
        else:  # fsspec reports every failed HTTP HEAD as missing: ask for one byte instead
            fs.cat_file(path, start=0, end=1)
    except FileNotFoundError as err:
        if "bucket" in one_line(err).lower():
            raise
        return False
    return True


def _bucket_exists(url: str) -> bool:
    """Ask S3 about the bucket of ``url``: an unreachable endpoint fails in seconds (one
    attempt), rather than after botocore's retries, and is not taken for a missing bucket."""
    import fsspec

    quick = {"connect_timeout": 10, "retries": {"max_attempts": 1}}
    fs = fsspec.filesystem("s3", **storage_options(url), config_kwargs=quick)
    try:
        fs.call_s3("head_bucket", Bucket=filesystem(url)[1].split("/", 1)[0])
    except FileNotFoundError:
        return False
    except PermissionError:  # may be refused while its objects can be read
        return True
    return True


def probe(url: str) -> str | None:
    """The store format at ``url`` (``"zarr"`` or ``"n5"``) from its metadata files, or None.

    Raises
    ------
    DataError
        If the host cannot be reached, access is denied, or the S3 bucket does not exist.
    """
    try:
        if _scheme(url) == "s3" and not _bucket_exists(url):
            bucket = filesystem(url)[1].split("/", 1)[0]
            raise DataError(f"cannot read {url}: the bucket {bucket!r} does not exist")
        for key in _ZARR_KEYS:
            if read_bytes(join(url, key)) is not None:
                return "zarr"
        attrs = read_bytes(join(url, "attributes.json"))
    except CascadeError:
        raise
    except Exception as err:
        raise remote_error(url, err) from err
    return "n5" if attrs is not None else None


def check_remote_parent(final: str) -> None:
    """Check that an output can go to the URL ``final`` (nothing is created: on S3 a
    "folder" is a key prefix).

    Parameters
    ----------
    final : str
        The output's URL.

    Raises
    ------
    ExportError
        If ``final`` is an ``http(s)://`` URL (read-only), its bucket does not exist, or
        the endpoint cannot be reached or refuses access.
    """
    if _scheme(final) != "s3":
        raise ExportError(f"cannot write {final}: http(s) URLs are read-only; write to a local path or s3://")
    try:
        found = _bucket_exists(final)
    except Exception as err:
        raise remote_error(final, err, write=True) from err
    if not found:
        bucket = filesystem(final)[1].split("/", 1)[0]
        raise ExportError(f"cannot write {final}: the bucket {bucket!r} does not exist")


@contextlib.contextmanager
def remote_dir(final: str) -> Iterator[str]:
    """Write a directory-like output in place at the URL ``final`` (object stores cannot
    rename), deleting everything under it if the block fails or is interrupted.

    Parameters
    ----------
    final : str
        The output's URL.

    Yields
    ------
    str
        ``final``. Errors that are not :class:`CascadeError` leave the block as
        :class:`ExportError` naming it.
    """
    try:
        yield final
    except BaseException as err:
        with contextlib.suppress(Exception):  # best effort: the original error matters more
            fs, path = filesystem(final)
            if fs.exists(path):
                fs.rm(path, recursive=True)
        if isinstance(err, Exception) and not isinstance(err, CascadeError):
            raise remote_error(final, err, write=True) from err
        raise


_METADATA_KEYS = ("zarr.json", ".zarray", ".zattrs")


@contextlib.contextmanager
def metadata_last(array_url: str) -> Iterator[None]:
    """Hide the metadata of the zarr array at ``array_url`` while its chunks are written.

    The open array object keeps its metadata in memory, so writing goes on; a reader sees
    no array until the block ends and the metadata is put back. An output interrupted
    where nothing can clean it up (the process killed) then never looks complete.

    Parameters
    ----------
    array_url : str
        The URL of a zarr (v2 or v3) array just created.

    Yields
    ------
    None
        While the chunks are written.
    """
    saved = {key: read_bytes(join(array_url, key)) for key in _METADATA_KEYS}
    present = {key: raw for key, raw in saved.items() if raw is not None}
    fs, _ = filesystem(array_url)
    for key in present:
        fs.rm_file(filesystem(join(array_url, key))[1])
    yield
    for key, raw in present.items():
        fs.pipe_file(filesystem(join(array_url, key))[1], raw)
