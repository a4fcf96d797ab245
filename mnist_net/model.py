"""The assignment's 14,120-parameter CNN as four named blocks, and its summary table."""
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
        """Plain dict, safe for `torch.load(weights_only=True)`."""
        return asdict(self)


class Block(nn.Sequential):
    """A named block of layers; in CPU training each ReLU -> BatchNorm -> Dropout runs as one fused op.

    The fused op (`mnist_net.fused`) computes what the three modules compute in training, with fewer
    passes over memory; evaluation, GPUs and anything it does not cover run the modules one by one (so
    in those, and only those, the three modules' own forward hooks fire).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers = list(self)
        i = 0
        while i < len(layers):
            relu, bn, drop = (layers[i:i + 3] + [None, None])[:3]
            if (self.training and x.device.type == "cpu" and isinstance(relu, nn.ReLU)
                    and isinstance(bn, nn.BatchNorm2d) and isinstance(drop, nn.Dropout)):
                from . import fused  # numba is imported only by a CPU training run

                if fused.supports(x, bn, drop):
                    x = fused.relu_batchnorm_dropout(x, bn, drop)
                    i += 3
                    continue
            x = layers[i](x)
            i += 1
        return x


class Conv2d(nn.Conv2d):
    """Conv2d whose CPU backward pass, for channels_last input, skips two slow oneDNN kernels; same math.

    oneDNN's weight gradients take ~2.9 ms a step for the 1x1 conv (20 -> 10 channels) and ~3.2 ms
    for conv1 (one input channel) here (ONEDNN_VERBOSE); as matrix products over the channels_last
    memory they take 0.6 and 1.7 ms in the step (profiler). The forward pass is always PyTorch's; so is
    everything else (GPUs, NCHW, other kernels, no gradient wanted).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (torch.is_grad_enabled() and self.weight.requires_grad and x.device.type == "cpu" and x.dim() == 4
                and x.dtype in (torch.float32, torch.float64) and self.bias is not None and self.groups == 1
                and self.stride == (1, 1) and self.padding == (0, 0) and self.dilation == (1, 1)
                and self.padding_mode == "zeros" and x.is_contiguous(memory_format=torch.channels_last)):
            if self.kernel_size == (1, 1):
                return _PointwiseConv.apply(x, self.weight, self.bias)
            if self.in_channels == 1 and not x.requires_grad:
                return _SingleChannelConv.apply(x, self.weight, self.bias)
        return super().forward(x)


def _column_sums(rows: torch.Tensor) -> torch.Tensor:
    """Sums of an (M, C) matrix's columns; 16 rows folded into one first, which PyTorch sums ~3x faster."""
    k = next(k for k in (16, 8, 4, 2, 1) if rows.shape[0] % k == 0)
    return rows.reshape(-1, k * rows.shape[1]).sum(0).view(k, -1).sum(0)


def _summed_products(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a.T @ b for (M, P) and (M, Q) matrices with M ~ 10^5, as 32 products of M/32 rows, summed.

    One float32 product over all M rows was up to 8x less accurate than oneDNN's weight gradients (the
    1x1 conv's, against float64); the 32 partial products are 4-10x more accurate than oneDNN's (and
    were no slower than the single product in a microbenchmark).
    """
    k = next(k for k in (32, 16, 8, 4, 2, 1) if a.shape[0] % k == 0)
    return torch.bmm(a.reshape(k, -1, a.shape[1]).transpose(1, 2), b.reshape(k, -1, b.shape[1])).sum(0)


def _pixel_rows(t: torch.Tensor) -> torch.Tensor:
    """A NxCxHxW tensor as (N*H*W, C) rows: a view of channels_last memory, else a copy into it."""
    return t.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1).reshape(-1, t.shape[1])


class _PointwiseConv(torch.autograd.Function):
    """1x1 convolution: oneDNN forward; backward as products of (N*H*W, C) pixel rows."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        return F.conv2d(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_y):
        x, weight = ctx.saved_tensors
        grad_x = None
        if ctx.needs_input_grad[0]:  # oneDNN's data gradient is fast here (~0.4 ms): keep it
            # Given x itself: torch.nn.grad.conv2d_input passes an expanded stand-in for it, which the CPU
            # path copies out in full (0.61 vs 0.43 ms here; same values, same layout).
            grad_x = torch.ops.aten.convolution_backward(grad_y, x, weight, None, [1, 1], [0, 0], [1, 1], False, [0, 0],
                                                         1, [True, False, False])[0]
        g = _pixel_rows(grad_y)  # (N*H*W, O)
        return grad_x, _summed_products(g, _pixel_rows(x)).view_as(weight), _column_sums(g)


class _SingleChannelConv(torch.autograd.Function):
    """Convolution of one-channel input that needs no input gradient (conv1): oneDNN forward; the
    weight gradient as products of the kernel's shifted windows of the input with the output gradient."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x)
        ctx.kernel = weight.shape
        return F.conv2d(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_y):
        (x,) = ctx.saved_tensors
        _, _, kh, kw = ctx.kernel
        n, _, h, w = grad_y.shape
        img = x.reshape(x.shape[0], x.shape[2], x.shape[3])  # one channel: NCHW and channels_last alike
        windows = torch.stack([img[:, i:i + h, j:j + w] for i in range(kh) for j in range(kw)])  # (kh*kw, N, H, W)
        g = _pixel_rows(grad_y)  # (N*H*W, O), rows in the windows' (n, y, x) order
        grad_w = _summed_products(g, windows.view(kh * kw, -1).t()).reshape(ctx.kernel)
        return None, grad_w, _column_sums(g)


def _conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    return Conv2d(cin, cout, kernel_size=k, bias=True)


def _stage(name: str, cin: int, cout: int, dropout: float, relu: bool = True) -> list:
    """conv -> ReLU -> BN -> Dropout, the assignment's order (ReLU before BN)."""
    i = name
    layers = [(f"conv{i}", _conv(cin, cout))]
    if relu:
        layers.append((f"relu{i}", nn.ReLU(inplace=True)))
    layers += [(f"bn{i}", nn.BatchNorm2d(cout)), (f"do{i}", nn.Dropout(dropout))]
    return layers


class Net(nn.Module):
    """Assignment 4 network: < 20k params, no Linear layer, log-softmax over 10 digits."""

    block_names = ("block1", "block2", "block3", "block4")

    def __init__(self, dropout: float = 0.1, num_classes: int = 10):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.config = ModelConfig(dropout=dropout, num_classes=num_classes)
        d = dropout
        # 1x28x28 -> 12x26x26 -> 20x24x24 -> (1x1) 10x24x24 -> (pool) 10x12x12
        self.block1 = Block(OrderedDict(
            _stage("1", 1, 12, d) + _stage("2", 12, 20, d)
            + [("one1", Conv2d(20, 10, kernel_size=1)), ("pool1", nn.MaxPool2d(2))]
        ))
        # 10x12x12 -> 16x10x10 -> 16x8x8
        self.block2 = Block(OrderedDict(_stage("3", 10, 16, d) + _stage("4", 16, 16, d)))
        # 16x8x8 -> 16x6x6 -> 16x4x4
        self.block3 = Block(OrderedDict(_stage("5", 16, 16, d) + _stage("6", 16, 16, d)))
        # 16x4x4 -> 16x2x2 -> (2x2 conv over the whole map) 10x1x1: the conv is the classifier
        self.block4 = Block(OrderedDict(
            _stage("7", 16, 16, d) + [("conv8", Conv2d(16, num_classes, kernel_size=2))]
        ))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Blocks 1-4: Bx1x28x28 -> Bx10x1x1 class scores before log-softmax."""
        for name in self.block_names:
            x = getattr(self, name)(x)
        return x

    def forward_blocks(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        """Each block's output for input x, in order (used by the feature-map views)."""
        outs = OrderedDict()
        for name in self.block_names:
            x = getattr(self, name)(x)
            outs[name] = x
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Bx1x28x28 normalised digits -> Bx10 log-probabilities."""
        return F.log_softmax(self.forward_features(x).flatten(1), dim=1)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# The assignment's table came from torchsummary over a model that applied ReLU
# functionally (F.relu), so activations have no row there; we hide them the same way.
_HIDDEN_IN_TABLE = (nn.ReLU,)


def summary_rows(model: Net, input_size=(1, 1, 28, 28)) -> list[tuple[str, tuple, int]]:
    """(layer type, output shape CxHxW, params) per layer, as in the assignment's table."""
    rows: list[tuple[str, tuple, int]] = []
    hooks = []

    def record(module, _inp, out):
        params = sum(p.numel() for p in module.parameters(recurse=False))
        rows.append((type(module).__name__, tuple(out.shape[1:]), params))

    for module in model.modules():
        if len(list(module.children())) == 0 and not isinstance(module, _HIDDEN_IN_TABLE):
            hooks.append(module.register_forward_hook(record))
    was_training = model.training
    try:
        model.eval()
        with torch.inference_mode():
            model(torch.zeros(input_size, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return rows


def summary_text(model: Net) -> str:
    """The summary table in the assignment's (torchsummary) format."""
    lines = [f"{'Layer (type)':>20}  {'Output Shape':>25}  {'Param #':>15}", "=" * 64]
    counts: dict[str, int] = {}
    for i, (kind, shape, params) in enumerate(summary_rows(model), start=1):
        counts[kind] = counts.get(kind, 0) + 1
        shape_txt = str([-1, *shape])
        lines.append(f"{kind + '-' + str(i):>20}  {shape_txt:>25}  {params:>15,}")
    lines += ["=" * 64, f"Total params: {count_parameters(model):,}",
              f"Trainable params: {count_parameters(model):,}", "=" * 64]
    return "\n".join(lines)
