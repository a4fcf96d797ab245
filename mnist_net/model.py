"""The assignment's 14,120-parameter CNN as four named blocks of stock layers, and its summary table."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the exact model; saved beside the weights."""

    dropout: float = 0.1
    num_classes: int = 10

    def to_dict(self) -> dict:
        return asdict(self)


def _stage(i: int, cin: int, cout: int, dropout: float) -> list:
    """conv 3x3 -> ReLU -> BatchNorm -> Dropout, the assignment's order (ReLU before BN)."""
    return [(f"conv{i}", nn.Conv2d(cin, cout, 3)), (f"relu{i}", nn.ReLU(inplace=True)),
            (f"bn{i}", nn.BatchNorm2d(cout)), (f"do{i}", nn.Dropout(dropout))]


class Net(nn.Module):
    """Assignment 4 network: < 20k parameters, no Linear layer, log-softmax over 10 digits."""

    block_names = ("block1", "block2", "block3", "block4")

    def __init__(self, dropout: float = 0.1, num_classes: int = 10):
        super().__init__()
        self.config = ModelConfig(dropout=dropout, num_classes=num_classes)
        d = dropout
        # 1x28x28 -> 12x26x26 -> 20x24x24 -> (1x1) 10x24x24 -> (pool) 10x12x12
        self.block1 = nn.Sequential(OrderedDict(
            _stage(1, 1, 12, d) + _stage(2, 12, 20, d)
            + [("one1", nn.Conv2d(20, 10, 1)), ("pool1", nn.MaxPool2d(2))]))
        # 10x12x12 -> 16x10x10 -> 16x8x8
        self.block2 = nn.Sequential(OrderedDict(_stage(3, 10, 16, d) + _stage(4, 16, 16, d)))
        # 16x8x8 -> 16x6x6 -> 16x4x4 (the assignment's prose has no ReLU after conv5; its code, followed here, does)
        self.block3 = nn.Sequential(OrderedDict(_stage(5, 16, 16, d) + _stage(6, 16, 16, d)))
        # 16x4x4 -> 16x2x2 -> (2x2 conv over the whole map) 10x1x1: the conv is the classifier
        self.block4 = nn.Sequential(OrderedDict(_stage(7, 16, 16, d) + [("conv8", nn.Conv2d(16, num_classes, 2))]))

    def forward_blocks(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        """Each block's output for input x, in order (the feature-map views)."""
        outs = OrderedDict()
        for name in self.block_names:
            x = outs[name] = getattr(self, name)(x)
        return outs

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Blocks 1-4: Bx1x28x28 -> Bx10x1x1 class scores before log-softmax."""
        return self.forward_blocks(x)["block4"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Bx1x28x28 normalised digits -> Bx10 log-probabilities."""
        return F.log_softmax(self.forward_features(x).flatten(1), dim=1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def summary_rows(model: Net, input_size=(1, 1, 28, 28)) -> list[tuple[str, tuple, int]]:
    """(layer type, output shape CxHxW, params) per layer, as in the assignment's table.

    The assignment's torchsummary table came from a model that applied ReLU functionally: no ReLU rows.
    """
    rows, hooks = [], []

    def record(module, _inp, out):
        rows.append((type(module).__name__, tuple(out.shape[1:]), sum(p.numel() for p in module.parameters())))

    for module in model.modules():
        if not list(module.children()) and not isinstance(module, nn.ReLU):
            hooks.append(module.register_forward_hook(record))
    was_training = model.training
    try:
        with torch.inference_mode():
            model.eval()(torch.zeros(input_size, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return rows


def summary_text(model: Net) -> str:
    """The summary table in the assignment's (torchsummary) format."""
    lines = [f"{'Layer (type)':>20}  {'Output Shape':>25}  {'Param #':>15}", "=" * 64]
    for i, (kind, shape, params) in enumerate(summary_rows(model), start=1):
        lines.append(f"{f'{kind}-{i}':>20}  {str([-1, *shape]):>25}  {params:>15,}")
    total = count_parameters(model)
    return "\n".join(lines + ["=" * 64, f"Total params: {total:,}", f"Trainable params: {total:,}", "=" * 64])
