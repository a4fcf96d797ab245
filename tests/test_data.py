import math
import os
import shutil
from pathlib import Path

import pytest
import torch

from mnist_net.data import (DataError, MNIST_MEAN, MNIST_STD, batches, load_mnist, load_raw, random_affine,
                            random_thicken)


def test_real_mnist_in_memory(test_set):
    assert test_set.images.shape == (10000, 1, 28, 28) and test_set.images.dtype == torch.float32
    assert test_set.labels.shape == (10000,) and set(test_set.labels.unique().tolist()) == set(range(10))
    # normalised once with the usual constants: the background is (0 - mean) / std
    assert test_set.images.min().item() == pytest.approx(-MNIST_MEAN / MNIST_STD, abs=1e-5)


def test_batches_cover_every_sample_once(test_set):
    g = torch.Generator().manual_seed(0)
    seen = torch.cat([y for _, y in batches(test_set, 128, shuffle=True, generator=g)])
    assert len(seen) == 10000
    assert torch.equal(torch.bincount(seen), torch.bincount(test_set.labels))


def test_random_affine_keeps_background_black(test_set):
    x = test_set.images[:64]
    out = random_affine(x, 7.0, 1.0, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    corner = out[:, :, :2, :2]
    torch.testing.assert_close(corner, torch.full_like(corner, -MNIST_MEAN / MNIST_STD), atol=1e-4, rtol=0)
    assert not torch.equal(out, x)


def test_slant_and_scale_move_the_ink_as_asked():
    background = -MNIST_MEAN / MNIST_STD
    bar = torch.full((64, 1, 28, 28), background)
    bar[:, :, 4:24, 12:16] = 2.0  # an upright stroke, rows 4-23
    # The draws random_affine makes: rotation and shift first (unused here), then shear and scale.
    g = torch.Generator().manual_seed(0)
    torch.rand(64, 3, generator=g)
    shear_u, scale_u = (torch.rand(64, 2, generator=g) * 2 - 1).unbind(1)

    slanted = random_affine(bar, 0.0, 0.0, torch.Generator().manual_seed(0), max_shear=20.0)
    cols = torch.arange(28.0)
    ink = slanted[:, 0] - background
    centre = lambda row: (ink[:, row] * cols).sum(1) / ink[:, row].sum(1)  # noqa: E731
    lean = (centre(20) - centre(7)) / 13  # columns moved per row down the stroke
    torch.testing.assert_close(lean, -torch.tan(shear_u * math.radians(20.0)), atol=0.03, rtol=0)

    scaled = random_affine(bar, 0.0, 0.0, torch.Generator().manual_seed(0), max_scale=0.3)
    area = (scaled - background).sum((1, 2, 3)) / (bar - background).sum((1, 2, 3))
    torch.testing.assert_close(area, (1 + scale_u * 0.3) ** 2, atol=0.04, rtol=0)
    corner = torch.cat([scaled, slanted])[:, :, :2, :2]
    torch.testing.assert_close(corner, torch.full_like(corner, background), atol=1e-4, rtol=0)


def test_random_thicken_only_adds_ink_around_strokes(test_set):
    x = test_set.images[:64]
    out = random_thicken(x, 1.0, torch.Generator().manual_seed(0))
    assert (out >= x - 1e-6).all() and (out > x + 1e-3).any()
    thickest = torch.nn.functional.max_pool2d(x, 3, 1, 1)
    assert (out <= thickest + 1e-6).all()  # never beyond one pixel's dilation
    torch.testing.assert_close(random_thicken(x, 0.0), x)


def test_missing_dataset_offline_gives_clear_message(tmp_path, monkeypatch):
    import torchvision.datasets.mnist as tvm

    # No network here or in CI: make the download fail fast the way an offline machine does.
    def offline(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tvm, "download_and_extract_archive", offline)
    with pytest.raises(DataError) as e:
        load_mnist(tmp_path / "empty", train=False)
    msg = str(e.value)
    assert "t10k-images-idx3-ubyte" in msg and str(tmp_path / "empty") in msg


@pytest.fixture
def offline(monkeypatch):
    """Downloads fail as on an offline machine (deterministic wherever the tests run); calls are recorded."""
    from urllib.error import URLError

    import torchvision.datasets.mnist as tvm

    calls = []

    def download(url, download_root, **_k):
        calls.append(Path(download_root))
        raise URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(tvm, "download_and_extract_archive", download)
    return calls


def test_a_failed_download_says_what_the_last_mirror_answered(tmp_path, offline):
    # torchvision's message is "Error downloading <file>:" and a line per mirror; its first line alone
    # ended in a dangling colon ("...ubyte.gz:.").
    with pytest.raises(DataError) as e:
        load_raw(tmp_path / "empty", train=False)
    # (torchvision downloads the training files first, whichever split is asked for)
    assert "Error downloading train-images-idx3-ubyte.gz (<urlopen error [Errno -2] Name or service not known>)." \
        in str(e.value)


def test_corrupt_idx_file(tmp_path, data_dir):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        shutil.copy(os.path.join(data_dir, "MNIST", "raw", name), raw / name)
    data = (raw / "t10k-images-idx3-ubyte").read_bytes()
    (raw / "t10k-images-idx3-ubyte").write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError) as e:
        load_raw(tmp_path, train=False)
    assert "MNIST" in str(e.value) and str(tmp_path) in str(e.value)


def test_gzipped_file_under_the_raw_name(tmp_path, data_dir):
    # Copying the .gz download under the unpacked name is an easy mistake; torchvision then fails an assert.
    import gzip

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / name).symlink_to(Path(data_dir).resolve() / "MNIST" / "raw" / name)
    good = (Path(data_dir) / "MNIST" / "raw" / "t10k-images-idx3-ubyte").read_bytes()
    (raw / "t10k-images-idx3-ubyte").write_bytes(gzip.compress(good, compresslevel=1))
    with pytest.raises(DataError) as e:
        load_raw(tmp_path, train=False)
    assert str(tmp_path) in str(e.value) and "Put the four MNIST IDX files" in str(e.value)


def test_read_only_data_dir_with_data_works(data_dir):
    # CI's copy of shared/ has no write bits (which root ignores): reading must not write anything there.
    def listing():
        return sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in Path(data_dir).rglob("*"))

    before = listing()
    images, labels = load_raw(data_dir, train=False)
    assert images.shape == (10000, 28, 28)
    assert listing() == before


def test_read_only_empty_dir_gives_clear_message(tmp_path, monkeypatch):
    import torchvision.datasets.mnist as tvm

    def offline(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tvm, "download_and_extract_archive", offline)
    with pytest.raises(DataError) as e:
        load_mnist(tmp_path / "ro", train=False)
    assert f"Cannot write MNIST into {tmp_path / 'ro'}" in str(e.value) and "writable" in str(e.value)
