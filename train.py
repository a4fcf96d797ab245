"""Train the assignment's CNN: python train.py [--recipe reliable|assignment] [--seed N] [--resume PATH] ..."""
from __future__ import annotations

import argparse
import math
import shlex
import signal
import sys
from pathlib import Path

import torch

from mnist_net.checkpoint import DEFAULT_WEIGHTS, WeightsError
from mnist_net.data import DataError, MNISTTensors, default_data_dir, load_mnist, load_raw, normalize_uint8
from mnist_net.model import summary_text
from mnist_net.run import RUNS, Run, RunError
from mnist_net.training import (DEFAULT_RECIPE, RECIPES, History, choose_kernels, describe_device, pick_device, prepare,
                                 summary_lines)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train the 14,120-parameter MNIST CNN of the assignment.")
    # The schedule's options default to None, so that --resume can tell which ones were given.
    p.add_argument("--recipe", choices=sorted(RECIPES), default=None,
                   help="'assignment' replays the original run (SGD lr 0.01, momentum 0.9, no schedule); "
                        f"'reliable' adds OneCycle LR and batch augmentation (default: {DEFAULT_RECIPE})")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: 19)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default: 128)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (OneCycle's peak); default: the recipe's")
    p.add_argument("--dropout", type=float, default=None, help="dropout rate; default: the recipe's (0.1)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: 1)")
    p.add_argument("--data-dir", default=None,
                   help=f"torchvision MNIST root; downloaded there when missing (default: {default_data_dir()})")
    p.add_argument("--out", default=None,
                   help=f"best weights file; metrics, curves, evaluation and the *.last.pt checkpoint go beside it "
                        f"(default: {RUNS}/RECIPE-seedN[-subsetN]/mnist_net.pt; the shipped {DEFAULT_WEIGHTS}, "
                        f"which the app serves, only when named)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--no-cuda-graph", action="store_true", help="on a GPU, launch each step's kernels one by one")
    p.add_argument("--deterministic", action="store_true",
                   help="on a GPU, only cuDNN kernels that repeat bit for bit (slower); a CPU run always does")
    p.add_argument("--train-subset", type=int, default=None, help="use only the first N training images")
    p.add_argument("--resume", default=None, help="continue the run saved in this *.last.pt checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    args = p.parse_args(argv)
    for flag in ("epochs", "batch_size", "train_subset"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be a positive whole number, got {getattr(args, flag)}")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        p.error(f"--lr must be a positive number, got {args.lr}")
    if args.dropout is not None and not 0.0 <= args.dropout < 1.0:
        p.error(f"--dropout must be in [0, 1), got {args.dropout}")
    if args.seed is not None and not 0 <= args.seed < 2**63 - 1:  # a GPU run seeds its augmentation with seed + 1
        p.error(f"--seed must be between 0 and {2**63 - 2}, got {args.seed}")
    # Its metrics, curves and evaluation are named after it without ".pt": m.pth would share m.pt's.
    if args.out is not None and (not args.out.endswith(".pt") or args.out.endswith(".last.pt")):
        p.error(f"--out must name a .pt file (not a *.last.pt checkpoint), e.g. runs/my-run/mnist_net.pt; got {args.out}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops a run as Ctrl-C does: epochs saved
    given = {k: v for k, v in vars(args).items() if k != "resume"}
    try:
        run = Run.resume(Path(args.resume), given) if args.resume else Run.new(given)
        if run.done:
            print(f"Nothing to resume: {args.resume} is from the last of the run's {run.settings['epochs']} epochs. "
                  f"Its best weights are in {run.out}.")
            return 0
        device = pick_device(args.device)
        s = run.settings
        train = load_mnist(s["data_dir"], train=True)
        test_raw, test_labels = load_raw(s["data_dir"], train=False)  # raw digits: the misclassified sprite
        if s["train_subset"]:
            if s["train_subset"] > len(train):
                raise RunError(f"--train-subset {s['train_subset']} is more than the {len(train)} training images")
            train = train.subset(s["train_subset"])
        torch.manual_seed(s["seed"])
        model = run.model()  # a resumed checkpoint's weights must fit the network
    except (RunError, WeightsError, DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    print(summary_text(model))
    if device.type == "cpu":
        from mnist_net.accelerate import accelerate  # numba: CPU training only

        accelerate(model)
    device_name = describe_device(device)
    print(f"Recipe: {run.recipe}\nDevice: {device_name}; train {len(train)}, test {len(test_labels)} "
          f"images; seed {s['seed']}; {s['epochs']} epochs of batch {s['batch_size']}"
          + (f"; resuming after epoch {run.state['epoch']}" if run.state else "")
          + ("; deterministic cuDNN kernels" if s["deterministic"] and device.type == "cuda" else ""))
    choose_kernels(s["deterministic"])
    model, train = prepare(model, train, device)
    test_cpu = MNISTTensors(normalize_uint8(test_raw), test_labels)
    _, test = prepare(model, test_cpu, device)
    try:
        run.fit(model, train, test, device_name, not args.no_progress, not args.no_cuda_graph)
        # The curves and evaluation take seconds: a second Ctrl-C, raised inside an import or a write, left them
        # unwritten for good (resuming a finished run does nothing).
        handlers = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            result = run.finish(test_cpu, test_raw, test_labels)
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
    except (OSError, WeightsError) as e:  # e.g. a full disk; files are written atomically, earlier ones intact
        print(f"error: could not save the run's files: {e}", file=sys.stderr)
        return 1
    if result is not None:
        for line in summary_lines(History(**run.record["history"]), best_epoch=run.record["best_epoch"]):
            print(line)
        print(f"Best weights (epoch {run.record['best_epoch']}), evaluated again: {result.line()}\nSaved them to "
              f"{run.out}; the checkpoint, metrics, curves and evaluation beside them.")
        if not run.stopped:
            out = shlex.quote(str(run.out))
            print(f"Fit their not-a-digit detector (the app's \"This doesn't look like a digit\"): python -m "
                  f"mnist_net.novelty --weights {out} --data-dir {shlex.quote(str(s['data_dir']))}\n"
                  f"Serve them: MNIST_NET_WEIGHTS={out} python app.py")
    epochs_done = run.record.get("epochs_done") or (run.state or {}).get("epoch", 0)  # 0: an older run's checkpoint
    if run.stopped == 130 and 0 < epochs_done < s["epochs"] and run.last.exists():
        print(f"Resume with: {run.resume_command()}", file=sys.stderr)
    return run.stopped or (0 if result is not None else 1)


if __name__ == "__main__":
    sys.exit(main())
