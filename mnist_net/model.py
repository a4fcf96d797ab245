"""The assignment's 14,120-parameter CNN as four named blocks, and its summary table."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass

import numpy as np
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


class Dropout(nn.Dropout):
    """Element-wise dropout, same distribution as nn.Dropout, with a cheaper mask on CPU.

    On CPU, `bernoulli_` costs about a quarter of a training step here. Instead each element gets 16
    random bits from 64-bit words of NumPy's SFC64 generator (seeded from torch's generator, so
    `torch.manual_seed` still fixes every mask), kept with probability 1 - p to within 2**-16. For
    conv2's output the words take 0.7 ms, where torch's mt19937 `random_` took 1.8 ms.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu":
            return super().forward(x)
        n = x.numel()
        seed = int(torch.empty((), dtype=torch.int64).random_())  # [0, 2**63): one draw from torch's RNG
        words = torch.from_numpy(np.random.SFC64(seed).random_raw((n + 3) // 4).view(np.int64))
        bits = words.view(torch.int16)[:n].view(x.shape)  # uniform over [-32768, 32767]
        keep = bits >= (-32768 + round(self.p * 65536))
        # The mask is laid out like x (channels_last in training): a product of two layouts takes ~5x
        # longer, forward and backward.
        mask = torch.empty_like(x).copy_(keep).mul_(1.0 / (1.0 - self.p))
        return x * mask


class BatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d with a faster training pass on CPU for channels_last input; the same statistics and math.

    PyTorch's CPU kernels for channels_last BatchNorm take ~5 ms forward and ~5 ms backward per step on
    conv2's 128x20x24x24 output here, 2-3x their NCHW time. Seen as an (N*H*W, C) matrix, that memory
    is one batch of rows, and the per-channel sums become column sums, which PyTorch vectorises well
    once k pixels are folded into one row of k*C values. Results agree with a float64 reference to
    ~1e-7 (PyTorch's own channels_last kernel: ~4e-5). Evaluation, GPUs, NCHW input and small maps use
    PyTorch's.
    """

    # Below this many values PyTorch's kernel is the faster one: ours costs ~0.4 ms a layer in Python
    # and dispatch overhead, forward and backward, which blocks 2-4's small maps (8k-205k values at
    # batch 128) do not repay; conv1's and conv2's outputs (1.0M and 1.5M) take 2-2.5x less time.
    fast_min_numel = 2**18

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and x.device.type == "cpu" and x.dim() == 4 and x.numel() >= self.fast_min_numel
                and x.dtype in (torch.float32, torch.float64) and x.numel() > x.shape[1]
                and x.is_contiguous(memory_format=torch.channels_last)
                and self.affine and self.track_running_stats and self.momentum is not None):
            return super().forward(x)
        y, mean, var = _ChannelsLastBatchNorm.apply(x, self.weight, self.bias, self.eps)
        count = x.numel() // x.shape[1]
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * (count / (count - 1)), self.momentum)  # unbiased, as PyTorch keeps it
        return y


def _fold(m: int) -> int:
    """How many of m rows to fold into one: 16*C columns make long vectorised inner loops."""
    return next(k for k in (16, 8, 4, 2, 1) if m % k == 0)


def _rows(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """A channels_last NxCxHxW tensor's memory as (N*H*W/k, k*C) rows (a view), and k."""
    c = x.shape[1]
    m = x.numel() // c
    k = _fold(m)
    return x.permute(0, 2, 3, 1).reshape(m // k, k * c), k


def _channel_sums(rows: torch.Tensor, k: int) -> torch.Tensor:
    """Per-channel sums of (N*H*W/k, k*C) rows: C values."""
    return rows.sum(0).view(k, -1).sum(0)


class _ChannelsLastBatchNorm(torch.autograd.Function):
    """Training-mode batch norm over a channels_last tensor; returns (y, batch mean, biased batch var)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        n, c, h, w = x.shape
        m = x.numel() // c
        rows, k = _rows(x)
        mean = _channel_sums(rows, k) / m
        var = _channel_sums(rows * rows, k) / m - mean * mean
        # E[x^2] - E[x]^2 loses digits when the mean dwarfs the spread; then sum the centred squares.
        centred = bool((mean * mean > 1000 * var).any())
        if centred:
            var = _channel_sums((rows - mean.repeat(k)).square_(), k) / m
        var.clamp_(min=0)
        rstd = torch.rsqrt(var + eps)
        scale = weight * rstd
        y = torch.addcmul((bias - mean * scale).repeat(k), rows, scale.repeat(k))  # x * scale + shift
        ctx.save_for_backward(x, mean, rstd, weight)
        ctx.centred = centred
        ctx.mark_non_differentiable(mean, var)
        return y.view(n, h, w, c).permute(0, 3, 1, 2), mean, var

    @staticmethod
    def backward(ctx, grad_y, _grad_mean, _grad_var):
        x, mean, rstd, weight = ctx.saved_tensors
        n, c, h, w = x.shape
        m = x.numel() // c
        rows, k = _rows(x)
        grad_rows, _ = _rows(grad_y.contiguous(memory_format=torch.channels_last))
        sum_g = _channel_sums(grad_rows, k)
        if ctx.centred:
            sum_g_centred = _channel_sums(grad_rows * (rows - mean.repeat(k)), k)
        else:
            sum_g_centred = _channel_sums(grad_rows * rows, k) - mean * sum_g  # sum of grad * (x - mean)
        scale = weight * rstd
        grad_x = None
        if ctx.needs_input_grad[0]:
            # grad_x = scale * (g - mean(g) - (x - mean) * rstd^2 * mean(g * (x - mean))), as a*x + b*g + const
            coef = -scale * rstd * rstd * sum_g_centred / m
            const = -scale * sum_g / m - coef * mean
            grad_x = torch.addcmul(const.repeat(k), rows, coef.repeat(k)).addcmul_(grad_rows, scale.repeat(k))
            grad_x = grad_x.view(n, h, w, c).permute(0, 3, 1, 2)
        return grad_x, sum_g_centred * rstd, sum_g, None


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
    k = _fold(rows.shape[0])
    return _channel_sums(rows.reshape(-1, k * rows.shape[1]), k)


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
    layers += [(f"bn{i}", BatchNorm2d(cout)), (f"do{i}", Dropout(dropout))]
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
        self.block1 = nn.Sequential(OrderedDict(
            _stage("1", 1, 12, d) + _stage("2", 12, 20, d)
            + [("one1", Conv2d(20, 10, kernel_size=1)), ("pool1", nn.MaxPool2d(2))]
        ))
        # 10x12x12 -> 16x10x10 -> 16x8x8
        self.block2 = nn.Sequential(OrderedDict(_stage("3", 10, 16, d) + _stage("4", 16, 16, d)))
        # 16x8x8 -> 16x6x6 -> 16x4x4
        self.block3 = nn.Sequential(OrderedDict(_stage("5", 16, 16, d) + _stage("6", 16, 16, d)))
        # 16x4x4 -> 16x2x2 -> (2x2 conv over the whole map) 10x1x1: the conv is the classifier
        self.block4 = nn.Sequential(OrderedDict(
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
