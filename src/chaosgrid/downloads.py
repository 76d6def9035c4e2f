"""The published datasets the workflow can fetch: where each lives, its checksums, and a download that
either leaves the finished folder or nothing.

Torch-free and standard-library only: planning imports it to learn which folders a study reads, and the
download rule runs it on the machine with internet (a cluster's login node). Each source becomes one folder
under the data root, the folder the loaders in chaosgrid.data read. Files are streamed into a hidden
temporary folder beside it, checked against their MD5 (the checksums the datasets' authors publish), unpacked
there, and only then renamed into place, so a failed or killed download never looks like data.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import shutil
import socket
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")  # unpacked to the source's folder
GZIP_SUFFIX = ".gz"  # any other gzip file is decompressed into it (MNIST's idx files)
# The files in each source's folder that the loaders (chaosgrid.data) open.
CIFAR10_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")
CIFAR100_FILES = ("train", "test", "meta")
SVHN_FILES = ("train_32x32.mat", "test_32x32.mat")
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# The published image datasets a study trains on, by the source that holds them (all but CIFAR-10's shifts).
TRAINING_SOURCES = {
    "cifar10": CIFAR10_FILES,
    "cifar100": CIFAR100_FILES,
    "svhn": SVHN_FILES,
    "mnist": MNIST_FILES,
    "fashion_mnist": MNIST_FILES,
}
CIFAR10_1_FILES = ("cifar10.1_v6_data.npy", "cifar10.1_v6_labels.npy")
CIFAR10_C_LABELS = "labels.npy"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    """A published dataset: the folder it becomes under the data root, and its files as (url, md5) pairs.
    An archive (.tar, .tar.gz, .tgz) must unpack to that folder; any other file is placed inside it."""

    folder: str
    files: tuple[tuple[str, str], ...]


def _idx_source(folder: str, base: str, md5s: tuple[str, ...]) -> Source:
    """MNIST-format files, gzipped at `base`, in MNIST_FILES order."""
    return Source(
        folder, tuple((f"{base}/{name}.gz", md5) for name, md5 in zip(MNIST_FILES, md5s, strict=True))
    )


SOURCES = {
    # Krizhevsky's python version; the MD5 is the one torchvision checks.
    "cifar10": Source(
        "cifar-10-batches-py",
        (("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),),
    ),
    # Recht et al.'s v6 test set, as the two .npy files of the authors' repository.
    "cifar10_1": Source(
        "cifar10.1",
        (
            (
                "https://github.com/modestyachts/CIFAR-10.1/raw/master/datasets/cifar10.1_v6_data.npy",
                "4fcae82cb1326aec9ed1dc1fc62345b8",
            ),
            (
                "https://github.com/modestyachts/CIFAR-10.1/raw/master/datasets/cifar10.1_v6_labels.npy",
                "09a97fb7c430502fcbd69d95093a3f85",
            ),
        ),
    ),
    # The python version of CIFAR-100; the MD5 torchvision checks.
    "cifar100": Source(
        "cifar-100-python",
        (("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85"),),
    ),
    # SVHN's cropped digits (format 2), train and test; the MD5s torchvision checks.
    "svhn": Source(
        "svhn",
        (
            ("http://ufldl.stanford.edu/housenumbers/train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373"),
            ("http://ufldl.stanford.edu/housenumbers/test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3"),
        ),
    ),
    # LeCun et al.'s idx files (torchvision's mirror) and Zalando's Fashion-MNIST in the same format,
    # decompressed into the folder; the MD5s of the .gz files, as torchvision checks them.
    "mnist": _idx_source(
        "mnist",
        "https://ossci-datasets.s3.amazonaws.com/mnist",
        (
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ),
    ),
    "fashion_mnist": _idx_source(
        "fashion-mnist",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
        (
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ),
    ),
    # Hendrycks & Dietterich's corruptions (Zenodo record 2535967, 2.9 GB); the MD5 Zenodo lists.
    "cifar10_c": Source(
        "CIFAR-10-C",
        (("https://zenodo.org/records/2535967/files/CIFAR-10-C.tar", "56bf5dcef84df0e2308c6dcbcbbd8499"),),
    ),
}


class DownloadError(RuntimeError):
    """A download that cannot finish: unreachable URL, wrong checksum, or an archive without the folder."""


def sources_for(dataset: str, shifts: tuple[str, ...] | list[str]) -> dict[str, list[str]]:
    """The published sources a shard reads, each with the files in its folder that the shard opens: its
    dataset when published, and the published sets among its shifts."""
    needed: dict[str, list[str]] = {}
    if dataset in TRAINING_SOURCES:
        needed[dataset] = list(TRAINING_SOURCES[dataset])
    if "cifar10_1" in shifts:
        needed["cifar10_1"] = list(CIFAR10_1_FILES)
    corruptions = [s.removeprefix("cifar10c_") for s in shifts if s.startswith("cifar10c_")]
    if corruptions:
        needed["cifar10_c"] = [CIFAR10_C_LABELS, *(f"{c}.npy" for c in corruptions)]
    return needed


def missing_files(root: Path, needed: dict[str, list[str]], sources: dict[str, Source]) -> list[Path]:
    """Files a shard opens that are absent from folders that exist (an absent folder is downloaded; an
    incomplete one is not, so it must be caught before any job)."""
    folders = {name: root / sources[name].folder for name in needed}
    return [
        folders[n] / f
        for n, files in needed.items()
        if folders[n].is_dir()
        for f in files
        if not (folders[n] / f).exists()
    ]


def configured(overrides: dict | None = None) -> dict[str, Source]:
    """SOURCES with the config's `downloads` block applied: {source: [{url, md5}, ...]} replaces that source's
    files (a mirror, or a local copy)."""
    sources = dict(SOURCES)
    for name, files in (overrides or {}).items():
        if name not in SOURCES:
            raise DownloadError(f"downloads: unknown source {name!r}; choose from {', '.join(SOURCES)}")
        sources[name] = Source(SOURCES[name].folder, tuple((f["url"], f["md5"]) for f in files))
    return sources


def _file_name(url: str) -> str:
    return PurePosixPath(urlparse(url).path).name


class Unreachable(DownloadError):
    """The host cannot be reached at all (no network, no name resolution): retrying will not help."""


ATTEMPTS = 3  # a download retries a dropped connection, a timeout or a server error, with 2 s, 4 s pauses


def _unreachable(err: Exception) -> bool:
    """Whether a failure means the machine cannot reach the host (offline), not a passing failure."""
    reason = getattr(err, "reason", err)
    return isinstance(reason, socket.gaierror) or (
        isinstance(reason, OSError)
        and reason.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED)
    )


def _fetch(url: str, md5: str, target: Path, progress=sys.stderr) -> None:
    """Stream `url` into `target`, reporting progress every 100 MB, and check its MD5. A passing failure is
    retried (ATTEMPTS in all); an unreachable host or an HTTP client error (404) is not."""
    for attempt in range(1, ATTEMPTS + 1):
        digest, done = hashlib.md5(), 0
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0)
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if done % (100 * CHUNK) < len(chunk):
                        of = f" of {total / 1e6:,.0f}" if total else ""
                        print(f"  {_file_name(url)}: {done / 1e6:,.0f}{of} MB", file=progress, flush=True)
            break
        except (urllib.error.URLError, OSError) as err:
            if _unreachable(err):
                raise Unreachable(f"could not reach {urlparse(url).netloc or url}: {err}") from err
            final = attempt == ATTEMPTS or (isinstance(err, urllib.error.HTTPError) and err.code < 500)
            if final:
                raise DownloadError(f"could not download {url}: {err}") from err
            print(f"  {_file_name(url)}: {err}; retrying", file=progress, flush=True)
            time.sleep(2**attempt)
    if digest.hexdigest() != md5.lower():
        raise DownloadError(
            f"checksum mismatch for {url}: expected MD5 {md5}, got {digest.hexdigest()} ({done:,} bytes); "
            f"nothing was kept. A changed or truncated file: retry, or set the right url/md5 under 'downloads'."
        )


def download(name: str, root: Path, source: Source | None = None, progress=sys.stderr) -> Path:
    """Fetch source `name` into `root/<folder>`, all or nothing: the folder appears only once every file has
    passed its checksum and every archive has unpacked to it."""
    source = source or SOURCES[name]
    root.mkdir(parents=True, exist_ok=True)
    final = root / source.folder
    if final.exists():
        raise DownloadError(f"{final} already exists; delete it to download {name} again")
    scratch = Path(tempfile.mkdtemp(prefix=f".{source.folder}.", dir=root))
    try:
        (scratch / source.folder).mkdir()
        for url, md5 in source.files:
            file_name = _file_name(url)
            print(f"downloading {url}", file=progress, flush=True)
            if file_name.endswith(ARCHIVE_SUFFIXES):
                archive = scratch / file_name
                _fetch(url, md5, archive, progress)
                with tarfile.open(archive) as tar:
                    tar.extractall(scratch, filter="data")  # refuses absolute paths and links out of scratch
                archive.unlink()
            elif file_name.endswith(GZIP_SUFFIX):
                packed = scratch / file_name
                _fetch(url, md5, packed, progress)
                with (
                    gzip.open(packed) as unpacked,
                    open(scratch / source.folder / file_name[: -len(GZIP_SUFFIX)], "wb") as out,
                ):
                    shutil.copyfileobj(unpacked, out)
                packed.unlink()
            else:
                _fetch(url, md5, scratch / source.folder / file_name, progress)
        if not any((scratch / source.folder).iterdir()):
            raise DownloadError(f"the files of {name} hold no folder {source.folder!r}")
        (scratch / source.folder).rename(final)
    except Unreachable as err:
        raise DownloadError(
            f"{err}. Offline? Put {name}'s files in {final} yourself (under the config's data_root, "
            f"{root}), or name a mirror or a local copy (file:///...) for it in the config: "
            f"downloads: {{{name}: [{{url: ..., md5: ...}}]}} (config/README.md)"
        ) from err
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{name} ready in {final}", file=progress, flush=True)
    return final
