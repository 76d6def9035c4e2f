"""Download rules for the published datasets, against tiny files in their real formats served from 127.0.0.1."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from published_data import (
    md5,
    serving,
    tar_folder,
    write_cifar10,
    write_cifar10_1,
    write_cifar10_c,
    write_cifar100,
    write_idx,  # fmt: skip
    write_svhn,
)
from workflow_helpers import planned_jobs, snakemake, tiny_study

from chaosgrid import data, downloads
from chaosgrid.downloads import SOURCES, DownloadError, Source, download


def publish(name: str, served: Path) -> list[tuple[str, str]]:
    """Write source `name`'s files, as its publishers ship them, into `served`: [(file name, md5)]."""
    made = served / "made"
    if name == "cifar10":
        write_cifar10(made)
        return [
            (
                "cifar-10-python.tar.gz",
                tar_folder(made / "cifar-10-batches-py", served / "cifar-10-python.tar.gz"),
            )
        ]
    if name == "cifar100":
        write_cifar100(made)
        return [
            (
                "cifar-100-python.tar.gz",
                tar_folder(made / "cifar-100-python", served / "cifar-100-python.tar.gz"),
            )
        ]
    if name == "svhn":
        write_svhn(served)
        return [(f, md5(served / f)) for f in ("train_32x32.mat", "test_32x32.mat")]
    if name in ("mnist", "fashion_mnist"):
        write_idx(served, gzipped=True)
        return [(f"{f}.gz", md5(served / f"{f}.gz")) for f in downloads.MNIST_FILES]
    if name == "cifar10_1":
        write_cifar10_1(served)
        return [(f, md5(served / f)) for f in ("cifar10.1_v6_data.npy", "cifar10.1_v6_labels.npy")]
    write_cifar10_c(made)
    return [("CIFAR-10-C.tar", tar_folder(made / "CIFAR-10-C", served / "CIFAR-10-C.tar"))]


def read(name: str, root: Path):
    """What the loader makes of a downloaded source: its test images."""
    if name in ("cifar10", "cifar100", "svhn", "mnist", "fashion_mnist"):
        return data.load(name, root).x_test
    return {
        "cifar10_1": lambda: data.cifar10_1(root)[0],
        "cifar10_c": lambda: data.cifar10_c(root, "fog", 2)[0],
    }[name]()


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_a_good_download_leaves_the_folder_the_loader_reads_and_nothing_else(tmp_path, name):
    files = publish(name, tmp_path / "served")
    root = tmp_path / "data"
    with serving(tmp_path / "served") as url:
        source = Source(SOURCES[name].folder, tuple((f"{url}/{f}", m) for f, m in files))
        assert download(name, root, source) == root / SOURCES[name].folder
    assert [p.name for p in root.iterdir()] == [SOURCES[name].folder]  # no scratch folder, no archive
    assert read(name, root).shape[1:] == ((1, 28, 28) if "mnist" in name else (3, 32, 32))


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_a_wrong_checksum_is_a_clear_error_and_leaves_nothing(tmp_path, name):
    files = publish(name, tmp_path / "served")
    root = tmp_path / "data"
    with serving(tmp_path / "served") as url:
        bad = [(f"{url}/{f}", "0" * 32 if i == len(files) - 1 else m) for i, (f, m) in enumerate(files)]
        with pytest.raises(
            DownloadError, match=f"checksum mismatch for {url}/{files[-1][0]}: expected MD5 0+, got"
        ):
            download(name, root, Source(SOURCES[name].folder, tuple(bad)))
    assert list(root.iterdir()) == []


def test_a_missing_file_and_an_archive_without_the_folder_are_clear_errors(tmp_path):
    root = tmp_path / "data"
    files = publish("cifar10_c", tmp_path / "served")
    with serving(tmp_path / "served") as url:
        with pytest.raises(DownloadError, match=f"could not download {url}/nope.tar: HTTP Error 404"):
            download("cifar10_c", root, Source("CIFAR-10-C", ((f"{url}/nope.tar", "0" * 32),)))
        wrong_folder = Source("cifar-10-batches-py", ((f"{url}/{files[0][0]}", files[0][1]),))
        with pytest.raises(DownloadError, match="hold no folder 'cifar-10-batches-py'"):
            download("cifar10", root, wrong_folder)
        assert list(root.iterdir()) == []
        (root / "CIFAR-10-C").mkdir()
        with pytest.raises(DownloadError, match="already exists; delete it"):
            download("cifar10_c", root, Source("CIFAR-10-C", ((f"{url}/{files[0][0]}", files[0][1]),)))


def test_sources_a_shard_reads_and_config_overrides():
    assert downloads.sources_for("digits", ["jpeg"]) == {}
    needed = downloads.sources_for("cifar10", ["cifar10_1", "cifar10c_fog", "cifar10c_snow"])
    assert list(needed) == ["cifar10", "cifar10_1", "cifar10_c"]
    assert needed["cifar10_c"] == ["labels.npy", "fog.npy", "snow.npy"] and "test_batch" in needed["cifar10"]
    mirror = downloads.configured({"cifar10": [{"url": "http://mirror/c.tar.gz", "md5": "a" * 32}]})
    assert mirror["cifar10"] == Source("cifar-10-batches-py", (("http://mirror/c.tar.gz", "a" * 32),))
    assert mirror["cifar10_c"] == SOURCES["cifar10_c"]
    with pytest.raises(DownloadError, match="unknown source 'imagenet'"):
        downloads.configured({"imagenet": []})


def test_the_command_reports_a_bad_checksum_without_a_traceback(tmp_path):
    files = publish("cifar10_1", tmp_path / "served")
    with serving(tmp_path / "served") as url:
        args = ["--file", f"{url}/{files[0][0]}", files[0][1], "--file", f"{url}/{files[1][0]}", "f" * 32]
        done = subprocess.run([sys.executable, "-m", "chaosgrid.cli", "download", "cifar10_1", "--data-root",
                               str(tmp_path / "data"), *args], capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 1 and "checksum mismatch" in done.stderr and "Traceback" not in done.stderr
    assert list((tmp_path / "data").iterdir()) == []


def test_the_workflow_downloads_missing_data_once_before_any_shard(tmp_path):
    served = tmp_path / "served"
    mirrors = {name: [{"url": f"URL/{f}", "md5": m} for f, m in publish(name, served)]
                 for name in ("cifar10", "cifar10_1")}  # fmt: skip
    study = tiny_study(dataset="cifar10", shifts=["cifar10_1"], severities=[])
    with serving(served) as url:
        config = tmp_path / "config.yaml"
        text = yaml.safe_dump(
            {"data_root": "data", "downloads": mirrors, "studies": {"c": study}}, sort_keys=False
        )
        config.write_text(text.replace("URL", url))
        planned = planned_jobs(snakemake(tmp_path, config, "-n").stdout)
        assert planned["download_data"] == 2 and planned["train_shard"] == 4
        snakemake(tmp_path, config, "data/cifar-10-batches-py", "data/cifar10.1")
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["cifar-10-batches-py", "cifar10.1"]
    assert "download_data" not in planned_jobs(snakemake(tmp_path, config, "-n").stdout)


def test_a_failed_download_stops_the_workflow_before_any_shard(tmp_path):
    publish("cifar10_1", tmp_path / "served")
    with serving(tmp_path / "served") as url:
        mirrors = {"cifar10_1": [{"url": f"{url}/cifar10.1_v6_data.npy", "md5": "0" * 32}]}
        config = tmp_path / "config.yaml"
        study = tiny_study(dataset="cifar10", shifts=["cifar10_1"], severities=[])
        config.write_text(yaml.safe_dump({"downloads": mirrors, "studies": {"c": study}}, sort_keys=False))
        done = snakemake(tmp_path, config, "data/cifar10.1", check=False)
    assert done.returncode != 0 and not (tmp_path / "data/cifar10.1").exists()
    assert "checksum mismatch" in (tmp_path / "results/downloads/cifar10.1.log").read_text()


def test_an_incomplete_dataset_folder_fails_planning_naming_the_file(tmp_path):
    write_cifar10_c(tmp_path / "data")  # has fog, not snow
    needed = downloads.sources_for("cifar10", ["cifar10c_fog", "cifar10c_snow"])
    assert downloads.missing_files(tmp_path / "data", needed, SOURCES) == [
        tmp_path / "data/CIFAR-10-C/snow.npy"
    ]
    config = tmp_path / "config.yaml"
    study = tiny_study(dataset="cifar10", shifts=["cifar10c_fog", "cifar10c_snow"], severities=[1])
    write_cifar10(tmp_path / "data")
    config.write_text(yaml.safe_dump({"studies": {"c": study}}, sort_keys=False))
    done = snakemake(tmp_path, config, "-n", check=False)
    said = done.stdout + done.stderr
    assert done.returncode == 1 and "data/CIFAR-10-C/snow.npy is missing" in said
    assert "delete data/CIFAR-10-C to have the workflow download it again" in said


def test_an_unreachable_host_fails_at_once_naming_data_root_and_the_mirror_setting(tmp_path, monkeypatch):
    """Offline (the name does not resolve): one attempt, and a message that says what to do; a dropped
    connection is retried."""
    import socket
    import urllib.error

    calls = []

    def offline(url, timeout):
        calls.append(url)
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(downloads.urllib.request, "urlopen", offline)
    with pytest.raises(
        DownloadError,
        match=r"could not reach host.invalid: .*name resolution.*Offline\? Put "
        r"cifar10_c's files in .*CIFAR-10-C yourself .*downloads: \{cifar10_c",
    ):
        download(
            "cifar10_c", tmp_path / "data", Source("CIFAR-10-C", (("http://host.invalid/c.tar", "0" * 32),))
        )
    assert len(calls) == 1 and list((tmp_path / "data").iterdir()) == []
    monkeypatch.setattr(downloads.time, "sleep", lambda seconds: None)
    dropped = lambda url, timeout: (
        calls.append(url) or (_ for _ in ()).throw(ConnectionResetError(104, "reset"))
    )
    monkeypatch.setattr(downloads.urllib.request, "urlopen", dropped)
    with pytest.raises(DownloadError, match="could not download .*reset"):
        download(
            "cifar10_c", tmp_path / "data", Source("CIFAR-10-C", (("http://host.invalid/c.tar", "0" * 32),))
        )
    assert len(calls) == 1 + downloads.ATTEMPTS
