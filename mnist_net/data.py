"""MNIST as in-memory tensors: read once through torchvision, normalise once, batch by index."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
DEFAULT_DATA_DIR = "./data"


class DataError(RuntimeError):
    """MNIST could not be read or downloaded; the message says where to put the files."""


def default_data_dir() -> str:
    """`$MNIST_DATA_DIR` when set (CI points it at an offline copy), else ./data."""
    return os.environ.get("MNIST_DATA_DIR") or DEFAULT_DATA_DIR


def _help(root: Path) -> str:
    return (
        f"Put the four MNIST IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        f"t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte) in {root / 'MNIST' / 'raw'}, "
        f"or run once with network access so torchvision can download them, "
        f"or pass --data-dir pointing at an existing torchvision MNIST folder."
    )


@dataclass
class MNISTTensors:
    """One split of MNIST held in memory: normalised float images and int64 labels."""

    images: torch.Tensor  # N x 1 x 28 x 28, float32, normalised
    labels: torch.Tensor  # N, int64

    def __len__(self) -> int:
        return self.labels.shape[0]

    def subset(self, n: int) -> "MNISTTensors":
        """The first n samples (for quick runs and tests)."""
        return MNISTTensors(self.images[:n], self.labels[:n])


def normalize_uint8(images: torch.Tensor) -> torch.Tensor:
    """N x 28 x 28 uint8 -> N x 1 x 28 x 28 float32 normalised with MNIST's mean and std."""
    return ((images.float() / 255.0 - MNIST_MEAN) / MNIST_STD).unsqueeze(1)


def load_raw(data_dir: str | os.PathLike | None = None, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images N x 28 x 28, int64 labels) for one split; downloads when missing and online."""
    from torchvision.datasets import MNIST

    root = Path(data_dir or default_data_dir()).expanduser()
    split = "train" if train else "test"
    try:
        ds = MNIST(root=str(root), train=train, download=True)
    except PermissionError as e:
        raise DataError(f"Cannot write MNIST into {root} ({e.strerror}). Choose a writable "
                        f"--data-dir, or place the files there yourself. {_help(root)}") from None
    except (RuntimeError, OSError, EOFError, ValueError, AssertionError) as e:
        # AssertionError: torchvision asserts on an IDX header it cannot parse (e.g. a .gz file under the raw name).
        # torchvision's download error is "Error downloading <file>:" then a line per mirror tried: keep the
        # first line, and the last mirror's answer in place of its dangling colon.
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        reason = (lines[0].rstrip(":") + (f" ({lines[-1]})" if len(lines) > 1 and lines[0].endswith(":") else "")
                  if lines else "a file is not in the IDX format")
        raise DataError(f"Could not read or download MNIST ({split}) under {root}: {reason}. {_help(root)}") from None
    images, labels = ds.data, ds.targets
    expected = 60000 if train else 10000
    if images.shape != (expected, 28, 28) or labels.shape != (expected,) or int(labels.max()) > 9:
        raise DataError(f"MNIST {split} files under {root / 'MNIST' / 'raw'} look corrupt: got images "
                        f"{tuple(images.shape)} and labels {tuple(labels.shape)}, expected "
                        f"({expected}, 28, 28) and ({expected},). Delete them and download again. {_help(root)}")
    return images, labels.long()


def load_mnist(data_dir: str | os.PathLike | None = None, train: bool = True) -> MNISTTensors:
    """One MNIST split as normalised in-memory tensors."""
    images, labels = load_raw(data_dir, train)
    return MNISTTensors(normalize_uint8(images), labels)


def batches(data: MNISTTensors, batch_size: int, shuffle: bool, generator: torch.Generator | None = None):
    """Yield (images, labels) batches by index; the last partial batch is kept."""
    n = len(data)
    if shuffle:
        for idx in shuffled_indices(n, batch_size, generator, data.labels.device):
            yield data.images[idx], data.labels[idx]
    else:
        for start in range(0, n, batch_size):
            yield data.images[start:start + batch_size], data.labels[start:start + batch_size]


def shuffled_indices(n: int, batch_size: int, generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu"):
    """Yield one epoch's batches of indices into n samples, shuffled on the CPU; the last partial batch is kept."""
    # Drawn on the CPU whatever the device, so a seed gives the same data order on every machine.
    order = torch.randperm(n, generator=generator, device="cpu").to(device)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def num_batches(n: int, batch_size: int) -> int:
    """Batches per epoch with the last partial batch kept."""
    return math.ceil(n / batch_size)


def _uniform(shape: tuple, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """U(0, 1) drawn on the generator's device (a seed gives the same draws wherever it lives), moved to `like`'s."""
    device = generator.device if generator is not None else like.device
    return torch.rand(shape, generator=generator, device=device).to(like.device, like.dtype)


def random_affine(x: torch.Tensor, max_degrees: float, max_shift: float,
                  generator: torch.Generator | None = None, max_shear: float = 0.0,
                  max_scale: float = 0.0) -> torch.Tensor:
    """Rotate each image by U(-deg, deg) and shift it by U(-shift, shift) pixels, as one batched op; optionally
    also slant it by U(-shear, shear) degrees and scale it by 1 + U(-scale, scale)."""
    b = x.shape[0]
    rand = _uniform((b, 3), generator, x) * 2 - 1
    theta = rand[:, 0] * math.radians(max_degrees)
    # affine_grid works in [-1, 1] coordinates: one pixel is 2/W of that range.
    tx, ty = rand[:, 1] * max_shift * 2 / x.shape[-1], rand[:, 2] * max_shift * 2 / x.shape[-2]
    cos, sin = torch.cos(theta), torch.sin(theta)
    mat = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    more = _uniform((b, 2), generator, x) * 2 - 1
    shear = torch.tan(more[:, 0] * math.radians(max_shear))
    zoom = 1 / (1 + more[:, 1] * max_scale)  # the grid maps output to input: 1/s draws the digit s times larger
    mat[:, :, :2] = mat[:, :, :2] * zoom[:, None, None]
    mat[:, :, 1] = mat[:, :, 1] + shear[:, None] * mat[:, :, 0]
    grid = F.affine_grid(mat, list(x.shape), align_corners=False)
    # Background is the normalised value of a black pixel, not 0 (which would be grey).
    background = -MNIST_MEAN / MNIST_STD
    out = F.grid_sample(x - background, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + background


def random_thicken(x: torch.Tensor, amount: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Thicken each image's strokes by U(0, amount) of a 3x3 dilation (ink is high): a brush is thicker than a pen."""
    t = _uniform((x.shape[0], 1, 1, 1), generator, x) * amount
    return x + t * (F.max_pool2d(x, 3, 1, 1) - x)
