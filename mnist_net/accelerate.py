"""CPU training speed path, applied at run time by train.py: `accelerate(model)`. Training only: numba lives here.

The model stays the assignment's stock modules (same classes' parameters, same state_dict keys); this swaps
the blocks' and convs' classes for subclasses whose CPU training forward computes the same thing faster:

- ReLU -> BatchNorm -> Dropout as one op. Eager PyTorch reads and writes block 1's 1.0-1.5M-value
  activations once per elementwise op, and the CPU step is bound by that memory traffic. These numba kernels
  read the conv output twice forward (statistics, then output) and the gradient twice backward, and never
  store the dropout mask: each element's 16 random bits come from a counter-based generator (SplitMix64 at the
  element's word index, seeded per layer and step from torch's generator), so the backward pass recomputes
  them and `torch.manual_seed` still fixes every mask. A channels_last NxCxHxW tensor's memory is N*H*W rows
  of C values; the kernels walk it in blocks of ROWS rows, one flat loop per block that LLVM vectorises. Sums
  are float64 over a fixed split into CHUNKS, so they do not depend on the thread count.
- The 1x1 conv's and conv1's weight gradients as matrix products over channels_last memory (oneDNN's take
  ~3 ms each a step here; these ~0.6 and ~1.7 ms, and are more accurate against float64).
- glibc told to keep freed activation buffers instead of re-faulting them in every step.

Evaluation, GPUs and NCHW run the stock modules, and float64 the stock ReLU, BatchNorm and Dropout.
bench/train_speed.py measures what it is worth.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform
import time

import numba
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

ROWS = 64  # rows per block: ROWS * C values, a multiple of 4 (4 values per 64-bit word)
CHUNKS = 32  # fixed work split: each chunk sums its own blocks, so results are thread-count independent
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@numba.njit(inline="always")
def _splitmix64(out, seed, first, count):
    """out[j] = SplitMix64 output number first + j + 1 of the stream that starts at seed."""
    for j in range(count):
        z = seed + np.uint64(first + j + 1) * _GAMMA
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        out[j] = z ^ (z >> np.uint64(31))


@numba.njit(inline="always")
def _block_mask(mask, words, seed, first, n, threshold, keep_scale):
    """mask[:n] = dropout's multipliers (keep_scale or 0) for the n values from value index first (a multiple of 4)."""
    _splitmix64(words, seed, first // 4, (n + 3) // 4)
    bits = words.view(np.uint16)  # four 16-bit draws a word, lowest first
    for j in range(n):
        mask[j] = keep_scale if bits[j] >= threshold else np.float32(0)


@numba.njit(inline="always")
def _tile(values, channels):
    """Per-channel values repeated for each of a block's ROWS rows."""
    out = np.empty(ROWS * channels, values.dtype)
    for j in range(out.size):
        out[j] = values[j % channels]
    return out


@numba.njit(inline="always")
def _fold_channels(part, t, s, q, channels):
    """Add a chunk's per-position sums s and q into part[t] (2, C), row by row."""
    for r in range(ROWS):
        for c in range(channels):
            part[t, 0, c] += s[r * channels + c]
            part[t, 1, c] += q[r * channels + c]


@numba.njit(parallel=True, cache=True)
def _forward_sums(z, channels):
    """Per-channel sum and sum of squares of relu(z): (2, C) float64."""
    block = ROWS * channels
    blocks = (z.size + block - 1) // block
    part = np.zeros((CHUNKS, 2, channels))
    for t in numba.prange(CHUNKS):
        first, last = t * blocks // CHUNKS, (t + 1) * blocks // CHUNKS
        if first == last:  # small maps leave chunks empty
            continue
        s, q = np.zeros(block), np.zeros(block)
        for b in range(first, last):
            o = b * block
            zb = z[o:o + min(block, z.size - o)]
            for j in range(zb.size):
                v = 0.0 if zb[j] <= 0 else np.float64(zb[j])  # relu; NaN stays NaN, as in torch
                s[j] += v
                q[j] += v * v
        _fold_channels(part, t, s, q, channels)
    return part.sum(0)


@numba.njit(parallel=True, cache=True)
def _forward_apply(z, out, scale, shift, seed, threshold, keep_scale):
    """out = (relu(z) * scale + shift) * mask, scale and shift per channel."""
    channels = scale.size
    block = ROWS * channels
    blocks = (z.size + block - 1) // block
    scale, shift = _tile(scale, channels), _tile(shift, channels)
    for t in numba.prange(CHUNKS):
        words, mask = np.empty(block // 4, np.uint64), np.empty(block, np.float32)
        for b in range(t * blocks // CHUNKS, (t + 1) * blocks // CHUNKS):
            o, n = b * block, min(block, z.size - b * block)
            _block_mask(mask, words, seed, o, n, threshold, keep_scale)
            zb, ob = z[o:o + n], out[o:o + n]
            for j in range(n):
                v = np.float32(0) if zb[j] <= 0 else zb[j]
                ob[j] = (v * scale[j] + shift[j]) * mask[j]


@numba.njit(parallel=True, cache=True)
def _backward_sums(grad, z, channels, seed, threshold, keep_scale):
    """Per-channel sums of g and g * relu(z), g = grad * mask (BatchNorm's output gradient): (2, C)."""
    block = ROWS * channels
    blocks = (z.size + block - 1) // block
    part = np.zeros((CHUNKS, 2, channels))
    for t in numba.prange(CHUNKS):
        first, last = t * blocks // CHUNKS, (t + 1) * blocks // CHUNKS
        if first == last:
            continue
        words, mask = np.empty(block // 4, np.uint64), np.empty(block, np.float32)
        s, q = np.zeros(block), np.zeros(block)
        for b in range(first, last):
            o, n = b * block, min(block, z.size - b * block)
            _block_mask(mask, words, seed, o, n, threshold, keep_scale)
            zb, gb = z[o:o + n], grad[o:o + n]
            for j in range(n):
                v = np.float32(0) if zb[j] <= 0 else zb[j]
                g = np.float64(gb[j] * mask[j])
                s[j] += g
                q[j] += g * v
        _fold_channels(part, t, s, q, channels)
    return part.sum(0)


@numba.njit(parallel=True, cache=True)
def _backward_apply(grad, z, grad_z, coef, const, scale, seed, threshold, keep_scale):
    """grad_z = (z > 0) * (coef * z + const + scale * grad * mask), coefficients per channel."""
    channels = scale.size
    block = ROWS * channels
    blocks = (z.size + block - 1) // block
    coef, const, scale = _tile(coef, channels), _tile(const, channels), _tile(scale, channels)
    for t in numba.prange(CHUNKS):
        words, mask = np.empty(block // 4, np.uint64), np.empty(block, np.float32)
        for b in range(t * blocks // CHUNKS, (t + 1) * blocks // CHUNKS):
            o, n = b * block, min(block, z.size - b * block)
            _block_mask(mask, words, seed, o, n, threshold, keep_scale)
            zb, gb, ob = z[o:o + n], grad[o:o + n], grad_z[o:o + n]
            for j in range(n):
                v = coef[j] * zb[j] + const[j] + scale[j] * (gb[j] * mask[j])
                ob[j] = v if zb[j] > 0 else np.float32(0)


def keep_mask(seed: int, numel: int, p: float) -> np.ndarray:
    """Which of numel values (in memory order) dropout keeps for this seed: the kernels' mask, in NumPy."""
    counters = np.arange(1, (numel + 3) // 4 + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):  # SplitMix64 is arithmetic modulo 2**64
        z = np.uint64(seed) + counters * _GAMMA
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z ^= z >> np.uint64(31)
    return z.view(np.uint16)[:numel] >= _threshold(p)


def _threshold(p: float) -> np.uint16:
    """16-bit words at or above this are kept: probability 1 - p to within 2**-17."""
    return np.uint16(round(p * 65536))


def supports(x: torch.Tensor, bn: torch.nn.BatchNorm2d, dropout: torch.nn.Dropout) -> bool:
    """Whether the fused op computes relu -> bn -> dropout for x exactly as the modules would train."""
    return (bn.training and dropout.training and x.device.type == "cpu" and x.dtype == torch.float32
            and x.dim() == 4 and x.numel() > x.shape[1] and x.is_contiguous(memory_format=torch.channels_last)
            and bn.affine and bn.track_running_stats and bn.momentum is not None and 0 <= dropout.p < 1
            and bn.weight.dtype == bn.bias.dtype == torch.float32 and bn.weight.device.type == "cpu")


def relu_batchnorm_dropout(x: torch.Tensor, bn: torch.nn.BatchNorm2d, dropout: torch.nn.Dropout,
                           seed: int | None = None) -> torch.Tensor:
    """dropout(bn(relu(x))) in training mode, with bn's running statistics updated as the module does."""
    if seed is None:
        seed = int(torch.empty((), dtype=torch.int64).random_())  # [0, 2**63): one draw of torch's RNG
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
    y, mean, var = _ReluBatchNormDropout.apply(x, bn.weight, bn.bias, bn.eps, dropout.p, seed)
    count = x.numel() // x.shape[1]
    with torch.no_grad():
        bn.num_batches_tracked.add_(1)
        bn.running_mean.lerp_(mean, bn.momentum)
        bn.running_var.lerp_(var * (count / (count - 1)), bn.momentum)  # unbiased, as PyTorch keeps it
    return y


def warm_up() -> float:
    """Compile the kernels (or load them from numba's cache) on a tiny map; seconds taken. Draws no random numbers."""
    started = time.perf_counter()
    x = torch.ones(2, 4, 2, 2).contiguous(memory_format=torch.channels_last).requires_grad_()
    relu_batchnorm_dropout(x, torch.nn.BatchNorm2d(4), torch.nn.Dropout(0.1), seed=0).sum().backward()
    return time.perf_counter() - started


# A diverging run's inf and NaN pass through silently, as in torch's ops: the training loop reports them.
_QUIET = np.errstate(all="ignore")


def _memory(t: torch.Tensor) -> np.ndarray:
    """A channels_last tensor's memory as a flat NumPy view (no copy)."""
    return t.detach().permute(0, 2, 3, 1).reshape(-1).numpy()


class _ReluBatchNormDropout(torch.autograd.Function):
    """Training-mode relu -> batch norm -> dropout over channels_last x; returns (y, batch mean, biased var).

    The per-channel arithmetic is float64 NumPy: a few dozen tiny torch ops cost more than the kernels
    on block 4's maps.
    """

    @staticmethod
    @_QUIET
    def forward(ctx, x, weight, bias, eps, p, seed):
        channels = x.shape[1]
        m = x.numel() // channels
        rng = (np.uint64(seed), _threshold(p), np.float32(1.0 / (1.0 - p)))
        memory = _memory(x)
        sum_x, sum_xx = _forward_sums(memory, channels) / m
        mean, var = sum_x, np.maximum(sum_xx - sum_x * sum_x, 0.0)
        rstd = 1.0 / np.sqrt(var + eps)
        scale = weight.detach().numpy() * rstd
        shift = bias.detach().numpy() - mean * scale
        y = torch.empty_like(x, memory_format=torch.channels_last)
        _forward_apply(memory, _memory(y), scale.astype(np.float32), shift.astype(np.float32), *rng)
        ctx.save_for_backward(x)
        ctx.stats, ctx.rng = (mean, rstd, scale), rng
        mean32, var32 = torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(var.astype(np.float32))
        ctx.mark_non_differentiable(mean32, var32)
        return y, mean32, var32

    @staticmethod
    @once_differentiable
    @_QUIET
    def backward(ctx, grad_y, _grad_mean, _grad_var):
        (x,) = ctx.saved_tensors
        mean, rstd, scale = ctx.stats
        channels = x.shape[1]
        m = x.numel() // channels
        memory = _memory(x)
        grad = _memory(grad_y.contiguous(memory_format=torch.channels_last))
        sum_g, sum_gv = _backward_sums(grad, memory, channels, *ctx.rng)
        sum_g_centred = sum_gv - mean * sum_g  # sum of g * (relu(x) - mean)
        grad_x = None
        if ctx.needs_input_grad[0]:
            # grad of bn's input = scale * (g - mean(g) - (v - mean) * rstd^2 * mean(g * (v - mean))), v = relu(x)
            coef = -scale * rstd * rstd * sum_g_centred / m
            const = -scale * sum_g / m - coef * mean
            grad_x = torch.empty_like(x, memory_format=torch.channels_last)
            _backward_apply(grad, memory, _memory(grad_x), coef.astype(np.float32), const.astype(np.float32),
                            scale.astype(np.float32), *ctx.rng)
        grad_weight = torch.from_numpy((sum_g_centred * rstd).astype(np.float32))
        return grad_x, grad_weight, torch.from_numpy(sum_g.astype(np.float32)), None, None, None


class FusedBlock(nn.Sequential):
    """A block whose ReLU -> BatchNorm -> Dropout stages run as the fused op where `supports` says it is exact."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers, i = list(self), 0
        while i < len(layers):
            relu, bn, drop = (layers[i:i + 3] + [None, None])[:3]
            if (self.training and isinstance(relu, nn.ReLU) and isinstance(bn, nn.BatchNorm2d)
                    and isinstance(drop, nn.Dropout) and supports(x, bn, drop)):
                x = relu_batchnorm_dropout(x, bn, drop)
                i += 3
            else:
                x = layers[i](x)
                i += 1
        return x


class FastConv2d(nn.Conv2d):
    """Conv2d whose CPU backward pass, for channels_last input, skips two slow oneDNN weight-gradient kernels."""

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

    One float32 product over all M rows was up to 8x less accurate than oneDNN (against float64); 32 partial
    products are 4-10x more accurate than oneDNN, and no slower.
    """
    k = next(k for k in (32, 16, 8, 4, 2, 1) if a.shape[0] % k == 0)
    return torch.bmm(a.reshape(k, -1, a.shape[1]).transpose(1, 2), b.reshape(k, -1, b.shape[1])).sum(0)


def _pixel_rows(t: torch.Tensor) -> torch.Tensor:
    """A NxCxHxW tensor as (N*H*W, C) rows: a view of channels_last memory, else a copy into it."""
    return t.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1).reshape(-1, t.shape[1])


class _PointwiseConv(torch.autograd.Function):
    """1x1 convolution: oneDNN forward and input gradient; the weight gradient as products of pixel rows."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        return F.conv2d(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_y):
        x, weight = ctx.saved_tensors
        grad_x = None
        if ctx.needs_input_grad[0]:
            # Given x itself: torch.nn.grad.conv2d_input passes an expanded stand-in that the CPU path copies out.
            grad_x = torch.ops.aten.convolution_backward(grad_y, x, weight, None, [1, 1], [0, 0], [1, 1], False, [0, 0],
                                                         1, [True, False, False])[0]
        g = _pixel_rows(grad_y)  # (N*H*W, O)
        return grad_x, _summed_products(g, _pixel_rows(x)).view_as(weight), _column_sums(g)


class _SingleChannelConv(torch.autograd.Function):
    """Convolution of one-channel input that needs no input gradient (conv1): the weight gradient as
    products of the kernel's shifted windows of the input with the output gradient."""

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


def tune_cpu_allocator() -> bool:
    """Keep freed activation buffers in glibc's heap: by default each few-MB tensor is a fresh mmap whose pages
    fault in again every step (~25% of a CPU step here). False where glibc is not the allocator."""
    if platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False


def accelerate(model: nn.Module) -> nn.Module:
    """Swap in the CPU training classes, in place (parameters and state_dict keys unchanged); returns model."""
    for module in model.modules():
        if type(module) is nn.Sequential:
            module.__class__ = FusedBlock
        elif type(module) is nn.Conv2d:
            module.__class__ = FastConv2d
    tune_cpu_allocator()
    warm_up()  # numba compiles (first run, ~12 s) or loads its kernels now, not inside the first epoch's clock
    return model
