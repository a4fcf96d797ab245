"""Training throughput: the assignment's DataLoader pipeline vs the one train.py uses, in one process.

    python bench/train_speed.py [--data-dir DIR] [--warm 10] [--batches 60]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mnist_net.data import MNIST_MEAN, MNIST_STD, batches, default_data_dir, load_mnist  # noqa: E402
from mnist_net.model import Dropout, Net  # noqa: E402
from mnist_net.training import RECIPES, prepare, tune_cpu_allocator  # noqa: E402
from mnist_net.data import random_affine  # noqa: E402

BATCHES_PER_EPOCH = 469  # 60,000 / 128, last partial batch kept


def reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM, so each pipeline's peak is its own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def plain_model() -> Net:
    """The model as the assignment ran it: NCHW, torch's own nn.Dropout."""
    model = Net(dropout=0.1)
    for block in (model.block1, model.block2, model.block3, model.block4):
        for name, mod in block.named_children():
            if isinstance(mod, Dropout):
                setattr(block, name, nn.Dropout(mod.p))
    return model


def time_steps(step, batch_iter, warm: int, n: int) -> float:
    """Seconds per batch over n batches after warm batches (data fetching included)."""
    for _ in range(warm):
        step(*next(batch_iter))
    t0 = time.perf_counter()
    for _ in range(n):
        step(*next(batch_iter))
    return (time.perf_counter() - t0) / n


def make_step(model, opt, augment=None):
    def step(x, y):
        if augment is not None:
            x = augment(x)
        opt.zero_grad(set_to_none=True)
        loss = F.nll_loss(model(x), y)
        loss.backward()
        opt.step()
    return step


def assignment_pipeline(data_dir: str, warm: int, n: int) -> float:
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))])
    ds = datasets.MNIST(data_dir, train=True, download=True, transform=tf)
    loader = torch.utils.data.DataLoader(ds, batch_size=128, shuffle=True, num_workers=1)
    torch.manual_seed(0)
    model = plain_model().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    it = iter(loader)
    return time_steps(make_step(model, opt), it, warm, n)


def our_pipeline(data_dir: str, warm: int, n: int) -> float:
    tune_cpu_allocator()
    torch.manual_seed(0)
    model, train = prepare(Net(dropout=0.1), load_mnist(data_dir, train=True), torch.device("cpu"))
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    recipe = RECIPES["reliable"]
    g = torch.Generator().manual_seed(0)

    def endless():
        while True:
            yield from batches(train, 128, shuffle=True, generator=g)

    augment = lambda x: random_affine(x, recipe.rotate_degrees, recipe.shift_pixels, g)  # noqa: E731
    return time_steps(make_step(model, opt, augment), endless(), warm, n)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=default_data_dir())
    p.add_argument("--warm", type=int, default=10)
    p.add_argument("--batches", type=int, default=60)
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 128, "
          f"{args.warm} warm + {args.batches} timed batches each")
    results = {}
    for name, fn in [("(a) assignment: DataLoader+ToTensor/Normalize, eager, nn.Dropout", assignment_pipeline),
                     ("(b) train.py: in-memory tensors, channels_last, cheap dropout mask, batch augment", our_pipeline)]:
        reset_peak_rss()
        sec = fn(args.data_dir, args.warm, args.batches)
        results[name] = sec
        print(f"{name}\n    {sec * 1000:.1f} ms/batch = {sec * BATCHES_PER_EPOCH:.1f} s/epoch, "
              f"19 epochs ~ {sec * BATCHES_PER_EPOCH * 19 / 60:.1f} min (training only), "
              f"peak RSS {peak_rss_mb():.0f} MB")
    a, b = results.values()
    print(f"speed-up (b) vs (a): {a / b:.2f}x")


if __name__ == "__main__":
    main()
