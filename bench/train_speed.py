"""CPU training throughput: the assignment's pipeline, train.py's with stock modules, and train.py's as it runs.

    python bench/train_speed.py [--data-dir DIR] [--warm 10] [--rounds 8] [--batches 10] [--busy-core]

(a) the assignment's notebook: DataLoader + per-sample ToTensor/Normalize, NCHW, the stock model;
(b) train.py's data path (in-memory tensors, channels_last, batch augmentation) with the stock model;
(c) the same with `mnist_net.accelerate` applied, as train.py runs on a CPU.
The pipelines are timed in alternating rounds (a, b, c, a, b, c, ...), never at the same time, and compared by
their medians, so that this VM's drift hits all alike. (c) runs in a process of its own because accelerate
tunes glibc's allocator for the whole process. --busy-core keeps one core busy with a spinning process
throughout, as another program would: a kernel that waits on every core can then lose to stock PyTorch.
"""
from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mnist_net.data import DataError, MNIST_MEAN, MNIST_STD, batches, default_data_dir, load_mnist, load_raw  # noqa: E402
from mnist_net.model import Net  # noqa: E402
from mnist_net.training import RECIPES, augment, prepare  # noqa: E402
from bench_args import count  # noqa: E402  (same folder)

BATCHES_PER_EPOCH = 469  # 60,000 / 128, last partial batch kept
NAMES = {"a": "(a) assignment: DataLoader + ToTensor/Normalize, NCHW, stock modules",
         "b": "(b) train.py data path, stock modules (no accelerate)",
         "c": "(c) train.py as it runs on a CPU: the same + mnist_net.accelerate"}


def make_step(model, opt, augment=None):
    def step(x, y):
        if augment is not None:
            x = augment(x)
        opt.zero_grad(set_to_none=True)
        F.nll_loss(model(x), y).backward()
        opt.step()
    return step


def pipeline_a(data_dir: str):
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))])
    loader = torch.utils.data.DataLoader(datasets.MNIST(data_dir, train=True, download=True, transform=tf),
                                         batch_size=128, shuffle=True, num_workers=1)
    torch.manual_seed(0)
    model = Net().train()

    def endless():
        while True:
            yield from loader
    return make_step(model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)), endless()


def _train_py_pipeline(data_dir: str, accelerated: bool):
    torch.manual_seed(0)
    model = Net()
    if accelerated:
        from mnist_net.accelerate import accelerate

        accelerate(model)
    model, train = prepare(model, load_mnist(data_dir, train=True), torch.device("cpu"))
    model.train()
    recipe, g = RECIPES["reliable"], torch.Generator().manual_seed(0)

    def endless():
        while True:
            yield from batches(train, 128, shuffle=True, generator=g)

    step = make_step(model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), lambda x: augment(x, recipe, g))
    return step, endless()


def pipeline_b(data_dir: str):
    return _train_py_pipeline(data_dir, accelerated=False)


def pipeline_c(data_dir: str):
    return _train_py_pipeline(data_dir, accelerated=True)


class InProcess:
    """A pipeline built and warmed up in this process; time(n) -> seconds per batch."""

    def __init__(self, make, data_dir: str, warm: int):
        self.step, self.batches = make(data_dir)
        if warm:
            self.time(warm)

    def time(self, n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            self.step(*next(self.batches))
        return (time.perf_counter() - t0) / n

    def close(self) -> None:
        pass


def _serve(conn, make_name: str, data_dir: str, warm: int) -> None:
    runner = InProcess(globals()[make_name], data_dir, warm)
    conn.send("ready")
    for n in iter(conn.recv, None):
        conn.send(runner.time(n))


class OwnProcess:
    """A pipeline in a freshly spawned process, timed on request."""

    def __init__(self, make, data_dir: str, warm: int):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, make.__name__, data_dir, warm), daemon=True)
        self.proc.start()
        self.conn.recv()

    def time(self, n: int) -> float:
        self.conn.send(n)
        return self.conn.recv()

    def close(self) -> None:
        self.conn.send(None)
        self.proc.join(timeout=30)


def _spin() -> None:
    while True:
        pass


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=default_data_dir())
    p.add_argument("--warm", type=count(0), default=10, help="untimed batches per pipeline first")
    p.add_argument("--rounds", type=count(1), default=8, help="alternating timed rounds")
    p.add_argument("--batches", type=count(1), default=10, help="timed batches per pipeline per round")
    p.add_argument("--busy-core", action="store_true", help="keep one core busy with a spinning process throughout")
    args = p.parse_args()
    load_raw(args.data_dir, train=True)  # a missing dataset fails here with our message, not inside (a)
    busy = multiprocessing.get_context("spawn").Process(target=_spin, daemon=True) if args.busy_core else None
    if busy:
        busy.start()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 128, {args.warm} warm batches, then "
          f"{args.rounds} alternating rounds of {args.batches} batches each"
          + ("; one core kept busy by a spinning process" if busy else "; no other load started"))
    runners = {"a": InProcess(pipeline_a, args.data_dir, args.warm), "b": InProcess(pipeline_b, args.data_dir, args.warm),
               "c": OwnProcess(pipeline_c, args.data_dir, args.warm)}
    samples = {k: [] for k in runners}
    try:
        for _ in range(args.rounds):
            for key, runner in runners.items():
                samples[key].append(runner.time(args.batches))
    finally:
        for runner in runners.values():
            runner.close()
        if busy:
            busy.kill()
    med = {k: statistics.median(v) for k, v in samples.items()}
    for key, sec in med.items():
        print(f"{NAMES[key]}\n    median {sec * 1000:.1f} ms/batch (rounds {min(samples[key]) * 1000:.0f}-"
              f"{max(samples[key]) * 1000:.0f}) = {sec * BATCHES_PER_EPOCH:.1f} s/epoch of training")
    for slow, fast in (("a", "c"), ("b", "c")):
        ratios = sorted(a / b for a, b in zip(samples[slow], samples[fast]))
        print(f"speed-up ({fast}) vs ({slow}): {med[slow] / med[fast]:.2f}x (per-round {ratios[0]:.2f}-{ratios[-1]:.2f})")


if __name__ == "__main__":
    try:
        main()
    except DataError as e:  # no MNIST where we looked: say where and how to get it, no traceback
        sys.exit(f"{e}")
