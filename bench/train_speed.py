"""Training throughput: the assignment's DataLoader pipeline vs the one train.py uses, in one process.

    python bench/train_speed.py [--data-dir DIR] [--warm 10] [--rounds 8] [--batches 10]

The two pipelines are timed in alternating rounds (a, b, a, b, ...) and compared by their medians,
so that this VM's drift (its step times move by 15% or more within minutes) hits both alike.
"""
from __future__ import annotations

import argparse
import statistics
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


def time_steps(step, batch_iter, n: int) -> float:
    """Seconds per batch over n batches (data fetching included)."""
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


def assignment_pipeline(data_dir: str):
    """(step, batch iterator) of the assignment's run: per-sample transforms through a DataLoader."""
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))])
    ds = datasets.MNIST(data_dir, train=True, download=True, transform=tf)
    loader = torch.utils.data.DataLoader(ds, batch_size=128, shuffle=True, num_workers=1)
    torch.manual_seed(0)
    model = plain_model().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def endless():
        while True:
            yield from loader
    return make_step(model, opt), endless()


def our_pipeline(data_dir: str):
    """(step, batch iterator) of train.py's CPU pipeline with the default recipe's augmentation."""
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
    return make_step(model, opt, augment), endless()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=default_data_dir())
    p.add_argument("--warm", type=int, default=10, help="untimed batches per pipeline first")
    p.add_argument("--rounds", type=int, default=8, help="alternating timed rounds")
    p.add_argument("--batches", type=int, default=10, help="timed batches per pipeline per round")
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 128, {args.warm} warm batches, "
          f"then {args.rounds} alternating rounds of {args.batches} timed batches each")
    names = {"a": "(a) assignment: DataLoader+ToTensor/Normalize, eager, nn.Dropout",
             "b": "(b) train.py: in-memory tensors, channels_last, cheap dropout mask, batch augment"}
    pipelines, peaks = {}, {}
    for key, make in (("a", assignment_pipeline), ("b", our_pipeline)):
        reset_peak_rss()
        step, it = make(args.data_dir)
        time_steps(step, it, args.warm)
        peaks[key] = peak_rss_mb()  # the main process's; (a)'s loader worker is a process of its own
        pipelines[key] = (step, it)
    samples = {"a": [], "b": []}
    for _ in range(args.rounds):
        for key, (step, it) in pipelines.items():
            samples[key].append(time_steps(step, it, args.batches))
    med = {k: statistics.median(v) for k, v in samples.items()}
    for key in ("a", "b"):
        sec = med[key]
        print(f"{names[key]}\n    median {sec * 1000:.1f} ms/batch (rounds {min(samples[key]) * 1000:.0f}-"
              f"{max(samples[key]) * 1000:.0f}) = {sec * BATCHES_PER_EPOCH:.1f} s/epoch, "
              f"19 epochs ~ {sec * BATCHES_PER_EPOCH * 19 / 60:.1f} min (training only), "
              f"peak RSS {peaks[key]:.0f} MB")
    per_round = sorted(a / b for a, b in zip(samples["a"], samples["b"]))
    print(f"speed-up (b) vs (a): {med['a'] / med['b']:.2f}x (per-round ratios {per_round[0]:.2f}-{per_round[-1]:.2f})")


if __name__ == "__main__":
    main()
