"""One training step (batch gather, augmentation, forward, loss, backward) replayed as a CUDA graph.

At batch 128 a step of this 14k-parameter net is some 170 operations of a few microseconds each (177 at
PyTorch's dispatcher, counted on a CPU); launched one by one from Python, the launches take longer than
the work (H200: 4-6 ms a step eager, 0.86 ms replayed). Captured once as a CUDA graph, the
whole forward and backward pass is a single launch. The optimizer still steps eagerly after it: the
OneCycle schedule changes the learning rate and momentum every step, and SGD reads them as numbers.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn


class GraphedStep:
    """`step(index)` -> loss: `loss_and_backward(index)` for one full batch, replayed from a CUDA graph.

    Every call writes the gradients into the same `.grad` tensors (the graph's), so an eager backward
    in between (the epoch's last, partial batch) must zero them in place, `zero_grad(set_to_none=False)`,
    never drop them. With capture=False the function runs eagerly on the same buffers and gradients,
    which is how the bookkeeping is tested on a CPU.
    """

    def __init__(self, model: nn.Module, loss_and_backward: Callable[[torch.Tensor], torch.Tensor],
                 batch_size: int, device: torch.device, generators: Iterable[torch.Generator] = (),
                 capture: bool = True, warmup: int = 3):
        self.model = model
        self.batch_size = batch_size
        self.index = torch.arange(batch_size, device=device)  # the graph reads its batch from here
        self._fn = loss_and_backward
        self.graph: torch.cuda.CUDAGraph | None = None
        self.loss: torch.Tensor | None = None
        if capture:
            self._capture(list(generators), warmup)

    def __call__(self, index: torch.Tensor) -> torch.Tensor:
        """Loss of the batch at `index` (batch_size indices); its gradients are in the parameters' `.grad`.

        A replay returns the graph's own loss tensor, which the next replay overwrites: clone it to keep it.
        """
        if not self.model.training:  # the graph holds the training-mode step (batch statistics, dropout)
            raise RuntimeError("GraphedStep replays a training step; put the model in train mode first")
        self.index.copy_(index)
        if self.graph is None:
            for p in self.model.parameters():
                if p.grad is not None:
                    p.grad.zero_()
            return self._fn(self.index)
        self.graph.replay()
        return self.loss

    def _capture(self, generators: list[torch.Generator], warmup: int) -> None:
        device = self.index.device
        if device.index != torch.cuda.current_device():
            # torch.cuda.graph captures on a stream of the current device and registers only that device's
            # default generator; train.py makes its --device the current one.
            raise ValueError(f"capture on {device} while cuda:{torch.cuda.current_device()} is the current device; "
                             f"call torch.cuda.set_device({device.index}) first")
        params = list(self.model.parameters())
        buffers = [b.detach().clone() for b in self.model.buffers()]
        default = torch.cuda.default_generators[torch.cuda.current_device()]
        rng_states = [(g, g.get_state()) for g in (default, *generators)]
        # Warm-up on a side stream, as capture requires: cuDNN picks its algorithms (benchmark mode) and
        # autograd and cuBLAS set themselves up here, not inside the graph.
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(warmup):
                for p in params:
                    p.grad = None
                self._fn(self.index)
        torch.cuda.current_stream(device).wait_stream(side)
        for p in params:
            p.grad = None  # the captured backward allocates them in the graph's pool, where replays write them
        graph = torch.cuda.CUDAGraph()
        for g in generators:  # the default generator is registered by torch.cuda.graph itself
            graph.register_generator_state(g)
        with torch.cuda.graph(graph):
            # Detached: holding the captured autograd graph would keep its AccumulateGrad nodes, bound to the
            # capture stream, for the eager partial batch, which then syncs streams and warns.
            self.loss = self._fn(self.index).detach()
        # The warm-up ran real steps: BatchNorm's running statistics and the random streams moved. Put them
        # back, so training starts from exactly the state it would have had without the graph.
        with torch.no_grad():
            for b, saved in zip(self.model.buffers(), buffers):
                b.copy_(saved)
        for g, state in rng_states:
            g.set_state(state)
        self.graph = graph
