"""A training run's lifecycle: its settings, a checkpoint every epoch, the best weights, resume, Ctrl-C, divergence."""
from __future__ import annotations

import math
import os
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from . import evaluate as evaluation
from . import novelty
from . import training
from .artifacts import artifact_paths, save_curves, sibling, write_json
from .checkpoint import DEFAULT_WEIGHTS, WeightsError, build_model, read_checkpoint, save_weights
from .data import default_data_dir
from .model import Net, count_parameters
from .training import DEFAULT_RECIPE, RECIPES, EvalResult, History, Recipe

# The run's schedule and data order, with their defaults: a resumed run keeps them.
SCHEDULE = {"recipe": DEFAULT_RECIPE, "epochs": 19, "batch_size": 128, "lr": None, "dropout": None, "seed": 1,
            "train_subset": None}
STATE_KEYS = ("epoch", "optimizer", "scheduler", "history", "rng")
RESUME_FIX = "Pass the FILE.last.pt checkpoint that train.py writes beside a run's weights FILE.pt."


class RunError(Exception):
    """The run cannot start; the message says why and what to do."""


class Diverged(Exception):
    def __init__(self, epoch: int, train_loss: float, test_loss: float):
        super().__init__(f"training diverged in epoch {epoch} (training loss {train_loss:.4g}, test loss "
                         f"{test_loss:.4g}); the learning rate is too high for this run: try a smaller --lr.")


def saved_recipe(saved: dict | None, path: Path) -> Recipe | None:
    """The recipe a checkpoint was trained with: a resumed run augments as it began, whatever RECIPES says now."""
    if saved is None:
        return None
    try:
        return Recipe(**{**saved, "cycle_momentum": tuple(saved.get("cycle_momentum") or ()) or None})
    except TypeError as e:
        raise RunError(f"{path} was trained with a recipe this version cannot rebuild ({e}); start a new run, or "
                       f"resume it with the version of mnist_net that wrote it.") from None


RUNS = DEFAULT_WEIGHTS.parents[1] / "runs"


def default_out(settings: dict) -> Path:
    """runs/RECIPE-seedN[-subsetN]/mnist_net.pt: never the shipped weights (with their detector and rates), and
    a quick try or the other recipe never over a full run."""
    subset = f"-subset{settings['train_subset']}" if settings["train_subset"] else ""
    return RUNS / f"{settings['recipe']}-seed{settings['seed']}{subset}" / DEFAULT_WEIGHTS.name


class Run:
    """One training run: `Run.new(settings)` or `Run.resume(checkpoint, settings)`, then `fit`, then `finish`."""

    def __init__(self, settings: dict, checkpoint: dict | None = None, resumed_from: Path | None = None,
                 recipe: Recipe | None = None):
        base = recipe or RECIPES[settings["recipe"]]
        self.recipe = replace(base, lr=base.lr if settings["lr"] is None else settings["lr"],
                              dropout=base.dropout if settings["dropout"] is None else settings["dropout"])
        settings.update(lr=self.recipe.lr, dropout=self.recipe.dropout)
        self.settings, self.checkpoint, self.resumed_from = settings, checkpoint, resumed_from
        self.out = Path(settings["out"])
        self.last = sibling(self.out, ".last.pt")
        self.metrics_path, self.curves_path = sibling(self.out, ".metrics.json"), sibling(self.out, ".curves.png")
        self.state = checkpoint["train_state"] if checkpoint else None
        self.record: dict = {}
        self.stopped: int | None = None  # the exit code of a run that stopped early

    @classmethod
    def new(cls, given: dict) -> "Run":
        settings = {**given, **{k: v for k, v in SCHEDULE.items() if given.get(k) is None}}
        # Absolute: a run resumed from another folder reads the same data.
        settings["data_dir"] = str(Path(given.get("data_dir") or default_data_dir()).expanduser().absolute())
        settings["out"] = str(given.get("out") or default_out(settings))
        out = Path(settings["out"]).absolute()
        folder = out.parent
        while not folder.exists():  # its first existing folder: checked now, not after the first epoch
            folder = folder.parent
        problem = ("it is a folder" if out.is_dir() else f"{folder} is a file" if not folder.is_dir()
                   else f"{folder} is not writable" if not os.access(folder, os.W_OK) else None)
        if problem:
            raise RunError(f"cannot write the run's weights to {settings['out']}: {problem}")
        return cls(settings)

    @classmethod
    def resume(cls, path: Path, given: dict) -> "Run":
        """The run saved in a *.last.pt checkpoint; RunError if given settings would change its schedule."""
        ckpt = read_checkpoint(path, fix=RESUME_FIX)
        saved, state = (ckpt.get("metrics") or {}).get("args"), ckpt.get("train_state")
        if state is None:
            raise RunError(f"{path} has no training state to resume from. {RESUME_FIX}")
        if (not isinstance(saved, dict) or any(k not in saved for k in SCHEDULE)
                or not isinstance(state, dict) or any(k not in state for k in STATE_KEYS)):
            raise RunError(f"{path} is not a complete train.py checkpoint (its run settings or training state are "
                           f"missing). {RESUME_FIX}")
        out = path.parent / Path(saved.get("out") or DEFAULT_WEIGHTS).name  # beside the checkpoint, wherever it moved
        changed = [f"--{k.replace('_', '-')} {given[k]} (the run used {saved[k]})"
                   for k in SCHEDULE if given.get(k) is not None and given[k] != saved[k]]
        if given.get("out") and Path(given["out"]).resolve() != out.resolve():
            changed.append(f"--out {given['out']} (the run writes beside its checkpoint: {out})")
        if changed:
            raise RunError(f"a resumed run keeps its schedule, data order and output file, but these differ: "
                           f"{'; '.join(changed)}. Leave them out to resume, or start a new run with another --out.")
        settings = {**given, **{k: saved[k] for k in SCHEDULE}, "out": str(out),
                    "data_dir": str(Path(given["data_dir"]).expanduser().absolute()) if given.get("data_dir")
                    else saved["data_dir"],
                    "deterministic": bool(given.get("deterministic") or saved.get("deterministic"))}
        return cls(settings, ckpt, path, saved_recipe(ckpt["metrics"].get("recipe"), path))

    @property
    def done(self) -> bool:
        """Whether a resumed run had already trained all its epochs."""
        return self.state is not None and self.state["epoch"] >= self.settings["epochs"]

    def model(self) -> Net:
        if self.checkpoint is not None:
            return build_model(self.checkpoint, self.resumed_from)
        return Net(dropout=self.recipe.dropout)

    def fit(self, model: Net, train, test, device: str, progress: bool = True, cuda_graph: bool = True) -> None:
        """Train the remaining epochs, saving every epoch; Ctrl-C or a diverging loss stop it with its epochs saved."""
        history = self.state["history"] if self.state else None
        self.best = {"accuracy": max(history["test_accuracy"], default=-1.0) if history else -1.0,
                     "epoch": History(**history).best_epoch() if history else None}
        if self.state is not None and not self._readable(self.out):
            print(f"Note: the run's best weights so far are not beside its checkpoint ({self.out} is missing or "
                  f"cannot be read); the best of the epochs from now on is saved there.", file=sys.stderr)
            self.best = {"accuracy": -1.0, "epoch": None}
        self.base_record = {"args": self.settings, "recipe": self.recipe.__dict__, "parameters": count_parameters(model),
                            "torch": str(torch.__version__), "device": device,
                            "resumed_from": str(self.resumed_from) if self.resumed_from else None}
        self.started = time.perf_counter()
        s = self.settings
        try:
            training.fit(model, train, test, self.recipe, s["epochs"], s["batch_size"], s["seed"], progress=progress,
                         on_epoch_end=self._save_epoch, resume_state=self.state, cuda_graph=cuda_graph)
        except KeyboardInterrupt:
            self.stopped = 130
            print("\nInterrupted: " + ("the best weights and metrics of the finished epochs are saved; evaluating them "
                                       "takes a few seconds."
                                       if self.record else "no epoch finished in this session."), file=sys.stderr)
        except Diverged as e:
            self.stopped = 1
            self.last.unlink(missing_ok=True)  # resumed, it would diverge again step for step
            print(f"error: {e} (Its last-epoch checkpoint is removed: resumed, it would diverge the same way.)",
                  file=sys.stderr)

    def _save_epoch(self, epoch: int, history: History, model: Net, state: dict) -> None:
        if not all(math.isfinite(v) for v in (history.train_loss[-1], history.test_loss[-1])):
            raise Diverged(epoch, history.train_loss[-1], history.test_loss[-1])
        first_save = not self.record
        improved = history.test_accuracy[-1] > self.best["accuracy"]
        if improved:
            self.best = {"accuracy": history.test_accuracy[-1], "epoch": epoch}
        self.record = {**self.base_record, "history": history.to_dict(), "epochs_done": epoch,
                       "best_epoch": self.best["epoch"], "first_epoch_at_99_4": history.first_epoch_at(99.4),
                       "best_accuracy": self.best["accuracy"], "final_accuracy": history.test_accuracy[-1],
                       "elapsed_seconds": round(sum(history.epoch_seconds), 2)}
        if improved:
            save_weights(model, self.out, metrics={**self.record, "weights": "best", "epoch": epoch})
        save_weights(model, self.last, metrics={**self.record, "weights": "last", "epoch": epoch}, train_state=state)
        write_json(self.record, self.metrics_path)
        if first_save:  # an earlier run's evaluation or detector must never sit beside these weights (the app reads them)
            for stale in (*artifact_paths(self.out, self.out.parent), self.curves_path,
                          novelty.detector_path(self.out), novelty.rates_path(self.out)):
                stale.unlink(missing_ok=True)

    def finish(self, test_cpu, test_raw, test_labels) -> EvalResult | None:
        """Metrics, curves and the best weights' evaluation beside them; None when no epoch finished."""
        if not self.record:
            print("The run's files from its earlier epochs are unchanged." if self.state else "Nothing was saved.",
                  file=sys.stderr)
            return None
        self.record.update(interrupted=self.stopped == 130, diverged=self.stopped == 1,
                           wall_seconds=round(time.perf_counter() - self.started, 2))
        write_json(self.record, self.metrics_path)
        save_curves(self.record["history"], self.curves_path,
                    title=f"recipe={self.recipe.name} seed={self.settings['seed']} ({self.record['device']})")
        result, cm, probs = evaluation.run(self.out, test=test_cpu)
        evaluation.write_artifacts(self.out, self.out.parent, result, cm, probs, test_raw, test_labels)
        return result

    def resume_command(self) -> str:
        return f"python train.py --resume {shlex.quote(str(self.last))}"

    @staticmethod
    def _readable(path: Path) -> bool:
        try:
            read_checkpoint(path)
            return True
        except WeightsError:
            return False
