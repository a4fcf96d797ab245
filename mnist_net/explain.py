"""Why this answer: input-gradient saliency, and the learned kernels of block 1, as images."""
from __future__ import annotations

import numpy as np
import torch

from .model import Net
from .render import colorize, enlarge, render_grid, text_image


def saliency(model: Net, x: torch.Tensor, target: int | None = None, samples: int = 16,
             sigma: float = 0.6, seed: int = 0) -> tuple[np.ndarray, int]:
    """SmoothGrad: d(score of target)/d(input), averaged over noisy copies of a 1x1x28x28 input.

    The score is the class's pre-softmax output (block4), so other classes do not mix in. Plain
    gradients of so small a net are speckled; averaging over `samples` copies with Gaussian noise of
    `sigma` (in normalised units: 0.6 is ~18% of the pixel range) keeps what is stable. samples=1 and
    sigma=0 give the plain gradient. Seeded, so the same drawing always gets the same map.
    """
    was_training = model.training
    model.eval()  # BatchNorm's running statistics, no dropout: the network that answered
    try:
        with torch.enable_grad(), torch.inference_mode(False):
            x = x.detach().clone()
            if target is None:
                with torch.no_grad():
                    target = int(model.forward_features(x).flatten(1).argmax(1))
            noise = torch.randn((samples, *x.shape[1:]), generator=torch.Generator().manual_seed(seed)) * sigma
            noisy = (x + noise).requires_grad_(True)               # samples x 1 x 28 x 28
            scores = model.forward_features(noisy).flatten(1)       # samples x 10
            (grad,) = torch.autograd.grad(scores[:, target].sum(), noisy)
    finally:
        model.train(was_training)
    return (grad.mean(0)[0]).numpy(), target


def saliency_overlay(pixels: np.ndarray, grad: np.ndarray, size: int = 224) -> tuple[np.ndarray, float]:
    """Signed gradient in a diverging map (red raises the class score, blue lowers it) over the input.

    Returns (RGB image with a colour bar, the scale s: colours run from -s to +s).
    """
    s = float(np.abs(grad).max()) or 1.0
    heat = colorize(grad, -s, s, "RdBu_r").astype(np.float32)
    grey = np.repeat(np.clip(pixels, 0, 1)[..., None], 3, axis=2) * 255.0
    # The digit stays visible as a dark outline under the colours.
    blend = np.clip(heat * (1.0 - 0.45 * grey / 255.0), 0, 255).astype(np.uint8)
    img = enlarge(blend, max(1, size // grad.shape[0]))
    ramp = colorize(np.linspace(-s, s, img.shape[1])[None].repeat(10, 0), -s, s, "RdBu_r")
    legend = np.full((14, img.shape[1], 3), 255, np.uint8)
    lo, hi = text_image(f"-{s:.3f}"), text_image(f"+{s:.3f}")
    legend[:, :lo.shape[1]] = lo
    legend[:, -hi.shape[1]:] = hi
    return np.concatenate([img, ramp, legend], axis=0), s


def conv1_kernels(model: Net) -> np.ndarray:
    """The 12 learned 3x3 kernels of conv1, on one symmetric diverging scale."""
    w = model.block1.conv1.weight.detach()[:, 0]  # 12 x 3 x 3
    s = float(w.abs().max())
    return render_grid(w, labels=[f"k{i}" for i in range(w.shape[0])], cmap="RdBu_r", scale=(-s, s), cell=60)


def one_by_one_mixing(model: Net) -> np.ndarray:
    """block1's 1x1 conv as a 10 x 20 matrix: how each output channel mixes conv2's 20 channels."""
    w = model.block1.one1.weight.detach()[:, :, 0, 0]  # 10 x 20
    s = float(w.abs().max())
    return render_grid(w[None], labels=["rows: 10 outputs, columns: 20 inputs (conv2 channels)"],
                       cmap="RdBu_r", scale=(-s, s), cell=400)
