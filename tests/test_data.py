"""Data loading and preprocessing: digits, sample photographs, CIFAR-10 files and downloader, PCA.

CIFAR-10 tests never touch the network: they write small batches in the official
python-pickle format to tmp_path and serve a tarball of them over file:// or a local
http.server on 127.0.0.1.
"""
import functools
import hashlib
import http.server
import io
import os
import pickle
import re
import socket
import subprocess
import sys
import tarfile
import threading
import urllib.request
from collections import Counter

import numpy as np
import pytest

from course_lib.data import (
    CIFAR10_FOLDER,
    cifar10,
    dataset_available,
    default_cifar10_dir,
    download_cifar10,
    load_cifar10,
    load_cifar10_batch,
    load_dataset,
    load_digits,
    load_mnist,
    load_sample_images,
    mean_image,
    normalize_per_channel,
    pca_fit,
    pca_transform,
    per_channel_mean_std,
    subtract_mean,
    whiten,
    zca_whiten,
)
from course_lib.data import __main__ as data_command


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """No test downloads: urlopen refuses every URL but file:// and http://127.0.0.1, and the
    default data folder ($COURSE_LIB_DATA) is an empty temporary one."""
    real_urlopen = urllib.request.urlopen

    def local_only(request, *args, **kwargs):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        if not url.startswith(("file:", "http://127.0.0.1:")):
            raise AssertionError(f"a test tried to download {url}")
        return real_urlopen(request, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", local_only)
    monkeypatch.setenv("COURSE_LIB_DATA", str(tmp_path / "default-data"))


CLASS_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse",
               b"ship", b"truck"]

# ---------------------------------------------------------------------------------------------
# digits


def test_load_digits_shapes_dtypes_range_and_sizes():
    d = load_digits(num_validation=150, num_test=250)
    assert d["X_train"].shape == (1797 - 400, 1, 8, 8)
    assert d["X_val"].shape == (150, 1, 8, 8) and d["X_test"].shape == (250, 1, 8, 8)
    for split in ("train", "val", "test"):
        X, y = d[f"X_{split}"], d[f"y_{split}"]
        assert X.dtype == np.float64 and y.dtype == np.int64 and len(X) == len(y)
        assert X.min() >= 0 and X.max() <= 1 and set(np.unique(y)) <= set(range(10))
    assert d["X_train"].max() == 1.0                    # 16 / 16: scaled, not clipped
    assert tuple(d["class_names"]) == tuple(str(i) for i in range(10))


def test_load_digits_splits_partition_the_whole_data_set():
    from sklearn.datasets import load_digits as sklearn_digits
    raw = sklearn_digits()
    expected = Counter((img.tobytes(), int(t)) for img, t in zip(raw.images / 16.0, raw.target,
                                                                 strict=True))
    d = load_digits(num_validation=100, num_test=100)
    got = Counter()
    for split in ("train", "val", "test"):
        for img, t in zip(d[f"X_{split}"], d[f"y_{split}"], strict=True):
            got[(img[0].tobytes(), int(t))] += 1
    assert got == expected


def test_load_digits_validation_set_is_stratified():
    d = load_digits(num_validation=200, num_test=300, seed=5)
    y_all = np.concatenate([d["y_train"], d["y_val"], d["y_test"]])
    for split, size in (("val", 200), ("test", 300)):
        counts = np.bincount(d[f"y_{split}"], minlength=10)
        expected = size * np.bincount(y_all, minlength=10) / len(y_all)
        # Every prefix of the stratified order is within one sample of proportional per class.
        assert np.all(np.abs(counts - expected) <= 1.0 + 1e-9), (split, counts, expected)


def test_load_digits_is_deterministic_for_a_seed_and_changes_with_it():
    a, b, c = load_digits(seed=3), load_digits(seed=3), load_digits(seed=4)
    for key in ("X_train", "y_train", "X_val", "y_test"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["y_val"], c["y_val"])


def test_load_digits_flatten_float32_and_empty_splits():
    d = load_digits(num_validation=0, num_test=0, dtype=np.float32, flatten=True)
    assert d["X_train"].shape == (1797, 64) and d["X_train"].dtype == np.float32
    assert d["X_val"].shape == (0, 64) and d["y_test"].shape == (0,)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(num_validation=-1), ValueError, "num_validation"),
    (dict(num_test=2.5), TypeError, "num_test"),
    (dict(num_validation=900, num_test=897), ValueError, "num_validation \\+ num_test"),
    (dict(dtype=np.int32), TypeError, "dtype"),
    (dict(seed="0"), TypeError, "seed"),
])
def test_load_digits_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        load_digits(**kwargs)


# ---------------------------------------------------------------------------------------------
# sample photographs


def test_load_sample_images_is_an_nchw_batch_in_unit_range():
    s = load_sample_images()
    X = s["images"]
    assert X.shape == (2, 3, 427, 640) and X.dtype == np.float64
    assert 0 <= X.min() and X.max() <= 1 and X.max() > 0.9
    assert tuple(s["names"]) == ("china", "flower")


def test_load_sample_images_resizes_and_keeps_requested_dtype():
    X = load_sample_images(dtype=np.float32, size=(20, 30))["images"]
    assert X.shape == (2, 3, 20, 30) and X.dtype == np.float32
    assert load_sample_images(size=16)["images"].shape == (2, 3, 16, 16)


@pytest.mark.parametrize("kwargs, error", [(dict(size=0), ValueError),
                                           (dict(size="big"), TypeError),
                                           (dict(dtype=np.uint8), TypeError)])
def test_load_sample_images_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error):
        load_sample_images(**kwargs)


# ---------------------------------------------------------------------------------------------
# CIFAR-10 files in the official format


def _pickle_like_python2(obj) -> bytes:
    """Protocol 2 with the numpy.core global names that the official (Python 2) files use."""
    raw = pickle.dumps(obj, protocol=2)
    return raw.replace(b"cnumpy._core.multiarray\n_reconstruct",
                       b"cnumpy.core.multiarray\n_reconstruct")


def write_fake_cifar(folder, n_train=6, n_test=5, seed=0):
    """Write data_batch_1..5, test_batch and batches.meta in the official format.

    Returns {file name: (uint8 data (n, 3072), labels list)} for checking what loads.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        n = n_test if name == "test_batch" else n_train
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n)]
        batch = {b"batch_label": f"fake {name}".encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"img_{k}_{i}.png".encode() for i in range(n)]}
        # Alternate the official-style pickle and a modern default-protocol one.
        payload = _pickle_like_python2(batch) if k % 2 == 0 else pickle.dumps(batch)
        (folder / name).write_bytes(payload)
        written[name] = (data, labels)
    meta = {b"label_names": CLASS_NAMES, b"num_cases_per_batch": n_train, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(_pickle_like_python2(meta))
    return written


def test_load_cifar10_batch_reshapes_rgb_planes_to_nchw(tmp_path):
    written = write_fake_cifar(tmp_path / CIFAR10_FOLDER)
    X, y = load_cifar10_batch(tmp_path / CIFAR10_FOLDER / "data_batch_1")
    data, labels = written["data_batch_1"]
    assert X.shape == (6, 3, 32, 32) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(y, labels)
    # Row layout: 1024 red values, then green, then blue, each plane row-major.
    for i, c, h, w in [(0, 0, 0, 0), (1, 0, 0, 31), (2, 1, 5, 7), (5, 2, 31, 31), (3, 2, 0, 1)]:
        assert X[i, c, h, w] == data[i, c * 1024 + h * 32 + w]


def test_load_cifar10_batch_reads_a_modern_pickle_and_float64(tmp_path):
    written = write_fake_cifar(tmp_path)
    X, y = load_cifar10_batch(str(tmp_path / "data_batch_2"), dtype=np.float64)
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X.reshape(len(X), -1), written["data_batch_2"][0])


def test_load_cifar10_splits_like_cs231n(tmp_path):
    written = write_fake_cifar(tmp_path / CIFAR10_FOLDER, n_train=6, n_test=5)
    all_train = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    all_labels = np.concatenate([written[f"data_batch_{i}"][1] for i in range(1, 6)])
    # The parent folder works as well as cifar-10-batches-py itself.
    for path in (tmp_path, tmp_path / CIFAR10_FOLDER):
        d = load_cifar10(path, num_training=20, num_validation=7, num_test=4)
        assert d["X_train"].shape == (20, 3, 32, 32) and d["X_train"].dtype == np.float32
        np.testing.assert_array_equal(d["X_train"].reshape(20, -1), all_train[:20])
        np.testing.assert_array_equal(d["X_val"].reshape(7, -1), all_train[20:27])
        np.testing.assert_array_equal(d["y_val"], all_labels[20:27])
        np.testing.assert_array_equal(d["X_test"].reshape(4, -1), written["test_batch"][0][:4])
        assert d["class_names"][0] == "airplane" and len(d["class_names"]) == 10


def test_load_cifar10_missing_file_names_it_and_gives_the_download_command(tmp_path):
    write_fake_cifar(tmp_path / CIFAR10_FOLDER)
    os.remove(tmp_path / CIFAR10_FOLDER / "data_batch_3")
    command = re.escape(f"python -m course_lib.data download cifar10 --dir '{tmp_path}'")
    with pytest.raises(FileNotFoundError, match=f"(?s){CIFAR10_FOLDER}/data_batch_3' not found"
                                                f".*{command}.*download_cifar10"):
        load_cifar10(tmp_path)
    nowhere = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=re.escape(
            f"'{nowhere / CIFAR10_FOLDER / 'data_batch_1'}' not found")):
        load_cifar10(nowhere)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(num_training=29, num_validation=2), ValueError, "at most the 30 training images"),
    (dict(num_training=3, num_validation=1, num_test=6), ValueError, "num_test"),
    (dict(num_training=-1), ValueError, "num_training"),
    (dict(dtype=np.uint8), TypeError, "dtype"),
])
def test_load_cifar10_rejects_bad_sizes(tmp_path, kwargs, error, match):
    write_fake_cifar(tmp_path / CIFAR10_FOLDER)
    with pytest.raises(error, match=match):
        load_cifar10(tmp_path, **kwargs)


def test_load_cifar10_rejects_a_path_that_is_not_a_path():
    with pytest.raises(TypeError, match="path must be a str or pathlib.Path"):
        load_cifar10(42)


def test_cifar10_unpickler_refuses_code_execution(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    (tmp_path / "evil_batch").write_bytes(pickle.dumps({b"data": Exploit(), b"labels": []}))
    with pytest.raises(pickle.UnpicklingError, match="posix.mkdir|os.mkdir|nt.mkdir"):
        load_cifar10_batch(tmp_path / "evil_batch")
    assert not marker.exists()


def test_load_cifar10_batch_rejects_a_wrongly_shaped_batch(tmp_path):
    bad = {b"data": np.zeros((2, 100), dtype=np.uint8), b"labels": [0, 1]}
    (tmp_path / "bad").write_bytes(pickle.dumps(bad))
    with pytest.raises(ValueError, match="uint8 array \\(N, 3072\\)"):
        load_cifar10_batch(tmp_path / "bad")
    (tmp_path / "bad2").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match="b'data' and b'labels'"):
        load_cifar10_batch(tmp_path / "bad2")


# ---------------------------------------------------------------------------------------------
# download_cifar10 (local file:// and http://127.0.0.1 only)


def make_archive(path, folder, extra_members=()):
    """A .tar.gz of folder/* under cifar-10-batches-py/, plus (TarInfo, bytes) extras; -> md5."""
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname=CIFAR10_FOLDER)
        for info, payload in extra_members:
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def cifar_archive(tmp_path):
    """(archive path, md5, written batches) of a small archive in the official layout."""
    written = write_fake_cifar(tmp_path / "src" / CIFAR10_FOLDER)
    (tmp_path / "src" / CIFAR10_FOLDER / "readme.html").write_text("<p>fake</p>")
    archive = tmp_path / "serve" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    md5 = make_archive(archive, tmp_path / "src" / CIFAR10_FOLDER)
    return archive, md5, written


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def local_http_server():
    """Serve a directory on 127.0.0.1 (an ephemeral port); yields url_for(directory, name)."""
    servers = []

    def url_for(directory, name):
        handler = functools.partial(_QuietHandler, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/{name}"

    yield url_for
    for server in servers:
        server.shutdown()
        server.server_close()


def test_download_cifar10_over_local_http_verifies_extracts_and_loads(
        tmp_path, cifar_archive, local_http_server, capsys):
    archive, md5, written = cifar_archive
    url = local_http_server(archive.parent, archive.name)
    dest = tmp_path / "data"
    folder = download_cifar10(dest, url=url, md5=md5, progress=True)
    assert folder == dest / CIFAR10_FOLDER
    assert (folder / "readme.html").is_file() and (dest / archive.name).is_file()
    assert not list(dest.glob("*.part")) and not list(dest.glob(".extract-*"))
    d = load_cifar10(dest, num_training=25, num_validation=5, num_test=5)
    np.testing.assert_array_equal(d["X_test"].reshape(5, -1), written["test_batch"][0])
    assert "cifar-10-python.tar.gz" in capsys.readouterr().err      # the tqdm progress bar


def test_download_cifar10_skips_everything_when_already_extracted(tmp_path, cifar_archive):
    archive, md5, _ = cifar_archive
    dest = tmp_path / "data"
    download_cifar10(dest, url=archive.as_uri(), md5=md5, progress=False)
    (dest / archive.name).unlink()
    # A URL that cannot be fetched proves no download is attempted.
    missing_url = (tmp_path / "no-such-file.tar.gz").as_uri()
    assert download_cifar10(dest, url=missing_url, md5=md5, progress=False) == \
        dest / CIFAR10_FOLDER


def test_download_cifar10_reuses_a_verified_archive_and_replaces_a_corrupt_one(
        tmp_path, cifar_archive):
    archive, md5, _ = cifar_archive
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / archive.name).write_bytes(archive.read_bytes())
    missing_url = (tmp_path / "no-such-file.tar.gz").as_uri()
    folder = download_cifar10(dest, url=missing_url, md5=md5, progress=False)
    assert (folder / "test_batch").is_file()

    dest2 = tmp_path / "data2"
    dest2.mkdir()
    (dest2 / archive.name).write_bytes(b"truncated garbage")
    folder = download_cifar10(dest2, url=archive.as_uri(), md5=md5, progress=False)
    assert (folder / "test_batch").is_file()
    assert (dest2 / archive.name).read_bytes() == archive.read_bytes()


def test_download_cifar10_checksum_mismatch_reports_both_and_deletes_the_file(
        tmp_path, cifar_archive):
    archive, md5, _ = cifar_archive
    dest = tmp_path / "data"
    wrong = "0" * 32
    with pytest.raises(ValueError, match=f"expected {wrong}, got {md5}"):
        download_cifar10(dest, url=archive.as_uri(), md5=wrong, progress=False)
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize("member_name, kind", [("../evil.txt", tarfile.REGTYPE),
                                               ("<tmp_path>/evil-abs.txt", tarfile.REGTYPE),
                                               (f"{CIFAR10_FOLDER}/link", tarfile.SYMTYPE)])
def test_download_cifar10_refuses_members_that_escape_dest(tmp_path, member_name, kind):
    write_fake_cifar(tmp_path / "src")
    member_name = member_name.replace("<tmp_path>", str(tmp_path))
    info = tarfile.TarInfo(member_name)
    info.type = kind
    payload = None
    if kind == tarfile.SYMTYPE:
        info.linkname = "../../evil-target"
    else:
        payload = b"gotcha"
        info.size = len(payload)
    archive = tmp_path / "evil.tar.gz"
    md5 = make_archive(archive, tmp_path / "src", [(info, payload)])
    dest = tmp_path / "dest"
    with pytest.raises(ValueError, match="refusing to extract"):
        download_cifar10(dest, url=archive.as_uri(), md5=md5, progress=False)
    assert list(tmp_path.rglob("evil*.txt")) == []
    assert not (dest / CIFAR10_FOLDER).exists()        # nothing is extracted before the check


def test_download_cifar10_unreachable_url_raises_oserror(tmp_path):
    with pytest.raises(OSError, match="could not download"):
        download_cifar10(tmp_path, url=(tmp_path / "missing.tar.gz").as_uri(), progress=False)
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(md5="abc"), ValueError, "md5 must be a 32-digit"),
    (dict(md5="z" * 32), ValueError, "md5"),
    (dict(url=None), TypeError, "url"),
    (dict(progress="yes"), TypeError, "progress"),
])
def test_download_cifar10_rejects_bad_arguments(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        download_cifar10(tmp_path, **kwargs)
    with pytest.raises(TypeError, match="dest_dir"):
        download_cifar10(42)


# ---------------------------------------------------------------------------------------------
# resumable download (a local server that honours HTTP Range and can cut a response short)


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves server.payload; honours 'Range: bytes=START-' (206, or 416 past the end) unless
    server.ignore_range; cuts the next server.cut_short responses after half their body."""

    def do_GET(self):
        server, data = self.server, self.server.payload
        asked = self.headers.get("Range")
        server.requests.append(asked)
        if asked and not server.ignore_range:
            start = int(asked.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            body = data[start:]
        else:
            self.send_response(200)
            body = data
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.cut_short > 0:               # announce the whole body, send half, hang up
            server.cut_short -= 1
            body = body[:len(body) // 2]
            self.close_connection = True
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def range_server():
    """start(payload, cut_short=0, ignore_range=False) -> (url, server); server.requests lists
    the Range header of every request (None when absent)."""
    servers = []

    def start(payload, cut_short=0, ignore_range=False):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
        server.payload, server.cut_short, server.ignore_range = payload, cut_short, ignore_range
        server.requests = []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/cifar-10-python.tar.gz", server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def no_retry_delay(monkeypatch):
    monkeypatch.setattr(cifar10, "RETRY_DELAY_SECONDS", 0.0)


def test_download_cifar10_resumes_a_cut_transfer_with_a_range_request(
        tmp_path, cifar_archive, range_server, no_retry_delay):
    archive, md5, written = cifar_archive
    payload = archive.read_bytes()
    url, server = range_server(payload, cut_short=1)
    dest = tmp_path / "data"
    folder = download_cifar10(dest, url=url, md5=md5, progress=False)
    # The first response stopped after half the archive; the second asked for the rest only.
    assert server.requests == [None, f"bytes={len(payload) // 2}-"]
    assert (dest / archive.name).read_bytes() == payload and not list(dest.glob("*.part"))
    X, _ = load_cifar10_batch(folder / "test_batch")
    np.testing.assert_array_equal(X.reshape(len(X), -1), written["test_batch"][0])


def test_download_cifar10_keeps_the_part_of_an_interrupted_call_and_the_next_call_resumes(
        tmp_path, cifar_archive, range_server, no_retry_delay, monkeypatch):
    archive, md5, _ = cifar_archive
    payload = archive.read_bytes()
    half = len(payload) // 2
    monkeypatch.setattr(cifar10, "DOWNLOAD_ATTEMPTS", 2)
    url, server = range_server(payload, cut_short=2)
    dest = tmp_path / "data"
    partial = dest / (archive.name + ".part")
    with pytest.raises(OSError, match=f"interrupted 2 times .*kept in {re.escape(str(partial))}"
                                      f": run it again to resume"):
        download_cifar10(dest, url=url, md5=md5, progress=False)
    # Half the archive, then half of the rest, both kept.
    assert partial.read_bytes() == payload[:half + (len(payload) - half) // 2]
    kept = partial.stat().st_size
    download_cifar10(dest, url=url, md5=md5, progress=False)
    assert server.requests == [None, f"bytes={half}-", f"bytes={kept}-"]
    assert (dest / archive.name).read_bytes() == payload and not partial.exists()


def test_download_cifar10_restarts_when_the_server_ignores_the_range(
        tmp_path, cifar_archive, range_server):
    archive, md5, _ = cifar_archive
    payload = archive.read_bytes()
    url, server = range_server(payload, ignore_range=True)
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / (archive.name + ".part")).write_bytes(payload[:100])
    download_cifar10(dest, url=url, md5=md5, progress=False)
    assert server.requests == ["bytes=100-"]             # asked, got status 200 and everything
    assert (dest / archive.name).read_bytes() == payload


def test_download_cifar10_starts_over_once_when_a_resumed_part_fails_the_checksum(
        tmp_path, cifar_archive, range_server):
    archive, md5, _ = cifar_archive
    payload = archive.read_bytes()
    url, server = range_server(payload)
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / (archive.name + ".part")).write_bytes(b"x" * 100)   # left by another file's download
    download_cifar10(dest, url=url, md5=md5, progress=False)
    assert server.requests == ["bytes=100-", None]
    assert (dest / archive.name).read_bytes() == payload


def test_download_cifar10_accepts_a_complete_part_when_the_server_has_nothing_more(
        tmp_path, cifar_archive, range_server):
    archive, md5, _ = cifar_archive
    payload = archive.read_bytes()
    url, server = range_server(payload)
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / (archive.name + ".part")).write_bytes(payload)
    download_cifar10(dest, url=url, md5=md5, progress=False)
    assert server.requests == [f"bytes={len(payload)}-"]         # answered 416
    assert (dest / archive.name).read_bytes() == payload


def _closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/cifar-10-python.tar.gz"


def test_download_cifar10_offline_says_so_and_leaves_nothing(tmp_path):
    with pytest.raises(OSError, match="could not download .*Are you offline"):
        download_cifar10(tmp_path, url=_closed_port_url(), progress=False)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# the command `python -m course_lib.data download cifar10 [--dir DIR]` and the default folder


def test_default_cifar10_dir_is_course_lib_data_else_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_LIB_DATA", str(tmp_path / "shared"))
    assert default_cifar10_dir() == tmp_path / "shared"
    monkeypatch.delenv("COURSE_LIB_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cifar10_dir() == tmp_path / "xdg" / "course_lib" / "cifar10"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cifar10_dir() == tmp_path / "home" / ".cache" / "course_lib" / "cifar10"


def test_download_command_fetches_into_dir_and_load_dataset_finds_it(
        tmp_path, cifar_archive, local_http_server, monkeypatch, capsys):
    archive, md5, written = cifar_archive
    monkeypatch.setattr(cifar10, "CIFAR10_MD5", md5)     # the fake archive's checksum
    url = local_http_server(archive.parent, archive.name)
    dest = tmp_path / "elsewhere"
    assert data_command.main(["download", "cifar10", "--dir", str(dest), "--url", url]) == 0
    out = capsys.readouterr()
    assert f"CIFAR-10 is ready in {dest / CIFAR10_FOLDER}" in out.out
    assert "COURSE_LIB_DATA=" in out.out                 # how to make load_dataset find it
    assert archive.name in out.err                       # the progress bar
    d = load_dataset("cifar10", path=dest, num_training=20, num_validation=5, num_test=5)
    # float32 quotients: within half a float32 unit (2**-24 relative) of the exact value.
    np.testing.assert_allclose(d["X_test"].reshape(5, -1), written["test_batch"][0] / 255,
                               rtol=2.0 ** -24, atol=0)


def test_download_command_uses_course_lib_data_by_default(
        tmp_path, cifar_archive, local_http_server, monkeypatch, capsys):
    archive, md5, _ = cifar_archive
    monkeypatch.setattr(cifar10, "CIFAR10_MD5", md5)
    url = local_http_server(archive.parent, archive.name)
    assert not dataset_available("cifar10")
    assert data_command.main(["download", "cifar10", "--url", url, "--quiet"]) == 0
    assert "load_dataset('cifar10')" in capsys.readouterr().out
    assert (tmp_path / "default-data" / CIFAR10_FOLDER / "data_batch_5").is_file()
    assert dataset_available("cifar10")
    d = load_dataset("cifar10", num_training=10, num_validation=2, num_test=5)
    assert d["X_train"].shape == (10, 3, 32, 32)


def test_download_command_offline_exits_1_with_a_message_and_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "course_lib.data", "download", "cifar10", "--dir",
         str(tmp_path), "--url", _closed_port_url(), "--quiet"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": ""})
    assert result.returncode == 1
    assert result.stderr.startswith("error: could not download") and "offline" in result.stderr
    assert "Traceback" not in result.stderr


def test_download_command_rejects_an_unknown_data_set(capsys):
    with pytest.raises(SystemExit) as exit_info:
        data_command.main(["download", "imagenet"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'imagenet'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# load_dataset: one call, one dict format, for digits, mnist and cifar10


@pytest.mark.parametrize("name, loader, options", [
    ("digits", load_digits, {"num_validation": 100, "seed": 3}),
    ("mnist", load_mnist, {"num_test": 300, "dtype": np.float32, "flatten": True}),
])
def test_load_dataset_returns_what_the_embedded_loaders_return(name, loader, options):
    got, want = load_dataset(name, **options), loader(**options)
    assert list(got) == ["X_train", "y_train", "X_val", "y_val", "X_test", "y_test",
                         "class_names"] == list(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key])


def test_load_dataset_cifar10_is_scaled_to_unit_range_like_the_embedded_sets(tmp_path):
    written = write_fake_cifar(tmp_path / "default-data" / CIFAR10_FOLDER)  # $COURSE_LIB_DATA
    d = load_dataset("cifar10", num_training=20, num_validation=5, num_test=5)
    assert list(d) == ["X_train", "y_train", "X_val", "y_val", "X_test", "y_test",
                       "class_names"]
    assert d["X_train"].dtype == np.float32 and 0 <= d["X_train"].min()
    assert d["X_train"].max() <= 1
    np.testing.assert_allclose(d["X_test"].reshape(5, -1), written["test_batch"][0] / 255,
                               rtol=2.0 ** -24, atol=0)                # as in the test above
    raw = load_dataset("cifar10", num_training=20, num_validation=5, num_test=5, scale=False)
    np.testing.assert_array_equal(raw["X_test"].reshape(5, -1), written["test_batch"][0])


def test_load_dataset_cifar10_not_downloaded_gives_the_command(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match=r"python -m course_lib\.data download cifar10\n"):  # no --dir
        load_dataset("cifar10")
    with pytest.raises(FileNotFoundError, match=re.escape(
            f"python -m course_lib.data download cifar10 --dir '{tmp_path / 'mine'}'")):
        load_dataset("cifar10", path=tmp_path / "mine")
    assert not dataset_available("cifar10")
    assert dataset_available("digits") and dataset_available("mnist")


@pytest.mark.parametrize("call, error, match", [
    (lambda: load_dataset("imagenet"), ValueError,
     "name must be one of 'digits', 'mnist', 'cifar10'; got 'imagenet'"),
    (lambda: load_dataset(10), ValueError, "name must be one of"),
    (lambda: load_dataset("mnist", num_training=10), TypeError,
     r"unknown option\(s\) \['num_training'\]; the options of load_mnist are"),
    (lambda: load_dataset("digits", scale=True), TypeError, "options of load_digits"),
    (lambda: dataset_available("cifar100"), ValueError, "name must be one of"),
])
def test_load_dataset_rejects_unknown_names_and_options(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------------------------------------
# preprocessing


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_subtract_mean_centres_the_data_without_touching_it(rng, dtype):
    X = (rng.standard_normal((50, 3, 4, 5)) * 3 + 7).astype(dtype)
    X_copy = X.copy()
    mean = mean_image(X)
    assert mean.shape == (3, 4, 5) and mean.dtype == dtype
    Xc = subtract_mean(X, mean)
    assert Xc.dtype == dtype
    # float32 sums of 50 values ~7 carry ~1e-6 relative error.
    np.testing.assert_allclose(Xc.mean(axis=0), 0, atol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_array_equal(X, X_copy)


def test_float32_statistics_are_accumulated_accurately():
    # Row-by-row float32 summation of 200000 copies of 0.1 drifts by ~2e-4; float64 does not.
    X = np.full((200000, 2, 1, 2), 0.1, dtype=np.float32)
    np.testing.assert_allclose(mean_image(X), 0.1, rtol=1e-6)
    mean, std = per_channel_mean_std(X)
    np.testing.assert_allclose(mean, 0.1, rtol=1e-6)
    np.testing.assert_allclose(std, 0, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normalize_per_channel_gives_zero_mean_unit_std_per_channel(rng, dtype):
    scales = np.array([0.5, 2.0, 10.0])[None, :, None, None]
    X = (rng.standard_normal((40, 3, 6, 6)) * scales + np.array([1.0, -3.0, 100.0])[
        None, :, None, None]).astype(dtype)
    mean, std = per_channel_mean_std(X)
    assert mean.shape == (3,) and std.shape == (3,)
    # Independent reference: loop over channels.
    for c in range(3):
        np.testing.assert_allclose(mean[c], X[:, c].astype(np.float64).mean(), rtol=1e-5)
        np.testing.assert_allclose(std[c], X[:, c].astype(np.float64).std(), rtol=1e-5)
    Xn = normalize_per_channel(X, mean, std)
    assert Xn.dtype == dtype
    tol = 1e-4 if dtype == np.float32 else 1e-10    # float32 rounding of means of ~1e3 values
    np.testing.assert_allclose(Xn.mean(axis=(0, 2, 3)), 0, atol=tol)
    np.testing.assert_allclose(Xn.std(axis=(0, 2, 3)), 1, atol=tol)


def _correlated_data(rng, N=3000, D=6):
    """Gaussian data with a random covariance whose eigenvalues are 0.1 .. 20."""
    Q, _ = np.linalg.qr(rng.standard_normal((D, D)))
    scales = np.sqrt(np.geomspace(20.0, 0.1, D))
    return rng.standard_normal((N, D)) * scales @ Q.T + rng.standard_normal(D)


def test_pca_components_are_orthonormal_and_ordered_by_variance(rng):
    X = _correlated_data(rng)
    mean, components, variances = pca_fit(X)
    assert mean.shape == (6,) and components.shape == (6, 6) and variances.shape == (6,)
    np.testing.assert_allclose(components @ components.T, np.eye(6), atol=1e-12)
    assert np.all(np.diff(variances) <= 0)
    # The variance of the data along each component is its eigenvalue (1/N covariance).
    Z = pca_transform(X, mean, components)
    np.testing.assert_allclose(Z.var(axis=0), variances, rtol=1e-10)
    # Independent check: singular values of the centred data.
    s = np.linalg.svd(X - X.mean(axis=0), compute_uv=False)
    np.testing.assert_allclose(variances, s ** 2 / len(X), rtol=1e-10)


def test_pca_fit_keeps_the_top_components_of_images(rng):
    X = rng.standard_normal((30, 2, 3, 3)).astype(np.float32)
    X_copy = X.copy()
    mean, components, variances = pca_fit(X, num_components=4)
    assert components.shape == (4, 18) and mean.shape == (18,) and variances.dtype == np.float32
    full = pca_fit(X)[2]
    np.testing.assert_allclose(variances, full[:4], rtol=1e-5)
    assert pca_transform(X, mean, components).shape == (30, 4)
    np.testing.assert_array_equal(X, X_copy)


def test_whitened_data_has_identity_covariance(rng):
    X = _correlated_data(rng)
    Xw = whiten(X)
    cov = np.cov(Xw, rowvar=False, bias=True)
    # Exact covariance is diag(var / (var + 1e-5)); with var >= 0.1 that is I within 1e-4.
    np.testing.assert_allclose(cov, np.eye(6), atol=1e-4)
    np.testing.assert_allclose(Xw.mean(axis=0), 0, atol=1e-12)


def test_zca_whitening_has_identity_covariance_and_stays_in_pixel_space(rng):
    X = _correlated_data(rng, D=12).reshape(-1, 3, 2, 2)
    Xz = zca_whiten(X)
    assert Xz.shape == X.shape and Xz.dtype == X.dtype
    cov = np.cov(Xz.reshape(len(X), -1), rowvar=False, bias=True)
    np.testing.assert_allclose(cov, np.eye(12), atol=1e-4)          # as in the PCA test
    # ZCA is PCA whitening rotated back: the two differ by the orthogonal matrix of components.
    _, components, _ = pca_fit(X)
    np.testing.assert_allclose(Xz.reshape(len(X), -1), whiten(X) @ components, atol=1e-10)
    # Data that is already white (identity covariance, zero mean) is left (almost) unchanged,
    # which PCA whitening (a rotation) would not do.
    white = zca_whiten(X)
    np.testing.assert_allclose(zca_whiten(white), white, atol=1e-3)


def test_whitening_keeps_float32(rng):
    X = _correlated_data(rng).astype(np.float32)
    assert whiten(X).dtype == np.float32 and zca_whiten(X).dtype == np.float32


@pytest.mark.parametrize("call, error, match", [
    (lambda X: mean_image(X[0, 0, 0]), ValueError, "at least 2-D"),
    (lambda X: mean_image(X.astype(np.int64)), TypeError, "dtype float32 or float64"),
    (lambda X: mean_image([[1.0, 2.0]]), TypeError, "ndarray"),
    (lambda X: subtract_mean(X, np.zeros((3, 4, 4))), ValueError, "mean must have shape"),
    (lambda X: per_channel_mean_std(X[0]), ValueError, "4-D"),
    (lambda X: normalize_per_channel(X, np.zeros(3), np.zeros(3)), ValueError, "std must be > 0"),
    (lambda X: normalize_per_channel(X, np.zeros(2), np.ones(3)), ValueError, "C=3"),
    (lambda X: pca_fit(X, num_components=100), ValueError, "at most the D=75"),
    (lambda X: pca_fit(X, num_components=0), ValueError, "num_components"),
    (lambda X: pca_fit(X[:1]), ValueError, "at least 2 sample"),
    (lambda X: pca_transform(X, np.zeros(75), np.zeros((2, 74))), ValueError, "components"),
    (lambda X: pca_transform(X, np.zeros(70), np.zeros((2, 75))), ValueError, "mean"),
    (lambda X: whiten(X, eps=0), ValueError, "eps must be > 0"),
    (lambda X: zca_whiten(X, eps="small"), TypeError, "eps"),
])
def test_preprocessing_rejects_bad_input(rng, call, error, match):
    X = rng.standard_normal((10, 3, 5, 5))
    with pytest.raises(error, match=match):
        call(X)
