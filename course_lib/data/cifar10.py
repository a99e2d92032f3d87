"""CIFAR-10 from the official python-pickle batches, and a verified downloader.

The official archive (https://www.cs.toronto.edu/~kriz/cifar.html) unpacks to
`cifar-10-batches-py/` holding data_batch_1..5 (10000 training images each), test_batch (10000)
and batches.meta (the class names). Each batch is a pickled dict: b'data' is a uint8 array
(10000, 3072) whose rows are the red, green and blue 32x32 planes in row-major order (so a
reshape gives NCHW directly), b'labels' a list of ints 0..9.

Unpickling is unsafe for untrusted files: pickle calls whatever functions a file names, so a
tampered "batch" could run arbitrary code. We unpickle with `_BatchUnpickler`, which resolves
only the few NumPy functions that rebuild an array; any other global is refused.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from course_lib.data.digits import check_float_dtype
from course_lib.validation import check_nonnegative_int

try:  # NumPy >= 2 keeps the array-reconstruction helpers in numpy._core
    from numpy._core.multiarray import _reconstruct
    from numpy._core.numeric import _frombuffer
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.multiarray import _reconstruct
    from numpy.core.numeric import _frombuffer

__all__ = ["CIFAR10_URL", "CIFAR10_MD5", "CIFAR10_FOLDER", "load_cifar10_batch", "load_cifar10",
           "download_cifar10"]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FOLDER = "cifar-10-batches-py"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"
REQUIRED_FILES = (*TRAIN_BATCHES, TEST_BATCH, META_FILE)
IMAGE_SHAPE = (3, 32, 32)
NUM_CLASSES = 10
DOWNLOAD_TIMEOUT_SECONDS = 60
CHUNK_BYTES = 1 << 20


def _latin1_encode(text: str, encoding: str) -> bytes:
    """What Python 3 writes for bytes in protocol-2 pickles; only the latin1 form is accepted."""
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


# The globals a CIFAR-10 batch may name. The official files (Python 2 cPickle) use the
# numpy.core names; files re-pickled by NumPy 2 use numpy._core, protocol 5 uses _frombuffer.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class _BatchUnpickler(pickle.Unpickler):
    """An Unpickler that builds only builtin containers and NumPy arrays (see module doc)."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load the global {module}.{name}: a CIFAR-10 batch holds only "
                f"dicts, lists, bytes and NumPy arrays, so this is not a genuine batch file "
                f"(loading it could run arbitrary code)") from None


def _missing_file_error(filename: Path, dest_hint: Path) -> FileNotFoundError:
    return FileNotFoundError(
        f"CIFAR-10 file {str(filename)!r} not found. Get the data with "
        f"course_lib.download_cifar10({str(dest_hint)!r}) (a 163 MB download, checked against "
        f"its MD5), which creates {str(dest_hint / CIFAR10_FOLDER)!r}; then pass that folder "
        f"(or its parent) as path.")


def _unpickle(filename: Path) -> Any:
    if not filename.is_file():
        raise _missing_file_error(filename, filename.parent.parent
                                  if filename.parent.name == CIFAR10_FOLDER else filename.parent)
    with open(filename, "rb") as f:
        try:
            return _BatchUnpickler(f, encoding="bytes").load()
        except pickle.UnpicklingError as e:
            raise pickle.UnpicklingError(f"{filename}: {e}") from None


def _read_batch(filename: Path) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images (N, 3, 32, 32), int64 labels (N,)) from one batch file, checked."""
    batch = _unpickle(filename)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise ValueError(f"{filename} must hold a dict with keys b'data' and b'labels' (a "
                         f"CIFAR-10 python batch); got {keys}")
    data, labels = batch[b"data"], np.asarray(batch[b"labels"])
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
            or data.shape[1] != int(np.prod(IMAGE_SHAPE))):
        got = (f"dtype {data.dtype} shape {data.shape}" if isinstance(data, np.ndarray)
               else type(data).__name__)
        raise ValueError(f"{filename}: b'data' must be a uint8 array (N, 3072); got {got}")
    if (labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer)
            or (labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES))):
        raise ValueError(f"{filename}: b'labels' must be {data.shape[0]} ints in "
                         f"[0, {NUM_CLASSES}); got shape {labels.shape}, dtype {labels.dtype}")
    return data.reshape(-1, *IMAGE_SHAPE), labels.astype(np.int64)


def _check_path(path: Any, name: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or pathlib.Path; got {type(path).__name__}")
    return Path(path)


def load_cifar10_batch(filename: str | os.PathLike,
                       dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch file -> (X, y).

    X: (N, 3, 32, 32) of `dtype`, raw pixel values 0..255 (not scaled, as in CS231n);
    y: (N,) int64 labels 0..9.
    """
    filename = _check_path(filename, "filename")
    dtype = check_float_dtype(dtype)
    X, y = _read_batch(filename)
    return X.astype(dtype), y


def _batches_dir(path: Path) -> Path:
    """Accept the cifar-10-batches-py folder itself or the folder that contains it."""
    if not (path / TRAIN_BATCHES[0]).exists() and (path / CIFAR10_FOLDER).is_dir():
        return path / CIFAR10_FOLDER
    return path


def load_cifar10(path: str | os.PathLike, num_training: int = 49000, num_validation: int = 1000,
                 num_test: int = 1000, dtype: Any = np.float32) -> dict[str, Any]:
    """Load CIFAR-10 and split it as CS231n does.

    path: the cifar-10-batches-py folder, or the folder containing it (download_cifar10's dest).
    Returns a dict:
        X_train (num_training, 3, 32, 32): the first num_training training images;
        X_val (num_validation, 3, 32, 32): the next num_validation training images;
        X_test (num_test, 3, 32, 32):      the first num_test images of test_batch;
        y_train, y_val, y_test:            int64 labels 0..9;
        class_names:                       ('airplane', 'automobile', ..., 'truck').
    Images are raw pixel values 0..255 as `dtype` (subtract the mean image before training).
    """
    folder = _batches_dir(_check_path(path, "path"))
    num_training = check_nonnegative_int(num_training, "num_training")
    num_validation = check_nonnegative_int(num_validation, "num_validation")
    num_test = check_nonnegative_int(num_test, "num_test")
    dtype = check_float_dtype(dtype)

    # Check every file exists before reading 180 MB, so a missing file fails fast.
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            hint = folder.parent if folder.name == CIFAR10_FOLDER else folder
            raise _missing_file_error(folder / name, hint)
    meta = _unpickle(folder / META_FILE)
    if not isinstance(meta, dict) or b"label_names" not in meta:
        raise ValueError(f"{folder / META_FILE} must hold a dict with key b'label_names'")
    class_names = tuple(n.decode() if isinstance(n, bytes) else str(n)
                        for n in meta[b"label_names"])

    train = [_read_batch(folder / name) for name in TRAIN_BATCHES]
    X_all = np.concatenate([X for X, _ in train])      # uint8, cast after slicing (memory)
    y_all = np.concatenate([y for _, y in train])
    if num_training + num_validation > len(X_all):
        raise ValueError(f"num_training + num_validation must be at most the {len(X_all)} "
                         f"training images in {folder}; got {num_training} + {num_validation}")
    X_test_all, y_test_all = _read_batch(folder / TEST_BATCH)
    if num_test > len(X_test_all):
        raise ValueError(f"num_test must be at most the {len(X_test_all)} images in "
                         f"{folder / TEST_BATCH}; got {num_test}")

    val = slice(num_training, num_training + num_validation)
    return {
        "X_train": X_all[:num_training].astype(dtype), "y_train": y_all[:num_training],
        "X_val": X_all[val].astype(dtype), "y_val": y_all[val],
        "X_test": X_test_all[:num_test].astype(dtype), "y_test": y_test_all[:num_test],
        "class_names": class_names,
    }


def _md5(filename: Path) -> str:
    digest = hashlib.md5()
    with open(filename, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url: str, target: Path, md5: str, progress: bool) -> None:
    """Stream url to target via target.part, checking the MD5; nothing is left on failure."""
    from tqdm.auto import tqdm

    partial = target.with_name(target.name + ".part")
    digest = hashlib.md5()
    try:
        try:
            response = urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS)
        except urllib.error.URLError as e:
            raise OSError(f"could not download {url}: {e.reason}. Check the network connection, "
                          f"or download the file by hand and save it as {target}") from e
        with response, open(partial, "wb") as out:
            length = response.headers.get("Content-Length")
            with tqdm(total=int(length) if length else None, unit="B", unit_scale=True,
                      unit_divisor=1024, desc=target.name, disable=not progress) as bar:
                for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if digest.hexdigest() != md5:
        partial.unlink(missing_ok=True)
        raise ValueError(
            f"MD5 checksum mismatch for {url}: expected {md5}, got {digest.hexdigest()}. The "
            f"download is corrupt or incomplete and was deleted; run download_cifar10 again.")
    partial.replace(target)


def _safe_members(archive: tarfile.TarFile, archive_path: Path, dest: Path) -> list:
    """All members, after checking none is a link/device or would land outside dest."""
    root = dest.resolve()
    members = archive.getmembers()
    for member in members:
        target = (root / member.name).resolve()
        if member.name.startswith(("/", "\\")) or not target.is_relative_to(root):
            raise ValueError(f"refusing to extract {archive_path}: member {member.name!r} would "
                             f"be written outside {dest} (path traversal)")
        if not (member.isfile() or member.isdir()):
            raise ValueError(f"refusing to extract {archive_path}: member {member.name!r} is a "
                             f"link or special file; the CIFAR-10 archive holds only files")
    return members


def _extract(archive_path: Path, dest: Path) -> None:
    """Extract safely into a temporary folder, then move the batch files into place."""
    with tarfile.open(archive_path, "r:*") as archive:
        members = _safe_members(archive, archive_path, dest)
        with tempfile.TemporaryDirectory(dir=dest, prefix=".extract-") as tmp:
            # The 'data' filter (Python >= 3.11.4) repeats our checks inside tarfile itself.
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            archive.extractall(tmp, members=members, **extra)
            extracted = Path(tmp) / CIFAR10_FOLDER
            missing = [n for n in REQUIRED_FILES if not (extracted / n).is_file()]
            if missing:
                raise ValueError(f"{archive_path} is not the CIFAR-10 python archive: it lacks "
                                 f"{CIFAR10_FOLDER}/{missing[0]}")
            final = dest / CIFAR10_FOLDER
            final.mkdir(exist_ok=True)
            for item in extracted.iterdir():
                if final.joinpath(item.name).is_dir():
                    shutil.rmtree(final / item.name)
                os.replace(item, final / item.name)


def download_cifar10(dest_dir: str | os.PathLike, url: str = CIFAR10_URL, md5: str = CIFAR10_MD5,
                     progress: bool = True) -> Path:
    """Download, verify and extract CIFAR-10 into dest_dir; return dest_dir/cifar-10-batches-py.

    Steps, each skipped when already done: (1) if dest_dir/cifar-10-batches-py holds all seven
    batch files, return at once; (2) if dest_dir/cifar-10-python.tar.gz exists and its MD5
    equals `md5`, reuse it; otherwise download `url` with a progress bar (tqdm) and check the
    MD5 (on a mismatch the file is deleted and ValueError reports both checksums); (3) extract,
    refusing members that are links or would land outside dest_dir. The archive is kept so a
    later call can re-extract without downloading; delete it to save 163 MB.
    """
    dest = _check_path(dest_dir, "dest_dir")
    if not isinstance(url, str):
        raise TypeError(f"url must be a str; got {type(url).__name__}")
    if (not isinstance(md5, str) or len(md5) != 32
            or any(c not in "0123456789abcdef" for c in md5.lower())):
        raise ValueError(f"md5 must be a 32-digit hexadecimal string; got {md5!r}")
    md5 = md5.lower()
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False; got {type(progress).__name__}")

    batches = dest / CIFAR10_FOLDER
    if all((batches / name).is_file() for name in REQUIRED_FILES):
        return batches
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / ARCHIVE_NAME
    if not (archive.is_file() and _md5(archive) == md5):
        _download(url, archive, md5, progress)
    _extract(archive, dest)
    return batches
