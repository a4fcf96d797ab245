"""Reproduce the assignment run: python train.py [--recipe reliable|assignment] [--seed N] ..."""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

from mnist_net.artifacts import save_curves, sibling, write_json
from mnist_net.checkpoint import DEFAULT_WEIGHTS, WeightsError, build_model, read_checkpoint, save_weights
from mnist_net.data import DataError, default_data_dir, load_mnist
from mnist_net.model import Net, count_parameters, summary_text
from mnist_net.training import (DEFAULT_RECIPE, RECIPES, History, Recipe, describe_device, fit, pick_device,
                                prepare, summary_lines, tune_cpu_allocator)


def unwritable_folder(folder: Path) -> str | None:
    """Why files cannot be written in folder (created if missing), or None when they can."""
    if folder.exists() and not folder.is_dir():
        return f"{folder} is a file, not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        return f"{e.strerror or e} ({e.filename or folder})"
    return None


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train the 14,120-parameter MNIST CNN of the assignment.")
    p.add_argument("--recipe", choices=sorted(RECIPES), default=DEFAULT_RECIPE,
                   help="'assignment' replays the original run (SGD lr 0.01, momentum 0.9, no schedule); "
                        "'reliable' adds OneCycle LR and mild batch augmentation (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=19, help="epochs (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=128, help="batch size (default: %(default)s)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (peak LR for OneCycle); default: the recipe's")
    p.add_argument("--dropout", type=float, default=None, help="dropout rate; default: the recipe's (0.1)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default: %(default)s)")
    p.add_argument("--data-dir", default=default_data_dir(),
                   help="torchvision MNIST root; downloaded there when missing (default: %(default)s)")
    p.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS,
                   help="best weights file; metrics, curves and the last-epoch checkpoint go beside it "
                        "(default: the shipped weights, %(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--train-subset", type=int, default=None, help="use only the first N training images (quick tries)")
    p.add_argument("--resume", type=Path, default=None,
                   help="continue from a *.last.pt checkpoint written by an earlier run")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1:
        p.error("--epochs and --batch-size must be positive")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        p.error(f"--lr must be a positive number, got {args.lr}")
    if args.dropout is not None and not 0.0 <= args.dropout < 1.0:
        p.error(f"--dropout must be in [0, 1), got {args.dropout}")
    if args.train_subset is not None and args.train_subset < 1:
        p.error(f"--train-subset must be a positive number of images, got {args.train_subset}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    resume_state, resumed_from = None, None
    if args.resume is not None:
        try:
            ckpt = read_checkpoint(args.resume)
        except WeightsError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if "train_state" not in ckpt:
            print(f"error: {args.resume} has no training state to resume from; pass the *.last.pt "
                  f"file that train.py writes beside the weights.", file=sys.stderr)
            return 2
        saved = ckpt["metrics"]["args"]
        # A resumed run must follow the same schedule and data order as the original one.
        for key in ("recipe", "epochs", "batch_size", "lr", "dropout", "seed", "train_subset", "data_dir"):
            setattr(args, key, saved[key])
        if args.out == DEFAULT_WEIGHTS and saved.get("out"):
            args.out = Path(saved["out"])
        resume_state, resumed_from = ckpt["train_state"], str(args.resume)

    base = RECIPES[args.recipe]
    recipe = Recipe(**{**base.__dict__, "lr": args.lr if args.lr is not None else base.lr,
                       "dropout": args.dropout if args.dropout is not None else base.dropout})
    args.lr, args.dropout = recipe.lr, recipe.dropout

    try:
        device = pick_device(args.device)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    problem = unwritable_folder(out.parent)
    if problem:  # found now, not after the first epoch's training
        print(f"error: cannot write the weights beside {out}: {problem}", file=sys.stderr)
        return 2
    if device.type == "cpu":
        tune_cpu_allocator()
    torch.manual_seed(args.seed)
    try:
        train, test = load_mnist(args.data_dir, train=True), load_mnist(args.data_dir, train=False)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.train_subset:
        train = train.subset(args.train_subset)

    model = Net(dropout=recipe.dropout)
    if resume_state is not None:
        model = build_model(ckpt, args.resume)
    print(summary_text(model))
    print(f"Recipe: {recipe}\nDevice: {describe_device(device)}; train {len(train)}, test {len(test)} images; "
          f"seed {args.seed}; {args.epochs} epochs of batch {args.batch_size}")
    model, train = prepare(model, train, device)
    _, test = prepare(model, test, device)

    last_path, metrics_path, curves_path = sibling(out, ".last.pt"), sibling(out, ".metrics.json"), sibling(out, ".curves.png")
    record = {
        "args": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}},
        "recipe": recipe.__dict__, "parameters": count_parameters(model),
        "torch": str(torch.__version__), "device": describe_device(device), "resumed_from": resumed_from,
    }
    best = {"acc": max(resume_state["history"]["test_accuracy"], default=-1.0) if resume_state else -1.0}
    started = time.perf_counter()

    def on_epoch_end(epoch, history, model, state):
        record.update(history=history.to_dict(), epochs_done=epoch, best_epoch=history.best_epoch(),
                      first_epoch_at_99_4=history.first_epoch_at(99.4),
                      best_accuracy=max(history.test_accuracy), final_accuracy=history.test_accuracy[-1],
                      elapsed_seconds=round(sum(history.epoch_seconds), 2))
        if history.test_accuracy[-1] > best["acc"]:
            best["acc"] = history.test_accuracy[-1]
            save_weights(model, out, metrics={**record, "weights": "best", "epoch": epoch})
        save_weights(model, last_path, metrics={**record, "weights": "last", "epoch": epoch}, train_state=state)
        write_json(record, metrics_path)

    interrupted = False
    try:
        fit(model, train, test, recipe, args.epochs, args.batch_size, args.seed,
            progress=not args.no_progress, on_epoch_end=on_epoch_end, resume_state=resume_state)
    except KeyboardInterrupt:
        interrupted = True
        print("\nInterrupted: the best weights and metrics of the finished epochs are saved.", file=sys.stderr)
    except OSError as e:  # e.g. the disk filled up; files are written atomically, so earlier ones are intact
        print(f"error: could not save after an epoch: {e}. The files from earlier epochs, if any, are intact.",
              file=sys.stderr)
        return 1
    if "history" not in record:
        print("No epoch finished, nothing saved.", file=sys.stderr)
        return 130 if interrupted else 1
    record["interrupted"] = interrupted
    record["wall_seconds"] = round(time.perf_counter() - started, 2)
    write_json(record, metrics_path)
    save_curves(record["history"], curves_path,
                title=f"recipe={recipe.name} seed={args.seed} ({describe_device(device)})")
    for line in summary_lines(History(**record["history"])):
        print(line)
    print(f"Saved best weights to {out}, last-epoch checkpoint to {last_path}, "
          f"metrics to {metrics_path}, curves to {curves_path}")
    if interrupted:
        print(f"Resume with: python train.py --resume {last_path}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
