"""Training and evaluation: one `train_epoch` / `evaluate` pair and a `fit` loop over recipes."""
from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .cuda_graph import GraphedStep
from .data import MNISTTensors, batches, num_batches, random_affine, random_thicken, shuffled_indices
from .model import Net


@dataclass(frozen=True)
class Recipe:
    """Optimiser, schedule and augmentation; the architecture never changes between recipes."""

    name: str
    lr: float = 0.01
    momentum: float = 0.9  # SGD's momentum; a OneCycle schedule with cycle_momentum replaces it every step
    schedule: str = "constant"  # "constant" or "onecycle" (lr is then the peak)
    # OneCycle only: momentum cycled opposite to the LR, (low, high): high at the start and end, low at the LR's
    # peak. PyTorch's OneCycleLR does this by default, (0.85, 0.95); the shipped run was trained so.
    cycle_momentum: tuple[float, float] | None = None
    rotate_degrees: float = 0.0
    shift_pixels: float = 0.0
    shear_degrees: float = 0.0
    scale: float = 0.0
    thicken: float = 0.0
    dropout: float = 0.1


RECIPES = {
    # The assignment's run as it was: SGD(lr=0.01, momentum=0.9), no schedule, no augmentation.
    "assignment": Recipe("assignment"),
    # Same model, optimiser family and epoch budget, made reliable across seeds with a OneCycle schedule and
    # batch-wise rotation, shift, slant, scale and thicker strokes: the app's users draw slanted, with a thick brush.
    "reliable": Recipe("reliable", lr=0.05, schedule="onecycle", cycle_momentum=(0.85, 0.95), rotate_degrees=7.0,
                       shift_pixels=1.0, shear_degrees=15.0, scale=0.1, thicken=1.0),
}
DEFAULT_RECIPE = "reliable"


class EvalResult(NamedTuple):
    """Summed-over-samples loss / count, number correct, number of samples."""

    loss: float
    correct: int
    total: int

    @property
    def accuracy(self) -> float:
        """Accuracy in percent."""
        return 100.0 * self.correct / self.total

    def line(self) -> str:
        """The line users know from pytorch/examples and the assignment."""
        return (f"Test set: Average loss: {self.loss:.4f}, Accuracy: {self.correct}/{self.total} "
                f"({self.accuracy:.2f}%)")


def pick_device(requested: str = "auto") -> torch.device:
    """CUDA when available, else CPU; "cpu", "cuda" or "cuda:N" when asked for (ValueError if unusable)."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {requested!r}: use auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {requested} was asked for, but this PyTorch ({torch.__version__}) sees no "
                             f"CUDA GPU; use --device cpu, or auto to take a GPU only when there is one")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {requested}: there are only {torch.cuda.device_count()} CUDA GPU(s), "
                             f"numbered from 0")
    return device


def describe_device(device: torch.device) -> str:
    """'NVIDIA H100 80GB HBM3' or 'CPU <model name> (2 threads)', for metrics and the README."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
    except OSError:
        pass
    return f"CPU {name} ({torch.get_num_threads()} threads)"


def choose_kernels(deterministic: bool) -> None:
    """cuDNN's kernel choice for the whole process (a GPU's only; on a CPU it changes nothing).

    By default the fastest kernels, at the price of bit-for-bit reproducibility: cuDNN's benchmark times its
    kernels in each process and picks per process, and some of them sum in a varying order. deterministic:
    only kernels that sum in a fixed order, picked by fixed rules rather than by timing, so the same seed
    gives the same run in every process on the same GPU and software.
    """
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic


def prepare(model: Net, data: MNISTTensors, device: torch.device) -> tuple[Net, MNISTTensors]:
    """Move model and data to device in channels_last layout, which mkldnn/cudnn run fastest."""
    model = model.to(device, memory_format=torch.channels_last)
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)  # cuda:N as the current device: streams and CUDA graphs live there
    data = MNISTTensors(data.images.to(device).contiguous(memory_format=torch.channels_last),
                        data.labels.to(device))
    return model, data


@torch.inference_mode()
def evaluate(model: Net, data: MNISTTensors, batch_size: int = 1000) -> EvalResult:
    """Average NLL loss and accuracy over the whole of data, model in eval mode."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=data.labels.device)
    correct = torch.zeros((), dtype=torch.long, device=data.labels.device)
    for x, y in batches(data, batch_size, shuffle=False):
        out = model(x)
        loss_sum += F.nll_loss(out, y, reduction="sum")
        correct += (out.argmax(1) == y).sum()
    model.train(was_training)
    return EvalResult(loss_sum.item() / len(data), int(correct.item()), len(data))


@torch.inference_mode()
def log_probabilities(model: Net, data: MNISTTensors, batch_size: int = 1000) -> torch.Tensor:
    """N x 10 log-probabilities for every sample of data (logs never underflow to 0)."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(x) for x, _ in batches(data, batch_size, shuffle=False)])
    finally:
        model.train(was_training)


def make_optimizer(model: Net, recipe: Recipe, epochs: int, steps_per_epoch: int):
    """SGD with momentum plus the recipe's LR schedule (stepped once per batch)."""
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum)
    if recipe.schedule == "onecycle":
        low, high = recipe.cycle_momentum or (recipe.momentum, recipe.momentum)
        # OneCycleLR divides by zero when its warm-up ends exactly on step 0, i.e. 20% of 5 steps in all
        # (train.py --epochs 5 on 128 images or fewer); a quarter gives those 5 steps the same shape.
        pct_start = 0.25 if epochs * steps_per_epoch == 5 else 0.2
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=recipe.lr, epochs=epochs, steps_per_epoch=steps_per_epoch,
            pct_start=pct_start, div_factor=10.0, final_div_factor=100.0,
            cycle_momentum=recipe.cycle_momentum is not None, base_momentum=low, max_momentum=high)
    elif recipe.schedule == "constant":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    else:
        raise ValueError(f"unknown schedule {recipe.schedule!r}")
    return opt, sched


def batch_loss(model: Net, data: MNISTTensors, index: torch.Tensor, recipe: Recipe,
               generator: torch.Generator | None) -> torch.Tensor:
    """Mean NLL of the samples at `index`, augmented as the recipe says (noise drawn from generator)."""
    x, y = data.images[index], data.labels[index]  # B x 1 x 28 x 28, B
    return F.nll_loss(model(augment(x, recipe, generator)), y)


def augment(x: torch.Tensor, recipe: Recipe, generator: torch.Generator | None) -> torch.Tensor:
    """A batch (normalised) augmented as the recipe says; no augmentation draws no random numbers."""
    if recipe.rotate_degrees > 0 or recipe.shift_pixels > 0 or recipe.shear_degrees > 0 or recipe.scale > 0:
        x = random_affine(x, recipe.rotate_degrees, recipe.shift_pixels, generator, recipe.shear_degrees,
                          recipe.scale)
    if recipe.thicken > 0:
        x = random_thicken(x, recipe.thicken, generator)
    return x


def train_epoch(model: Net, data: MNISTTensors, opt, sched, recipe: Recipe, batch_size: int,
                generator: torch.Generator, progress: bool = True, desc_every: int = 10,
                aug_generator: torch.Generator | None = None, step: GraphedStep | None = None) -> float:
    """One pass over data in shuffled batches; returns the mean training loss.

    `generator` (CPU) orders the batches; augmentation draws from `aug_generator`, which lives on
    the data's device so a GPU step never waits for a host-to-device copy (default: `generator`).
    `step` (GPU): full batches' forward and backward replayed from a CUDA graph; the last partial
    batch runs eagerly into the same gradient tensors.
    """
    model.train()
    total = num_batches(len(data), batch_size)
    bar = tqdm(total=total, disable=not progress, dynamic_ncols=True, leave=True)
    loss_sum = torch.zeros((), device=data.labels.device)
    aug_generator = aug_generator or generator
    for batch_id, index in enumerate(shuffled_indices(len(data), batch_size, generator, data.labels.device)):
        if step is not None and len(index) == step.batch_size:
            loss = step(index)
        else:
            opt.zero_grad(set_to_none=step is None)  # a graph's replays write into the .grad tensors it owns
            loss = batch_loss(model, data, index, recipe, aug_generator)
            loss.backward()
        opt.step()
        sched.step()
        loss_sum += loss.detach()
        # .item() syncs a GPU with the host, so the bar's text is refreshed every few batches only.
        if progress and (batch_id % desc_every == 0 or batch_id == total - 1):
            bar.set_description(f"loss={loss.item()} batch_id={batch_id}")
        bar.update(1)
    bar.close()
    return loss_sum.item() / total


def graphed_step(model: Net, data: MNISTTensors, recipe: Recipe, batch_size: int,
                 aug_generator: torch.Generator | None, capture: bool = True) -> GraphedStep:
    """`train_epoch`'s step for full batches, captured as a CUDA graph (capture=False: run eagerly, for tests)."""

    def loss_and_backward(index: torch.Tensor) -> torch.Tensor:
        loss = batch_loss(model, data, index, recipe, aug_generator)
        loss.backward()
        return loss

    model.train()
    return GraphedStep(model, loss_and_backward, batch_size, data.labels.device,
                       generators=[g for g in (aug_generator,) if g is not None], capture=capture)


@dataclass
class History:
    """Per-epoch metrics of a run; saved as JSON beside the weights."""

    train_loss: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)
    test_accuracy: list = field(default_factory=list)
    test_correct: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    epoch_seconds: list = field(default_factory=list)

    def record(self, train_loss: float, result: EvalResult, lr: float, seconds: float) -> None:
        """Append one epoch."""
        self.train_loss.append(round(train_loss, 6))
        self.test_loss.append(round(result.loss, 6))
        self.test_accuracy.append(round(result.accuracy, 4))
        self.test_correct.append(result.correct)
        self.lr.append(lr)
        self.epoch_seconds.append(round(seconds, 3))

    def first_epoch_at(self, accuracy: float) -> int | None:
        """1-based first epoch whose test accuracy is >= accuracy, or None."""
        return next((i + 1 for i, a in enumerate(self.test_accuracy) if a >= accuracy), None)

    def best_epoch(self) -> int | None:
        """1-based epoch with the highest test accuracy (the earliest on ties)."""
        if not self.test_accuracy:
            return None
        return max(range(len(self.test_accuracy)), key=lambda i: (self.test_accuracy[i], -i)) + 1

    def to_dict(self) -> dict:
        """Plain dict for JSON and checkpoints."""
        return asdict(self)


def summary_lines(h: History, target: float = 99.4, best_epoch: int | None = None) -> list[str]:
    """End-of-run summary: first epoch at target, best (default: the most accurate epoch) and final accuracy, time."""
    first, best = h.first_epoch_at(target), best_epoch or h.best_epoch()
    if best is None:
        return ["No epoch completed."]
    per_epoch = sum(h.epoch_seconds) / len(h.epoch_seconds)
    return [
        f"First epoch >= {target}%: {first if first else 'never'}",
        f"Best accuracy: {h.test_accuracy[best - 1]:.2f}% (epoch {best})",
        f"Final accuracy: {h.test_accuracy[-1]:.2f}% (epoch {len(h.test_accuracy)})",
        f"Time per epoch: {per_epoch:.1f} s (train + test), total {sum(h.epoch_seconds):.1f} s",
    ]


def fit(model: Net, train: MNISTTensors, test: MNISTTensors, recipe: Recipe, epochs: int,
        batch_size: int, seed: int, progress: bool = True,
        on_epoch_end: Callable[[int, History, Net, dict], None] | None = None,
        resume_state: dict | None = None, log: Callable[[str], None] = print, cuda_graph: bool = True) -> History:
    """Train for `epochs`, evaluating on test after each; calls on_epoch_end(epoch, history, model, state).

    On a GPU the training step is replayed from a CUDA graph unless cuda_graph is False.
    """
    steps = num_batches(len(train), batch_size)
    opt, sched = make_optimizer(model, recipe, epochs, steps)
    generator = torch.Generator().manual_seed(seed)
    device = train.labels.device
    # On CPU one generator serves both (the shipped CPU run was made that way); on a GPU the
    # augmentation noise is drawn there.
    aug_generator = torch.Generator(device=device).manual_seed(seed + 1) if device.type != "cpu" else None
    history, start = History(), 0
    if resume_state is not None:
        opt.load_state_dict(resume_state["optimizer"])
        sched.load_state_dict(resume_state["scheduler"])
        generator.set_state(resume_state["rng"]["generator"])
        if aug_generator is not None and resume_state["rng"].get("aug_generator") is not None:
            aug_generator.set_state(resume_state["rng"]["aug_generator"])
        torch.set_rng_state(resume_state["rng"]["torch"])
        if torch.cuda.is_available() and resume_state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state_all(resume_state["rng"]["cuda"])
        history = History(**resume_state["history"])
        start = resume_state["epoch"]
    step = None
    use_graph = cuda_graph and device.type == "cuda" and len(train) >= batch_size
    for epoch in range(start + 1, epochs + 1):
        t0 = time.perf_counter()
        if use_graph and step is None:  # captured inside the first epoch's time: it is part of the run
            step = graphed_step(model, train, recipe, batch_size, aug_generator)
        lr = opt.param_groups[0]["lr"]
        train_loss = train_epoch(model, train, opt, sched, recipe, batch_size, generator, progress,
                                 aug_generator=aug_generator, step=step)
        result = evaluate(model, test)
        history.record(train_loss, result, lr, time.perf_counter() - t0)
        log(result.line() + "\n")
        if on_epoch_end is not None:
            state = {
                "epoch": epoch, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "history": history.to_dict(),
                "rng": {"generator": generator.get_state(), "torch": torch.get_rng_state(),
                        "aug_generator": aug_generator.get_state() if aug_generator is not None else None,
                        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
            }
            on_epoch_end(epoch, history, model, state)
    if step is not None:
        model.zero_grad(set_to_none=True)  # the .grad tensors live in the graph's memory pool: release it
    return history
