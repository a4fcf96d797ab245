"""Training throughput: the assignment's DataLoader pipeline vs the one train.py uses, on one machine.

    python bench/train_speed.py [--data-dir DIR] [--warm 10] [--rounds 8] [--batches 10] [--one-process]

The two pipelines are timed in alternating rounds (a, b, a, b, ...), never at the same time, and
compared by their medians, so that this VM's drift (its step times move by 15% or more within
minutes) hits both alike. (a) runs in this process exactly as the assignment's notebook did; (b) runs
in a process of its own, spawned by this one, because train.py tunes glibc's allocator for the whole
process and that tuning would otherwise apply to (a) as well. `--one-process` runs both here anyway,
(a) then with (b)'s allocator settings.
"""
from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mnist_net.data import DataError, MNIST_MEAN, MNIST_STD, batches, default_data_dir, load_mnist, load_raw  # noqa: E402
from mnist_net.model import Net  # noqa: E402
from mnist_net.training import RECIPES, prepare, tune_cpu_allocator  # noqa: E402
from mnist_net.data import random_affine  # noqa: E402
from bench_args import count  # noqa: E402  (same folder)

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
    """The model as the assignment ran it: NCHW, plain nn.Sequential blocks of torch's own modules."""
    model = Net(dropout=0.1)
    for block_name in model.block_names:
        layers = OrderedDict()
        for name, mod in getattr(model, block_name).named_children():
            if isinstance(mod, nn.Conv2d):  # our subclass only changes the CPU backward pass; use torch's
                plain = nn.Conv2d(mod.in_channels, mod.out_channels, mod.kernel_size)
                plain.load_state_dict(mod.state_dict())
                mod = plain
            layers[name] = mod
        setattr(model, block_name, nn.Sequential(layers))
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


class InProcess:
    """A pipeline built and warmed up in this process."""

    def __init__(self, make, data_dir: str, warm: int):
        reset_peak_rss()
        self.step, self.batches = make(data_dir)
        if warm:  # --warm 0: time from the very first batch
            time_steps(self.step, self.batches, warm)
        self.peak_rss_mb = peak_rss_mb()  # this process's; (a)'s loader worker is a process of its own

    def time(self, n: int) -> float:
        return time_steps(self.step, self.batches, n)

    def close(self) -> None:
        pass


def _serve(conn, make_name: str, data_dir: str, warm: int) -> None:
    runner = InProcess(globals()[make_name], data_dir, warm)
    conn.send(runner.peak_rss_mb)
    for n in iter(conn.recv, None):
        conn.send(runner.time(n))


class OwnProcess:
    """A pipeline in a freshly spawned process, timed on request, so process-wide settings stay its own."""

    def __init__(self, make, data_dir: str, warm: int):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, make.__name__, data_dir, warm), daemon=True)
        self.proc.start()
        self.peak_rss_mb = self.conn.recv()

    def time(self, n: int) -> float:
        self.conn.send(n)
        return self.conn.recv()

    def close(self) -> None:
        self.conn.send(None)
        self.proc.join(timeout=30)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=default_data_dir())
    p.add_argument("--warm", type=count(0), default=10, help="untimed batches per pipeline first")
    p.add_argument("--rounds", type=count(1), default=8, help="alternating timed rounds")
    p.add_argument("--batches", type=count(1), default=10, help="timed batches per pipeline per round")
    p.add_argument("--one-process", action="store_true",
                   help="run (b) in this process too; (a) then runs with (b)'s allocator settings")
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 128, {args.warm} warm batches, "
          f"then {args.rounds} alternating rounds of {args.batches} timed batches each; "
          + ("both pipelines in this process" if args.one_process else "(b) in a process of its own"))
    names = {"a": "(a) assignment: DataLoader+ToTensor/Normalize, eager, nn.Dropout and nn.BatchNorm2d",
             "b": "(b) train.py: in-memory tensors, channels_last, ReLU-BatchNorm-dropout fused (numba), batch augment"}
    load_raw(args.data_dir, train=True)  # a missing dataset fails here with our message, not inside (a)
    runners = {"a": InProcess(assignment_pipeline, args.data_dir, args.warm)}
    runners["b"] = (InProcess if args.one_process else OwnProcess)(our_pipeline, args.data_dir, args.warm)
    samples = {"a": [], "b": []}
    try:
        for _ in range(args.rounds):
            for key, runner in runners.items():
                samples[key].append(runner.time(args.batches))
    finally:
        for runner in runners.values():
            runner.close()
    med = {k: statistics.median(v) for k, v in samples.items()}
    for key in ("a", "b"):
        sec = med[key]
        print(f"{names[key]}\n    median {sec * 1000:.1f} ms/batch (rounds {min(samples[key]) * 1000:.0f}-"
              f"{max(samples[key]) * 1000:.0f}) = {sec * BATCHES_PER_EPOCH:.1f} s/epoch, "
              f"19 epochs ~ {sec * BATCHES_PER_EPOCH * 19 / 60:.1f} min (training only), "
              f"peak RSS {runners[key].peak_rss_mb:.0f} MB")
    per_round = sorted(a / b for a, b in zip(samples["a"], samples["b"]))
    print(f"speed-up (b) vs (a): {med['a'] / med['b']:.2f}x (per-round ratios {per_round[0]:.2f}-{per_round[-1]:.2f})")


if __name__ == "__main__":
    try:
        main()
    except DataError as e:  # no MNIST where we looked: say where and how to get it, no traceback
        sys.exit(f"{e}")
