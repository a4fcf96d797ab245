"""Reproduce the assignment run: python train.py [--recipe reliable|assignment] [--seed N] ..."""
from __future__ import annotations

import signal

from mnist_net.cli import (ReaderMayLeave, ctrl_c_ends_loading, interrupts_deferred, run_command, silence_stdout,
                           stderr_gone)

if __name__ == "__main__":
    # Loading torch takes a second or more, and main() handles Ctrl-C only once it runs: meanwhile a Ctrl-C
    # ends the program with one line, not with a traceback from inside torch.
    ctrl_c_ends_loading()

import argparse
import math
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch

from mnist_net.artifacts import save_curves, sibling, write_json
from mnist_net.checkpoint import DEFAULT_WEIGHTS, WeightsError, build_model, read_checkpoint, save_weights
from mnist_net import evaluate as evaluation
from mnist_net.data import DataError, MNISTTensors, default_data_dir, load_mnist, load_raw, normalize_uint8
from mnist_net.model import Net, count_parameters, summary_text
from mnist_net.training import (DEFAULT_RECIPE, RECIPES, History, Recipe, describe_device, fit, pick_device,
                                prepare, summary_lines, tune_cpu_allocator)


class Diverged(Exception):
    """The loss stopped being a number: nothing more to learn from this run."""

    def __init__(self, epoch: int, train_loss: float, test_loss: float):
        super().__init__(f"training diverged in epoch {epoch} (training loss {train_loss:.4g}, test loss "
                         f"{test_loss:.4g}); the learning rate is too high for this run: try a smaller --lr.")


class OutputClosed(Exception):
    """stdout's reader has gone (`python train.py | head`): the run stops as after Ctrl-C, its epochs saved."""


def unfinished_run(last_path: Path) -> str | None:
    """'epoch 5 of 19' when last_path is a checkpoint of a run that stopped early, else None."""
    try:
        ckpt = read_checkpoint(last_path) if last_path.is_file() else None
        done, planned = ckpt["train_state"]["epoch"], ckpt["metrics"]["args"]["epochs"]
    except (WeightsError, KeyError, TypeError):
        return None
    return f"epoch {done} of {planned}" if done < planned else None


def readable_weights(path: Path) -> bool:
    """Whether path holds weights that load (a truncated or foreign file does not)."""
    try:
        read_checkpoint(path)
    except WeightsError:
        return False
    return True


def evaluate_command(weights: Path, data_dir: str | None) -> str:
    """The command that writes the evaluation files beside weights."""
    return (f"python -m mnist_net.evaluate --weights {shlex.quote(str(weights))} "
            f"--artifacts {shlex.quote(str(weights.parent))}" + (f" --data-dir {shlex.quote(data_dir)}" if data_dir else ""))


def unwritable_folder(folder: Path) -> str | None:
    """Why files cannot be written in folder, or None when they can; a missing folder is not made here.

    It is made when the first epoch's weights are saved: made now, a run stopped before that (missing data,
    Ctrl-C) left an empty folder behind, such as runs/subset-256/.
    """
    existing = next((p for p in (folder, *folder.parents) if os.path.lexists(p)), None)
    if existing is not None and not existing.is_dir():
        return f"{existing} is {'a link to nothing' if existing.is_symlink() else 'a file'}, not a folder"
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        return f"{e.strerror or e} ({e.filename or existing})"
    return None


# A resumed run keeps these (its schedule and data order); everything else may be given anew.
SCHEDULE_DEFAULTS = {"recipe": DEFAULT_RECIPE, "epochs": 19, "batch_size": 128, "lr": None, "dropout": None,
                     "seed": 1, "train_subset": None}
MAX_SEED = 2**63 - 2  # the GPU's augmentation generator is seeded with seed + 1


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train the 14,120-parameter MNIST CNN of the assignment.")
    # Schedule options default to None so that --resume can tell which ones were given.
    p.add_argument("--recipe", choices=sorted(RECIPES), default=None,
                   help="'assignment' replays the original run (SGD lr 0.01, momentum 0.9, no schedule); "
                        f"'reliable' adds OneCycle LR and mild batch augmentation (default: {DEFAULT_RECIPE})")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: 19)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default: 128)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (peak LR for OneCycle); default: the recipe's")
    p.add_argument("--dropout", type=float, default=None, help="dropout rate; default: the recipe's (0.1)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: 1)")
    p.add_argument("--data-dir", default=None,
                   help=f"torchvision MNIST root; downloaded there when missing (default: {default_data_dir()})")
    p.add_argument("--out", type=Path, default=None,
                   help="best weights file; metrics, curves, evaluation and the last-epoch checkpoint go beside it "
                        f"(default: the shipped weights, {DEFAULT_WEIGHTS}; with --train-subset N: "
                        f"runs/subset-N/mnist_net.pt, so a quick try never replaces them)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--no-cuda-graph", action="store_true",
                   help="on a GPU, launch each step's kernels one by one instead of replaying a CUDA graph (slower)")
    p.add_argument("--deterministic", action="store_true",
                   help="on a GPU, only cuDNN kernels that give the same run for the same seed each time "
                        "(slower); a CPU run is always reproducible")
    p.add_argument("--train-subset", type=int, default=None, help="use only the first N training images (quick tries)")
    p.add_argument("--resume", type=Path, default=None,
                   help="continue from a *.last.pt checkpoint written by an earlier run")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    args = p.parse_args(argv)
    if (args.epochs is not None and args.epochs < 1) or (args.batch_size is not None and args.batch_size < 1):
        p.error("--epochs and --batch-size must be positive")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        p.error(f"--lr must be a positive number, got {args.lr}")
    if args.dropout is not None and not 0.0 <= args.dropout < 1.0:
        p.error(f"--dropout must be in [0, 1), got {args.dropout}")
    if args.train_subset is not None and args.train_subset < 1:
        p.error(f"--train-subset must be a positive number of images, got {args.train_subset}")
    if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
        p.error(f"--seed must be between 0 and {MAX_SEED}, got {args.seed}")
    if (args.out is not None and not args.out.is_dir()  # a folder gets its own message in main()
            and (args.out.suffix != ".pt" or args.out.name.endswith(".last.pt"))):
        # Its metrics, curves, evaluation and checkpoint are named after the file without ".pt": another
        # suffix (m.pth beside m.pt, model.v1 and model.v2) would share, and overwrite, another run's files.
        p.error(f"--out must name a .pt file (not a *.last.pt checkpoint), e.g. runs/my-run/mnist_net.pt; "
                f"got {args.out}")
    return args


def resolve_defaults(args: argparse.Namespace) -> None:
    """Fill in what a new run was not told; a quick try on a subset never overwrites the shipped weights."""
    for key, value in SCHEDULE_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    # Absolute: a run resumed from another folder reads the same data (a relative path would not).
    args.data_dir = str(Path(args.data_dir or default_data_dir()).expanduser().absolute())
    if args.out is None:
        args.out = (DEFAULT_WEIGHTS if not args.train_subset
                    else DEFAULT_WEIGHTS.parents[1] / "runs" / f"subset-{args.train_subset}" / DEFAULT_WEIGHTS.name)


def main(argv=None) -> int:
    args = parse_args(argv)
    resume_state, resumed_from = None, None
    if args.resume is None:
        resolve_defaults(args)
    else:
        try:
            ckpt = read_checkpoint(args.resume)
        except WeightsError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if "train_state" not in ckpt:
            print(f"error: {args.resume} has no training state to resume from; pass the *.last.pt "
                  f"file that train.py writes beside the weights.", file=sys.stderr)
            return 2
        saved = (ckpt.get("metrics") or {}).get("args")
        state = ckpt["train_state"]
        if (not isinstance(saved, dict) or any(key not in saved for key in SCHEDULE_DEFAULTS)
                or not isinstance(state, dict)
                or any(key not in state for key in ("epoch", "optimizer", "scheduler", "history", "rng"))):
            print(f"error: {args.resume} is not a complete train.py checkpoint (its run settings or training "
                  f"state are missing); pass the *.last.pt file that train.py writes beside the weights.",
                  file=sys.stderr)
            return 2
        # The run's files are beside its checkpoint (wherever the folder has moved since, and whatever
        # folder this is started from): its --out is remembered as typed, maybe relative to another folder.
        run_out = args.resume.parent / Path(saved.get("out") or DEFAULT_WEIGHTS).name
        # A resumed run must follow the same schedule and data order as the original one.
        changed = [f"--{key.replace('_', '-')} {getattr(args, key)} (the run used {saved[key]})"
                   for key in SCHEDULE_DEFAULTS if getattr(args, key) is not None and getattr(args, key) != saved[key]]
        # The best weights so far are beside the run's own --out; a new one would never receive them.
        if args.out is not None and Path(args.out).resolve() != run_out.resolve():
            changed.append(f"--out {args.out} (the run writes beside its checkpoint: {run_out})")
        if changed:
            print(f"error: a resumed run keeps its schedule, data order and output file, but these differ: {'; '.join(changed)}. "
                  f"Leave them out to resume, or start a new run with another --out.", file=sys.stderr)
            return 2
        for key in SCHEDULE_DEFAULTS:
            setattr(args, key, saved[key])
        args.data_dir = args.data_dir or saved["data_dir"]  # the data may have moved since
        # Kept, as the README promises: a deterministic GPU run resumed must go on with the same kernels.
        args.deterministic = args.deterministic or bool(saved.get("deterministic"))
        args.out = run_out
        resume_state, resumed_from = state, str(args.resume)
        if resume_state["epoch"] >= args.epochs:
            print(f"Nothing to resume: {args.resume} is from the last of the run's {args.epochs} epochs. "
                  f"Its best weights are in {args.out}.")
            if not all(p.exists() for p in evaluation.artifact_paths(args.out, args.out.parent)):
                command = evaluate_command(args.out, args.data_dir)
                print(f"Its evaluation is missing (the run was stopped while writing it); write it with: {command}")
            return 0

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
    problem = (f"{out} is a folder; name a file in it, e.g. {out / DEFAULT_WEIGHTS.name}" if out.is_dir()
               else unwritable_folder(out.parent))
    if problem:  # found now, not after the first epoch's training
        print(f"error: cannot write the weights beside {out}: {problem}", file=sys.stderr)
        return 2
    if device.type == "cpu":
        tune_cpu_allocator()
    torch.manual_seed(args.seed)
    try:
        train = load_mnist(args.data_dir, train=True)
        test_raw, test_labels = load_raw(args.data_dir, train=False)  # raw digits: the evaluation sprite
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.train_subset:
        if args.train_subset > len(train):
            print(f"error: --train-subset {args.train_subset} is more than the {len(train)} training images; "
                  f"leave it out to train on all of them.", file=sys.stderr)
            return 2
        train = train.subset(args.train_subset)

    model = Net(dropout=recipe.dropout)
    if resume_state is not None:
        model = build_model(ckpt, args.resume)
    print(summary_text(model))
    print(f"Recipe: {recipe}\nDevice: {describe_device(device)}; train {len(train)}, test {len(test_labels)} images; "
          f"seed {args.seed}; {args.epochs} epoch{'s' if args.epochs != 1 else ''} of batch {args.batch_size}"
          + ("; deterministic cuDNN kernels" if args.deterministic and device.type == "cuda" else ""))
    model, train = prepare(model, train, device, args.deterministic)
    test_cpu = MNISTTensors(normalize_uint8(test_raw), test_labels)
    _, test = prepare(model, test_cpu, device, args.deterministic)
    if device.type == "cpu":
        from mnist_net.fused import warm_up  # numba: only a CPU run needs it

        compile_seconds = warm_up()  # here, not inside the first epoch's clock and progress bar
        if compile_seconds > 2:
            print(f"Compiled the fused CPU training kernels in {compile_seconds:.1f} s (numba caches them for later runs)")

    last_path, metrics_path, curves_path = sibling(out, ".last.pt"), sibling(out, ".metrics.json"), sibling(out, ".curves.png")
    if resume_state is None:
        unfinished = unfinished_run(last_path)
        if unfinished:
            print(f"Note: {last_path} holds an unfinished run ({unfinished}); this new run replaces it when its "
                  f"first epoch ends. To continue that one instead: python train.py --resume {shlex.quote(str(last_path))}",
                  file=sys.stderr)
    record = {
        "args": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}},
        "recipe": recipe.__dict__, "parameters": count_parameters(model),
        "torch": str(torch.__version__), "device": describe_device(device), "resumed_from": resumed_from,
    }
    # The epoch whose weights are in `out`: what the metrics and the summary call the best.
    best = {"acc": max(resume_state["history"]["test_accuracy"], default=-1.0) if resume_state else -1.0,
            "epoch": History(**resume_state["history"]).best_epoch() if resume_state else None, "cleared": False}
    if resume_state is not None and not readable_weights(out):
        print(f"Note: the run's best weights so far are not beside its checkpoint ({out} is missing or cannot be "
              f"read); the best of the epochs from now on is saved there.", file=sys.stderr)
        best["acc"], best["epoch"] = -1.0, None
    started = time.perf_counter()
    output = {"closed": False}

    def log(text):
        # fit prints an epoch's line before on_epoch_end saves the epoch: a closed stdout must not lose it.
        try:
            sys.stdout.write(text + "\n")  # print's output in one write: the line and its newline fail together
        except BrokenPipeError:
            silence_stdout()
            output["closed"] = True

    def save_epoch(epoch, history, model, state):
        improved = history.test_accuracy[-1] > best["acc"]
        if improved:
            best["acc"], best["epoch"] = history.test_accuracy[-1], epoch
        record.update(history=history.to_dict(), epochs_done=epoch, best_epoch=best["epoch"],
                      first_epoch_at_99_4=history.first_epoch_at(99.4),
                      best_accuracy=best["acc"], final_accuracy=history.test_accuracy[-1],
                      elapsed_seconds=round(sum(history.epoch_seconds), 2))
        if improved:
            save_weights(model, out, metrics={**record, "weights": "best", "epoch": epoch})
        save_weights(model, last_path, metrics={**record, "weights": "last", "epoch": epoch}, train_state=state)
        write_json(record, metrics_path)

    def on_epoch_end(epoch, history, model, state):
        if not all(math.isfinite(v) for v in (history.train_loss[-1], history.test_loss[-1])):
            raise Diverged(epoch, history.train_loss[-1], history.test_loss[-1])
        with interrupts_deferred():  # the epoch's record and files change together, or not at all
            save_epoch(epoch, history, model, state)
        if not best["cleared"]:
            # The files beside the weights now describe this run. The evaluation and the curves of an earlier
            # one must go (the Model tab would show them for these weights); both are written again when
            # the run ends, however it ends, unless it is killed outright.
            for stale in (*evaluation.artifact_paths(out, out.parent), curves_path):
                stale.unlink(missing_ok=True)
            best["cleared"] = True
        output["closed"] = output["closed"] or stderr_gone()
        if output["closed"] and epoch < args.epochs:
            raise OutputClosed  # now that this epoch is saved; after the last one the run ends as usual

    interrupted = diverged = False
    stopped_code = 130  # a run stopped early exits as Ctrl-C does, or with 1 for a closed stdout, as after `| head`
    try:
        fit(model, train, test, recipe, args.epochs, args.batch_size, args.seed,
            progress=not args.no_progress, on_epoch_end=on_epoch_end, resume_state=resume_state,
            log=log, cuda_graph=not args.no_cuda_graph)
    except KeyboardInterrupt:
        interrupted = True
        print("\nInterrupted: " + ("the best weights and metrics of the finished epochs are saved."
                                   if "history" in record else "no epoch finished in this session."),
              file=sys.stderr)
    except OutputClosed:
        interrupted, stopped_code = True, 1
        print("Stopped: the output was closed (its reader has gone); the best weights and metrics of the "
              "finished epochs are saved.", file=sys.stderr)
    except Diverged as e:  # the best weights of the finished epochs are still evaluated and described below
        diverged = True
        # Resuming would diverge again, step for step: the checkpoint has no use left.
        last_path.unlink(missing_ok=True)
        print(f"error: {e} (Its last-epoch checkpoint is removed: resumed, it would diverge the same way.)",
              file=sys.stderr)
    except OSError as e:  # e.g. the disk filled up; files are written atomically, so earlier ones are intact
        print(f"error: could not save after an epoch: {e}. The files from earlier epochs, if any, are intact.",
              file=sys.stderr)
        return 1
    if "history" not in record:
        if resume_state is not None:
            print("The run's files from its earlier epochs are unchanged."
                  + (f" Resume with: python train.py --resume {shlex.quote(str(last_path))}" if interrupted else ""), file=sys.stderr)
        else:
            print("Nothing was saved.", file=sys.stderr)
        return stopped_code if interrupted else 1
    record["interrupted"], record["diverged"] = interrupted, diverged
    record["wall_seconds"] = round(time.perf_counter() - started, 2)
    try:
        write_json(record, metrics_path)
        save_curves(record["history"], curves_path,
                    title=f"recipe={recipe.name} seed={args.seed} ({describe_device(device)})")
        # The Model tab reads the evaluation beside the weights: rewrite it so it always describes these weights.
        result, cm, probs = evaluation.run(out, test=test_cpu)
        eval_paths = evaluation.write_artifacts(out, out.parent, result, cm, probs, test_raw, test_labels)
    except (OSError, WeightsError) as e:
        print(f"error: the weights are saved in {out}, but evaluating them failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a (second) Ctrl-C while the last files are written: say what is missing
        print(f"\nInterrupted while writing the run's last files. The best weights are saved in {out}; their "
              f"evaluation (what the app's Model tab shows) may be missing. Write it with: "
              f"{evaluate_command(out, args.data_dir)}", file=sys.stderr)
        return 130
    for line in summary_lines(History(**record["history"]), best_epoch=record["best_epoch"]):
        print(line)
    print(f"Best weights on the test set: {result.line()}")
    print(f"Saved best weights to {out}, last-epoch checkpoint to {last_path}, metrics to {metrics_path}, "
          f"curves to {curves_path}, evaluation to {' and '.join(str(p) for p in eval_paths)}")
    if interrupted:
        print(f"Resume with: python train.py --resume {shlex.quote(str(last_path))}", file=sys.stderr)
        return stopped_code
    return 1 if diverged or output["closed"] else 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # `kill` (SIGTERM) stops a run the way Ctrl-C does: finished epochs evaluated, saved


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    # Line by line, as on a terminal: through a pipe each epoch's line shows when it is printed (`| tee`), and
    # a reader that has gone (`| head`) is noticed at the next line, not at the end of the run (8 KB buffered).
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr = ReaderMayLeave(sys.stderr)  # `2>&1 | head`: stderr's reader goes too
    run_command(main)  # Ctrl-C before training or after it (loading data, the final evaluation): 130
