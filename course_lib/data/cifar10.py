"""CIFAR-10 from the official python-pickle batches, and a verified downloader.

The official archive (https://www.cs.toronto.edu/~kriz/cifar.html) unpacks to
`cifar-10-batches-py/` holding data_batch_1..5 (10000 training images each), test_batch (10000)
and batches.meta (the class names). Each batch is a pickled dict: b'data' is a uint8 array
(10000, 3072) whose rows are the red, green and blue 32x32 planes in row-major order (so a
reshape gives NCHW directly), b'labels' a list of ints 0..9.

Where it lives: `download_cifar10` and the command `python -m course_lib.data download cifar10
[--dir DIR]` put the archive and cifar-10-batches-py/ into DIR, by default $COURSE_LIB_DATA
if set, else ~/.cache/course_lib/cifar10 (default_cifar10_dir()), which is where load_cifar10
and load_dataset('cifar10') look when no path is given. The download shows a progress bar,
resumes an interrupted transfer with an HTTP Range request (the bytes received so far are kept
in a .part file), and checks the archive's MD5 before extracting.

Unpickling is unsafe for untrusted files: pickle calls whatever functions a file names, so a
tampered "batch" could run arbitrary code. We unpickle with `_BatchUnpickler`, which resolves
only the few NumPy functions that rebuild an array; any other global is refused.
"""

from __future__ import annotations

import codecs
import hashlib
import http.client
import os
import pickle
import shutil
import tarfile
import tempfile
import time
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

__all__ = ["CIFAR10_URL", "CIFAR10_MD5", "CIFAR10_FOLDER", "default_cifar10_dir",
           "cifar10_available", "load_cifar10_batch", "load_cifar10", "download_cifar10"]

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
# An interrupted transfer is resumed at once, up to this many requests in one call, a short
# pause apart; after that the bytes received stay in the .part file for the next call.
DOWNLOAD_ATTEMPTS = 4
RETRY_DELAY_SECONDS = 2.0
DATA_DIR_VARIABLE = "COURSE_LIB_DATA"
DOWNLOAD_COMMAND = "python -m course_lib.data download cifar10"


def default_cifar10_dir() -> Path:
    """Where CIFAR-10 is downloaded to and looked for: $COURSE_LIB_DATA if set, else
    ~/.cache/course_lib/cifar10 ($XDG_CACHE_HOME instead of ~/.cache when that is set)."""
    if os.environ.get(DATA_DIR_VARIABLE):
        return Path(os.environ[DATA_DIR_VARIABLE]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "course_lib" / "cifar10"


def _download_hint(dest: Path) -> str:
    """The command that downloads CIFAR-10 into dest (no --dir for the default folder)."""
    if dest == default_cifar10_dir():
        return DOWNLOAD_COMMAND
    return f"{DOWNLOAD_COMMAND} --dir {str(dest)!r}"


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
        f"CIFAR-10 file {str(filename)!r} not found. Get the data (a 163 MB download, checked "
        f"against its MD5) with the command\n    {_download_hint(dest_hint)}\nor "
        f"course_lib.download_cifar10({str(dest_hint)!r}) in Python; either creates "
        f"{str(dest_hint / CIFAR10_FOLDER)!r}. The embedded data sets 'mnist' and 'digits' "
        f"need no download.")


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


def cifar10_available(path: str | os.PathLike | None = None) -> bool:
    """True if all seven batch files are in path (default: default_cifar10_dir())."""
    folder = _batches_dir(default_cifar10_dir() if path is None else _check_path(path, "path"))
    return all((folder / name).is_file() for name in REQUIRED_FILES)


def load_cifar10(path: str | os.PathLike | None = None, num_training: int = 49000,
                 num_validation: int = 1000, num_test: int = 1000, dtype: Any = np.float32,
                 scale: bool = False) -> dict[str, Any]:
    """Load CIFAR-10 and split it as CS231n does.

    path: the cifar-10-batches-py folder, or the folder containing it (download_cifar10's dest);
    default: default_cifar10_dir(), where `python -m course_lib.data download cifar10` puts it.
    Returns a dict:
        X_train (num_training, 3, 32, 32): the first num_training training images;
        X_val (num_validation, 3, 32, 32): the next num_validation training images;
        X_test (num_test, 3, 32, 32):      the first num_test images of test_batch;
        y_train, y_val, y_test:            int64 labels 0..9;
        class_names:                       ('airplane', 'automobile', ..., 'truck').
    Images are raw pixel values 0..255 as `dtype` (subtract the mean image before training), or
    values / 255 in [0, 1] with scale=True, as load_digits and load_mnist return them.
    """
    folder = _batches_dir(default_cifar10_dir() if path is None else _check_path(path, "path"))
    num_training = check_nonnegative_int(num_training, "num_training")
    num_validation = check_nonnegative_int(num_validation, "num_validation")
    num_test = check_nonnegative_int(num_test, "num_test")
    dtype = check_float_dtype(dtype)
    if not isinstance(scale, bool):
        raise TypeError(f"scale must be True or False; got {type(scale).__name__}")

    # Check every file exists before reading 180 MB, so a missing file fails fast.
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            if folder.name == CIFAR10_FOLDER:
                raise _missing_file_error(folder / name, folder.parent)
            # Report where download_cifar10(folder) would put the file, unless the batches are
            # here already (a renamed cifar-10-batches-py).
            inside = (folder / TRAIN_BATCHES[0]).is_file()
            raise _missing_file_error(folder / name if inside else
                                      folder / CIFAR10_FOLDER / name, folder)
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

    def images(X: np.ndarray) -> np.ndarray:
        return (X / dtype.type(255)).astype(dtype) if scale else X.astype(dtype)

    val = slice(num_training, num_training + num_validation)
    return {
        "X_train": images(X_all[:num_training]), "y_train": y_all[:num_training],
        "X_val": images(X_all[val]), "y_val": y_all[val],
        "X_test": images(X_test_all[:num_test]), "y_test": y_test_all[:num_test],
        "class_names": class_names,
    }


def _md5(filename: Path) -> str:
    digest = hashlib.md5()
    with open(filename, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _Interrupted(Exception):
    """The transfer stopped before the end; what arrived is in the .part file."""


def _fetch(url: str, partial: Path, progress: bool) -> None:
    """Append url's bytes to partial, asking only for the missing ones (HTTP Range).

    Raises OSError when the server cannot be reached, _Interrupted when the transfer stops short.
    A server that ignores the Range header (status 200, or a file:// URL) sends the whole file,
    which then replaces the partial one.
    """
    from tqdm.auto import tqdm

    offset = partial.stat().st_size if partial.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_SECONDS)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:     # nothing after offset: the part is complete (MD5 decides)
            return
        raise OSError(f"could not download {url}: HTTP error {e.code} ({e.reason})") from e
    except (urllib.error.URLError, OSError) as e:
        reason = e.reason if isinstance(e, urllib.error.URLError) else e
        raise OSError(
            f"could not download {url}: {reason}. Are you offline? Check the network "
            f"connection and run it again (a partial download is resumed), or download the "
            f"file in a browser, save it as {partial.with_suffix('')}, and run it again: the "
            f"archive is then checked and extracted without a download.") from e
    with response:
        if offset and getattr(response, "status", None) != 206:
            offset = 0                   # the server ignored the range: it sends everything
        elif offset:
            content_range = response.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {offset}-"):
                partial.unlink()
                raise _Interrupted(f"the server sent another range ({content_range!r})")
        length = response.headers.get("Content-Length")
        expected = int(length) if length else None
        received = 0
        with open(partial, "ab" if offset else "wb") as out, tqdm(
                total=None if expected is None else offset + expected, initial=offset, unit="B",
                unit_scale=True, unit_divisor=1024, desc=partial.with_suffix("").name,
                disable=not progress) as bar:
            try:
                for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as e:
                raise _Interrupted(f"{type(e).__name__}: {e}") from e
    if expected is not None and received < expected:
        raise _Interrupted(f"the connection closed after {offset + received} of "
                           f"{offset + expected} bytes")


def _fetch_resuming(url: str, partial: Path, progress: bool) -> None:
    """_fetch, resumed after each interruption, DOWNLOAD_ATTEMPTS requests at most."""
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        try:
            _fetch(url, partial, progress)
            return
        except _Interrupted as e:
            if attempt == DOWNLOAD_ATTEMPTS:
                kept = partial.stat().st_size if partial.is_file() else 0
                raise OSError(
                    f"the download of {url} was interrupted {attempt} times (last: {e}). The "
                    f"{kept} bytes received are kept in {partial}: run it again to resume."
                ) from e
            time.sleep(RETRY_DELAY_SECONDS)


def _download(url: str, target: Path, md5: str, progress: bool) -> None:
    """Download url to target via target.part (resumed if present), checking the MD5."""
    partial = target.with_name(target.name + ".part")
    resumed = partial.is_file() and partial.stat().st_size > 0
    _fetch_resuming(url, partial, progress)
    actual = _md5(partial)
    if actual != md5 and resumed:
        # The kept part may belong to another version of the file: start once from scratch.
        partial.unlink()
        _fetch_resuming(url, partial, progress)
        actual = _md5(partial)
    if actual != md5:
        partial.unlink(missing_ok=True)
        raise ValueError(
            f"MD5 checksum mismatch for {url}: expected {md5}, got {actual}. The "
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


def download_cifar10(dest_dir: str | os.PathLike | None = None, url: str = CIFAR10_URL,
                     md5: str = CIFAR10_MD5, progress: bool = True) -> Path:
    """Download, verify and extract CIFAR-10 into dest_dir; return dest_dir/cifar-10-batches-py.

    dest_dir: default default_cifar10_dir() ($COURSE_LIB_DATA, else ~/.cache/course_lib/cifar10).
    Steps, each skipped when already done: (1) if dest_dir/cifar-10-batches-py holds all seven
    batch files, return at once; (2) if dest_dir/cifar-10-python.tar.gz exists and its MD5
    equals `md5`, reuse it; otherwise download `url` with a progress bar (tqdm) into
    cifar-10-python.tar.gz.part, resuming what an earlier, interrupted call left there (HTTP
    Range), and check the MD5 (on a mismatch the file is deleted and ValueError reports both
    checksums); (3) extract, refusing members that are links or would land outside dest_dir.
    The archive is kept so a later call can re-extract without downloading; delete it to save
    163 MB. OSError when the server cannot be reached (offline) or the transfer keeps failing.
    """
    dest = default_cifar10_dir() if dest_dir is None else _check_path(dest_dir, "dest_dir")
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
