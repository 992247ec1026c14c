"""Read MNIST-format IDX files (MNIST, Fashion-MNIST, KMNIST, ...), gzipped or not.

The IDX format (http://yann.lecun.com/exdb/mnist/, section "file formats") is
a 4-byte magic number -- two zero bytes, a type code, the number of
dimensions -- then one big-endian uint32 per dimension, then the data,
big-endian, in C order. Nothing else: no checksum, no trailer. So the only
way to catch a damaged file is to check every one of those facts, which is
what :func:`read_idx` does, raising an error that names the file and says
what is wrong with it.

Nothing here downloads anything: the data must already be on disk (see
:data:`HOW_TO_GET_DATA`).
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

__all__ = [
    "IDX_DTYPES",
    "DEFAULT_DATA_DIR",
    "HOW_TO_GET_DATA",
    "read_idx",
    "write_idx",
    "find_split_files",
    "load_split",
    "load_mnist",
]

#: IDX type code -> NumPy dtype (all big-endian in the file).
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

#: Where Debian's ``dataset-fashion-mnist`` package puts the four files.
DEFAULT_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")

HOW_TO_GET_DATA = (
    "To get Fashion-MNIST, install Debian's package (as root):\n"
    "    apt-get update && apt-get install -y dataset-fashion-mnist\n"
    f"which puts the four IDX files under {DEFAULT_DATA_DIR}/. Or pass --data DIR, "
    "where DIR holds the four files of any MNIST-format data set\n"
    "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
    "t10k-labels-idx1-ubyte, each optionally gzipped as NAME.gz)."
)

_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """The file's content, decompressed when it is gzip (by content, not name:
    mirrors and unpackers are careless about keeping the ``.gz`` suffix right)."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory, expected an IDX file")
    raw = path.read_bytes()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        # A truncated download is the usual cause; EOFError alone says little.
        raise ValueError(f"{path}: damaged gzip data ({type(exc).__name__}: {exc})") from exc


def read_idx(path, expected_ndim: int | None = None, expected_dtype=None) -> np.ndarray:
    """Read one IDX file into a NumPy array.

    Parameters
    ----------
    path : str or os.PathLike
        The file, plain or gzip-compressed (detected from its content).
    expected_ndim : int, optional
        Reject files with another number of dimensions (3 for images, 1 for
        labels).
    expected_dtype : dtype-like, optional
        Reject files whose type code denotes another element type (uint8 for
        the MNIST family).

    Returns
    -------
    numpy.ndarray
        The data, shaped as the header says, in native byte order.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is damaged or not what was expected: bad magic number,
        unknown or unexpected type code, wrong number of dimensions, data
        shorter or longer than the dimensions say, or broken gzip data. The
        message names the file.
    """
    path = Path(os.fspath(path))
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: truncated: {len(data)} bytes, too short for the 4-byte IDX magic number")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"{path}: bad magic number 0x{data[:4].hex()}: not an IDX file "
            "(an IDX file starts with two zero bytes, a type code and the number of dimensions)"
        )
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X} ({d.name})" for c, d in IDX_DTYPES.items())
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02X}; known codes: {known}")
    dtype = IDX_DTYPES[code]
    if expected_dtype is not None and dtype.newbyteorder("=") != np.dtype(expected_dtype).newbyteorder("="):
        raise ValueError(
            f"{path}: element type is {dtype.name} (IDX type code 0x{code:02X}), "
            f"expected {np.dtype(expected_dtype).name}"
        )
    if expected_ndim is not None and ndim != expected_ndim:
        raise ValueError(f"{path}: has {ndim} dimension(s), expected {expected_ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"{path}: truncated header: {ndim} dimension(s) need {header} bytes, the file has {len(data)}"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header
    if actual < expected:
        raise ValueError(
            f"{path}: truncated data: dimensions {dims} of {dtype.name} need {expected} bytes "
            f"after the header, the file has {actual}"
        )
    if actual > expected:
        raise ValueError(
            f"{path}: dimensions {dims} of {dtype.name} account for {expected} bytes after the "
            f"header, but the file has {actual}: the header does not match the data"
        )
    arr = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header)
    return arr.astype(dtype.newbyteorder("="), copy=True).reshape(dims)


def write_idx(path, array, gz: bool | None = None) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed when ``gz`` or the name ends in ``.gz``).

    Used by the tests to make small files; also handy to store a subset.
    """
    path = Path(os.fspath(path))
    array = np.asarray(array)
    codes = {d.newbyteorder("="): c for c, d in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(f"write_idx: dtype {array.dtype} has no IDX type code")
    head = bytes([0, 0, codes[native], array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    body = array.astype(IDX_DTYPES[codes[native]], copy=False).tobytes(order="C")
    blob = head + body
    if gz if gz is not None else path.suffix == ".gz":
        blob = gzip.compress(blob, mtime=0)
    path.write_bytes(blob)
    return path


def _candidates(directory: Path, split: str, kind: str, idx_ndim: int):
    # Canonical names first, then the dotted variant some mirrors use
    # (train-images.idx3-ubyte), each plain or gzipped.
    for stem in (f"{split}-{kind}-idx{idx_ndim}-ubyte", f"{split}-{kind}.idx{idx_ndim}-ubyte"):
        for suffix in ("", ".gz"):
            yield directory / (stem + suffix)


def find_split_files(directory, split: str) -> tuple[Path, Path]:
    """Locate the image and label files of ``split`` ('train' or 't10k') in ``directory``.

    Raises
    ------
    FileNotFoundError
        Naming every file name tried and how to get the data.
    """
    directory = Path(os.fspath(directory))
    if not directory.is_dir():
        raise FileNotFoundError(f"data directory {directory} does not exist.\n{HOW_TO_GET_DATA}")
    found = []
    for kind, nd in (("images", 3), ("labels", 1)):
        tried = list(_candidates(directory, split, kind, nd))
        hit = next((p for p in tried if p.is_file()), None)
        if hit is None:
            names = ", ".join(p.name for p in tried)
            raise FileNotFoundError(
                f"no {split} {kind} file in {directory} (tried {names}).\n{HOW_TO_GET_DATA}"
            )
        found.append(hit)
    return found[0], found[1]


def load_split(images_path, labels_path) -> tuple[np.ndarray, np.ndarray]:
    """Read a matching pair of image (N, H, W) and label (N,) uint8 IDX files.

    Raises
    ------
    ValueError
        If either file is damaged (see :func:`read_idx`) or the two disagree
        on the number of examples.
    """
    images = read_idx(images_path, expected_ndim=3, expected_dtype=np.uint8)
    labels = read_idx(labels_path, expected_ndim=1, expected_dtype=np.uint8)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds "
            f"{labels.shape[0]} labels: the files do not belong together"
        )
    return images, labels


def load_mnist(directory=None):
    """Load the train and test splits of an MNIST-format data set.

    Parameters
    ----------
    directory : str or os.PathLike, optional
        Folder with the four IDX files; default :data:`DEFAULT_DATA_DIR`
        (Fashion-MNIST from Debian's ``dataset-fashion-mnist``).

    Returns
    -------
    (train_images, train_labels), (test_images, test_labels)
        uint8 arrays of shapes (N, H, W) and (N,).
    """
    directory = DEFAULT_DATA_DIR if directory is None else Path(os.fspath(directory))
    train = load_split(*find_split_files(directory, "train"))
    test = load_split(*find_split_files(directory, "t10k"))
    if train[0].shape[1:] != test[0].shape[1:]:
        raise ValueError(
            f"{directory}: train images are {train[0].shape[1:]} but test images are "
            f"{test[0].shape[1:]}: the files come from different data sets"
        )
    return train, test
