"""Where the datasets are: --data-dir, the Keras cache, Debian's package, or a one-time download.

Searched in that order. A folder holds a dataset either as the original IDX files
(`<root>/<name>/train-images-idx3-ubyte.gz` …, the layout of ../shared/data, of Keras's
Fashion-MNIST cache and of Debian's `dataset-fashion-mnist`) or, for MNIST, as Keras's
`mnist.npz` (`<root>/mnist.npz` in the Keras cache, or `<root>/mnist/mnist.npz`).
"""

from __future__ import annotations

import functools
import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .idx import IdxError, read_idx

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
# Keras's own checksum for mnist.npz (keras/src/datasets/mnist.py).
MNIST_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
# The SHA-256 of Fashion-MNIST's original files, whose MD5s its README publishes
# (8d4fb7e6…, 25c81989…, bef4ecab…, bb300cfd…); Keras serves those very bytes.
FASHION_SHA256 = {
    "train-images-idx3-ubyte": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
DEBIAN_DIR = Path("/usr/share/datasets")


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    npz_name: str | None  # the single-file form Keras caches, if any
    how_to_get: str
    train_per_class: int = 6000  # in the original training split (MNIST's: on average)


DATASETS = {
    "fashion-mnist": DatasetInfo(
        "fashion-mnist", None,
        "install Debian's package (apt-get install dataset-fashion-mnist), pass --data-dir "
        "DIR with DIR/fashion-mnist/ holding the four original .gz files, or run `grader data "
        "--fetch` where there is a network"),
    "mnist": DatasetInfo(
        "mnist", "mnist.npz",
        "pass --data-dir DIR with DIR/mnist/ holding the four original .gz files (or "
        "Keras's mnist.npz), put mnist.npz in ~/.keras/datasets/, or run `grader data "
        "--fetch` where there is a network"),
}


class DatasetError(Exception):
    """A dataset cannot be found or read; the message says how to provide it."""


@dataclass(frozen=True)
class Location:
    where: Path  # a folder of IDX files or an .npz file
    layout: str  # "idx" | "npz"
    origin: str  # "data-dir" | "keras-cache" | "debian" | "download"


@dataclass(frozen=True)
class Dataset:
    name: str
    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    location: Location


def _keras_cache() -> Path:
    home = os.environ.get("KERAS_HOME")
    return (Path(home) if home else Path.home() / ".keras") / "datasets"


def _roots(data_dir: Path | None) -> list[tuple[Path, str]]:
    roots = [(data_dir.expanduser().resolve(), "data-dir")] if data_dir else []
    return roots + [(_keras_cache(), "keras-cache"), (DEBIAN_DIR, "debian")]


def _idx_complete(folder: Path) -> bool:
    return all(_idx_file(folder, stem) is not None for stem in IDX_FILES)


def _idx_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _find_in(root: Path, info: DatasetInfo, origin: str) -> Location | None:
    folder = root / info.name
    if _idx_complete(folder):
        return Location(folder, "idx", origin)
    if info.npz_name:
        for npz in (root / info.npz_name, folder / info.npz_name):
            if npz.is_file():
                return Location(npz, "npz", origin)
    return None


def locate(name: str, data_dir: Path | None = None) -> Location | None:
    """The first place holding the dataset, without downloading."""
    info = _info(name)
    for root, origin in _roots(data_dir):
        found = _find_in(root, info, origin)
        if found:
            return found
    return None


def _info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})") from None


def load(name: str, data_dir: Path | None = None, download: bool | None = None) -> Dataset:
    """Find (or, in real use, download once) and decode a dataset."""
    location = locate(name, data_dir)
    if location is None:
        allowed = download if download is not None else not os.environ.get("GRADER_OFFLINE")
        if not allowed:
            raise DatasetError(f"{name} not found; {_info(name).how_to_get}")
        location = _download(_info(name))
    return _decode(location, name)


@functools.lru_cache(maxsize=4)  # a batch grades many notebooks on the same dataset
def _decode(location: Location, name: str) -> Dataset:
    try:
        if location.layout == "npz":
            with np.load(location.where, allow_pickle=False) as f:
                train, test = (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
        else:
            x_tr, y_tr, x_te, y_te = (_decoded(_idx_file(location.where, s)) for s in IDX_FILES)
            train, test = (x_tr, y_tr), (x_te, y_te)
    except (OSError, IdxError, KeyError, ValueError) as exc:
        raise DatasetError(f"cannot read the dataset at {location.where}: {exc}") from exc
    for x, y in (train, test):
        if x.shape[1:] != (28, 28) or len(x) != len(y):
            raise DatasetError(f"{location.where}: images {x.shape}, labels {y.shape}; "
                               "expected (N, 28, 28) and (N,)")
    return Dataset(name, train, test, location)


def _decoded(path: Path) -> np.ndarray:
    """read_idx, remembered decoded in the grader's cache folder: un-gzipping the training
    images costs more than half a second, for every notebook of a batch. Keyed by the file's
    place, size and time; a cache that cannot be read or written is ignored."""
    from ..environment import cache_dir

    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    cached = cache_dir() / "datasets" / f"{key.hexdigest()[:24]}.npy"
    try:
        array = np.load(cached, mmap_mode="r", allow_pickle=False)
        if array.dtype == np.uint8:
            return array
    except (OSError, ValueError):
        pass
    array = read_idx(path)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}")
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
        os.replace(tmp, cached)
    except OSError:
        pass
    return array


def _download(info: DatasetInfo) -> Location:
    cache = _keras_cache()
    try:
        if info.npz_name:
            target = cache / info.npz_name
            _fetch(KERAS_URL + info.npz_name, target, MNIST_NPZ_SHA256)
            return Location(target, "npz", "download")
        folder = cache / info.name
        for stem in IDX_FILES:
            _fetch(f"{KERAS_URL}{stem}.gz", folder / f"{stem}.gz", FASHION_SHA256[stem])
        return Location(folder, "idx", "download")
    except OSError as exc:
        raise DatasetError(f"{info.name} not found and the download failed ({exc}); "
                           f"{info.how_to_get}") from exc


def fetch(name: str) -> Location:
    """`grader data --fetch`: download a dataset that is not found into the Keras cache, from
    where Keras itself downloads it, each file checked against its published checksum."""
    return locate(name) or _download(_info(name))


def _fetch(url: str, target: Path, sha256: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
        out.write(response.read())
    if hashlib.sha256(tmp.read_bytes()).hexdigest() != sha256:
        tmp.unlink()
        raise OSError(f"checksum mismatch for {url}")
    tmp.replace(target)


def describe(data_dir: Path | None = None) -> list[str]:
    """What `grader data` prints: each dataset, where it is found, or how to provide it."""
    lines = []
    for name, info in DATASETS.items():
        location = locate(name, data_dir)
        if location is None:
            lines.append(f"{name}: not found; {info.how_to_get}")
            continue
        dataset = _decode(location, name)
        lines.append(f"{name}: {location.where} ({location.origin}, {location.layout}); "
                     f"train {len(dataset.train[1]):,}, test {len(dataset.test[1]):,}")
    searched = ", ".join(str(root) for root, _ in _roots(data_dir))
    lines.append(f"searched: {searched}")
    return lines
