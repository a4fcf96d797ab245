"""GPU check of train.py's CUDA-graph step: does it compute what eager PyTorch computes, and how much faster?

    python bench/cuda_check.py [--data-dir DIR] [--steps 5] [--rounds 2] [--replays 200] [--saves 20] [--save-dir DIR]

1. Same result: from the same weights, BatchNorm statistics and random-number states, --steps training
   steps (forward, backward, SGD with the default recipe's OneCycle schedule and augmentation) run eagerly
   twice and through the captured graph once, with cuDNN limited to deterministic kernels. Printed: the
   largest differences in loss, weights and BatchNorm statistics, eager vs eager (0 unless something
   else in the step is nondeterministic) and eager vs graph. Exit status 1 when eager vs eager is 0 and
   the graph is not.
2. Speed: whole epochs of `train_epoch` (60,000 images, batch 128, default recipe), eager and graphed
   in alternating rounds after one untimed epoch each, in seconds per epoch and as a ratio; and the GPU
   time of one graph replay alone (CUDA events), which is the floor of a graphed step.
3. What train.py adds to each epoch: one checkpoint written atomically and fsynced, timed --saves times.
Needs a CUDA GPU; without one it says so and exits with status 2.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mnist_net.checkpoint import save_weights  # noqa: E402
from mnist_net.data import DataError, default_data_dir, load_mnist, num_batches  # noqa: E402
from mnist_net.model import Net  # noqa: E402
from mnist_net.training import (RECIPES, batch_loss, choose_kernels, graphed_step, make_optimizer,  # noqa: E402
                                prepare, train_epoch)
from bench_args import count  # noqa: E402  (same folder)

BATCH = 128


def largest_difference(a: dict, b: dict) -> tuple[float, str]:
    """Max |a - b| over every tensor of two state dicts, and the tensor it is in."""
    return max(((float((a[k].double() - b[k].double()).abs().max()), k) for k in a), default=(0.0, ""))


def run_steps(model, train, recipe, indices, start, graphed: bool):
    """Losses and state dict after len(indices) steps from `start` (weights, buffers, RNG states)."""
    weights, cuda_rng, aug, aug_rng = start
    model.load_state_dict(weights)  # copies in place: the tensors keep their addresses
    for p in model.parameters():
        p.grad = None
    torch.cuda.set_rng_state(cuda_rng)
    aug.set_state(aug_rng)
    # The first steps of the default run's schedule.
    opt, sched = make_optimizer(model, recipe, epochs=19, steps_per_epoch=num_batches(len(train), BATCH))
    step = graphed_step(model, train, recipe, BATCH, aug) if graphed else None
    losses = []
    for index in indices:
        if step is not None:
            loss = step(index)
        else:
            opt.zero_grad(set_to_none=True)
            loss = batch_loss(model, train, index, recipe, aug)
            loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.detach().clone())
    return torch.stack(losses), {k: v.detach().clone() for k, v in model.state_dict().items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=default_data_dir())
    p.add_argument("--steps", type=count(1), default=5, help="steps compared, eager vs graph")
    p.add_argument("--rounds", type=count(1), default=2, help="alternating timed epochs per mode")
    p.add_argument("--replays", type=count(1), default=200, help="graph replays timed alone")
    p.add_argument("--saves", type=count(1), default=20, help="checkpoint saves timed")
    p.add_argument("--save-dir", default="runs/cuda_check", help="where the timed checkpoints are written")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print(f"error: no CUDA GPU is visible to this PyTorch ({torch.__version__}); this check needs one.",
              file=sys.stderr)
        return 2
    device = torch.device("cuda")
    print(f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}")
    torch.manual_seed(0)
    recipe = RECIPES["reliable"]
    model, train = prepare(Net(dropout=recipe.dropout), load_mnist(args.data_dir, train=True), device)
    model.train()

    if args.steps > len(train) // BATCH:
        p.error(f"--steps: at most {len(train) // BATCH} (full batches of {BATCH} in the training set)")

    # 1. Same result. cuDNN limited to deterministic kernels here, so the spread of eager vs eager is 0 and
    # any difference of the graph's is its own; train.py does not limit it (see mnist_net.training.choose_kernels).
    choose_kernels(deterministic=True)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(1))
    indices = [order[i * BATCH:(i + 1) * BATCH].to(device) for i in range(args.steps)]
    aug = torch.Generator(device=device).manual_seed(2)
    start = ({k: v.clone() for k, v in model.state_dict().items()}, torch.cuda.get_rng_state(), aug, aug.get_state())
    loss_e1, state_e1 = run_steps(model, train, recipe, indices, start, graphed=False)
    loss_e2, state_e2 = run_steps(model, train, recipe, indices, start, graphed=False)
    loss_g, state_g = run_steps(model, train, recipe, indices, start, graphed=True)
    diffs = []
    for name, loss, state in (("eager vs eager", loss_e2, state_e2), ("eager vs graph", loss_g, state_g)):
        diff, where = largest_difference(state_e1, state)
        loss_diff = float((loss - loss_e1).abs().max())
        diffs.append(max(diff, loss_diff))
        print(f"{name}: {args.steps} steps, loss max |diff| {loss_diff:.3g}, "
              f"weights and BN statistics max |diff| {diff:.3g} ({where or '-'}); "
              f"losses {', '.join(f'{v:.4f}' for v in loss.tolist())}")
    if diffs[0] == 0 and diffs[1] != 0:
        print("error: eager steps repeat exactly, but the graph's differ from them", file=sys.stderr)
        return 1
    moved, _ = largest_difference(start[0], state_g)
    print(f"graph run moved the weights by up to {moved:.3g} (0 would mean it did not train)")
    choose_kernels(deterministic=False)  # timed as train.py runs: cuDNN's benchmark picks the kernels

    # 2. Speed: whole epochs, eager and graphed alternating. Each mode has its own model and optimizer: an
    # eager step drops the .grad tensors that the graph's replays write into.
    runners = {}
    for mode in ("eager", "graph"):
        torch.manual_seed(0)
        m, _ = prepare(Net(dropout=recipe.dropout), train, device)
        opt, sched = make_optimizer(m, recipe, epochs=args.rounds + 1, steps_per_epoch=num_batches(len(train), BATCH))
        g = torch.Generator(device=device).manual_seed(2)
        runners[mode] = (m, opt, sched, g, graphed_step(m, train, recipe, BATCH, g) if mode == "graph" else None)
    order_gen = torch.Generator().manual_seed(3)
    seconds = {mode: [] for mode in runners}
    for rnd in range(args.rounds + 1):  # round 0 warms up (cuDNN's benchmark for the last, partial batch) untimed
        for mode, (m, opt, sched, g, step) in runners.items():
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            train_epoch(m, train, opt, sched, recipe, BATCH, order_gen, progress=False, aug_generator=g, step=step)
            torch.cuda.synchronize()
            if rnd:
                seconds[mode].append(time.perf_counter() - t0)
    step = runners["graph"][-1]
    model = runners["graph"][0]
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    begin.record()
    for _ in range(args.replays):
        step.graph.replay()
    end.record()
    end.synchronize()
    replay_ms = begin.elapsed_time(end) / args.replays
    med = {k: statistics.median(v) for k, v in seconds.items()}
    steps = num_batches(len(train), BATCH)
    for mode, values in seconds.items():
        print(f"{mode}: median {med[mode]:.2f} s/epoch (rounds {', '.join(f'{v:.2f}' for v in values)}) = "
              f"{med[mode] / steps * 1000:.2f} ms/step; 19 epochs ~ {19 * med[mode]:.1f} s of training")
    print(f"graph replay alone (forward + backward, no optimizer): {replay_ms:.3f} ms of GPU time; "
          f"x {steps} = {replay_ms * steps / 1000:.2f} s/epoch")
    print(f"speed-up graph vs eager: {med['eager'] / med['graph']:.2f}x")

    # 3. What train.py adds per epoch: its checkpoint, written atomically and fsynced as train.py does.
    folder = Path(args.save_dir)
    opt = runners["graph"][1]
    state = {"epoch": 1, "optimizer": opt.state_dict(), "history": {}, "rng": {"torch": torch.get_rng_state()}}
    times = []
    for i in range(args.saves):
        t0 = time.perf_counter()
        save_weights(model, folder / "check.last.pt", metrics={"epoch": i}, train_state=state)
        times.append(time.perf_counter() - t0)
    (folder / "check.last.pt").unlink()
    print(f"checkpoint save into {folder} (serialise, write, fsync, rename): median "
          f"{statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms over {args.saves}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DataError as e:
        sys.exit(f"{e}")
