"""The CPU training speed path (mnist_net.accelerate) against float64 references and the stock modules."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mnist_net import accelerate as fused
from mnist_net.accelerate import FastConv2d, accelerate
from mnist_net.model import Net


def _layers(channels: int, p: float):
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(channels)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    return bn.train(), nn.Dropout(p).train()


def _mask(seed: int, shape, p: float) -> torch.Tensor:
    """keep_mask's memory-order mask for a channels_last NxCxHxW tensor, as an NCHW-indexed tensor."""
    n, c, h, w = shape
    keep = torch.from_numpy(fused.keep_mask(seed, n * c * h * w, p).copy())
    return keep.view(n, h, w, c).permute(0, 3, 1, 2)


@pytest.mark.parametrize("shape, p, offset", [
    ((128, 20, 24, 24), 0.1, 0.0),  # conv2's output in a training step
    ((96, 16, 2, 2), 0.1, 0.0),     # block 4 in the epoch's last, partial batch
    ((3, 5, 7, 9), 0.5, 0.0),       # odd sizes: the last block is partial, 5 channels per row
    ((64, 8, 5, 5), 0.1, 100.0),    # mean 100x the spread: E[v^2] - E[v]^2 must not cancel
    ((2, 12, 26, 26), 0.0, 0.0),    # no dropout
])
def test_fused_op_matches_a_float64_reference(shape, p, offset):
    bn, drop = _layers(shape[1], p)
    ref = nn.BatchNorm2d(shape[1]).double().train()
    ref.load_state_dict(bn.state_dict())
    torch.manual_seed(1)
    x = (torch.randn(shape) * 2 + 1 + offset).contiguous(memory_format=torch.channels_last)
    grad = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    seed = 1234567890123
    x32, x64 = x.clone().requires_grad_(), x.double().requires_grad_()
    y32 = fused.relu_batchnorm_dropout(x32, bn, drop, seed=seed)
    keep = _mask(seed, shape, p)
    y64 = ref(F.relu(x64)) * keep / (1 - p)
    assert y32.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(y32 == 0, ~keep | (y64 == 0))  # exactly the mask's elements are dropped
    y32.backward(grad)
    y64.backward(grad.double())

    def close(a, b, tol=2e-6):
        assert ((a.double() - b).abs().max() / b.abs().max()).item() < tol

    close(y32, y64)
    close(x32.grad, x64.grad)
    close(bn.weight.grad, ref.weight.grad, 1e-5)
    close(bn.bias.grad, ref.bias.grad)
    close(bn.running_mean, ref.running_mean)
    close(bn.running_var, ref.running_var)
    assert bn.num_batches_tracked.item() == ref.num_batches_tracked.item() == 1


def test_dropout_mask_keeps_one_minus_p_in_every_slot_of_a_word():
    keep = fused.keep_mask(987654321, 4_000_000, 0.1)
    assert abs(keep.mean() - 0.9) < 0.0008  # 5 standard deviations
    per_slot = keep.reshape(-1, 4).mean(0)  # each 64-bit word gives 4 values
    assert np.abs(per_slot - 0.9).max() < 0.0016
    assert keep.reshape(-1, 100).all(1).mean() < 0.001  # no runs of kept values: 0.9**100 ~ 3e-5
    other = fused.keep_mask(987654322, 4_000_000, 0.1)
    assert abs((keep == other).mean() - (0.9 * 0.9 + 0.1 * 0.1)) < 0.001  # neighbouring seeds: independent masks


def test_fused_op_is_the_same_for_any_thread_count():
    bn, drop = _layers(20, 0.1)
    x = torch.randn(128, 20, 24, 24).contiguous(memory_format=torch.channels_last)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            xi = x.clone().requires_grad_()
            y = fused.relu_batchnorm_dropout(xi, bn, drop, seed=5)
            (y * y).sum().backward()
            results.append((y.detach(), xi.grad, bn.weight.grad.clone()))
            bn.weight.grad = None
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_accelerate_swaps_classes_in_place_and_fuses_only_cpu_channels_last_float32_training(monkeypatch):
    calls = []
    real = fused.relu_batchnorm_dropout
    monkeypatch.setattr(fused, "relu_batchnorm_dropout", lambda *a, **k: calls.append(1) or real(*a, **k))
    stock = Net()
    model = accelerate(Net())
    model.load_state_dict(stock.state_dict())
    assert list(model.state_dict()) == list(stock.state_dict())  # the shipped weights' keys
    assert type(Net().block1) is nn.Sequential and type(Net().block1.conv1) is nn.Conv2d  # the model file: stock
    x = torch.randn(4, 1, 28, 28)

    def count(m, inp):
        calls.clear()
        m(inp)
        return len(calls)

    assert count(model.train(), x) == 0  # an NCHW model: the modules one by one
    cl = model.to(memory_format=torch.channels_last)
    assert count(cl.train(), x.contiguous(memory_format=torch.channels_last)) == 7  # all seven stages
    assert count(cl.eval(), x.contiguous(memory_format=torch.channels_last)) == 0
    assert count(accelerate(Net()).double().train(), x.double()) == 0
    cl.load_state_dict(stock.state_dict())  # training moved BatchNorm's running statistics
    stock = stock.to(memory_format=torch.channels_last)
    with torch.inference_mode():  # evaluation: the stock modules, bit for bit
        assert torch.equal(cl.eval()(x), stock.eval()(x))


def test_fused_training_is_reproducible_from_torch_manual_seed():
    def step(seed):
        torch.manual_seed(seed)
        model = accelerate(Net()).to(memory_format=torch.channels_last).train()
        x = torch.randn(16, 1, 28, 28).contiguous(memory_format=torch.channels_last)
        loss = F.nll_loss(model(x), torch.arange(16) % 10)
        loss.backward()
        return loss.item(), model.block1.conv1.weight.grad

    (l1, g1), (l2, g2), (l3, _) = step(3), step(3), step(4)
    assert l1 == l2 and torch.equal(g1, g2)
    assert l1 != l3


def test_a_batch_of_one_pixel_per_channel_gets_torchs_own_message():
    bn, drop = _layers(6, 0.1)
    assert not fused.supports(torch.randn(1, 6, 1, 1).contiguous(memory_format=torch.channels_last), bn, drop)
    block = accelerate(Net()).block4.train()  # conv7 on 3x3 gives one value per channel
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        block(torch.randn(1, 16, 3, 3).contiguous(memory_format=torch.channels_last))


def test_nan_and_inf_pass_through_as_in_torch_without_numpy_warnings():
    bn, drop = _layers(4, 0.0)
    x = torch.randn(8, 4, 3, 3)
    x[0, 1, 0, 0] = float("nan")
    x[1, 2, 0, 0] = float("inf")
    x = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = fused.relu_batchnorm_dropout(x, bn, drop, seed=1)
        y.sum().backward()
    ref = nn.BatchNorm2d(4).train()
    ref.load_state_dict(_layers(4, 0.0)[0].state_dict())
    expected = ref(F.relu(x.detach()))
    assert torch.equal(y.isnan(), expected.isnan())  # channels 1 and 2 are NaN throughout, as in torch
    assert y[:, 1].isnan().all() and y[:, 2].isnan().all() and not y[:, 0].isnan().any()
    assert bn.running_mean[1].isnan() and not bn.running_mean[0].isnan()


def test_the_op_declines_what_the_modules_would_compute_differently():
    x = torch.randn(4, 3, 5, 5).contiguous(memory_format=torch.channels_last)
    assert fused.supports(x, nn.BatchNorm2d(3), nn.Dropout(0.1))
    assert not fused.supports(x, nn.BatchNorm2d(3).eval(), nn.Dropout(0.1))  # running statistics
    assert not fused.supports(x, nn.BatchNorm2d(3), nn.Dropout(0.1).eval())  # no dropout
    assert not fused.supports(x, nn.BatchNorm2d(3, momentum=None), nn.Dropout(0.1))  # cumulative average
    assert not fused.supports(x, nn.BatchNorm2d(3, affine=False), nn.Dropout(0.1))
    assert not fused.supports(x, nn.BatchNorm2d(3, track_running_stats=False), nn.Dropout(0.1))
    assert not fused.supports(x, nn.BatchNorm2d(3).double(), nn.Dropout(0.1))  # torch would refuse the mix
    assert not fused.supports(x.double(), nn.BatchNorm2d(3).double(), nn.Dropout(0.1))
    assert not fused.supports(x.contiguous(), nn.BatchNorm2d(3), nn.Dropout(0.1))  # NCHW memory


def test_warm_up_compiles_without_touching_torchs_random_numbers():
    state = torch.get_rng_state()
    assert 0 <= fused.warm_up() < 120
    assert torch.equal(torch.get_rng_state(), state)  # a run's masks start where they would have anyway


@pytest.mark.parametrize("cin, cout, k, shape, input_grad, path", [
    (20, 10, 1, (128, 20, 24, 24), True, "_PointwiseConv"),  # block 1's 1x1 conv in a training step
    (5, 3, 1, (3, 5, 7, 9), False, "_PointwiseConv"),        # no input gradient wanted; odd sizes
    (1, 12, 3, (128, 1, 28, 28), False, "_SingleChannelConv"),  # conv1 on a batch of digits
    (1, 4, 2, (3, 1, 5, 7), False, "_SingleChannelConv"),    # a 2x2 kernel on a non-square image
])
def test_conv_fast_backward_matches_a_float64_reference(cin, cout, k, shape, input_grad, path):
    torch.manual_seed(0)
    ours = FastConv2d(cin, cout, k).to(memory_format=torch.channels_last)
    ref = nn.Conv2d(cin, cout, k).double()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    x32, x64 = x.clone().requires_grad_(input_grad), x.double().requires_grad_(input_grad)
    passed_back = []  # the input gradient as the layer hands it on (a leaf's .grad is re-laid out to match)
    inp = x32 * 1 if input_grad else x32
    if input_grad:
        inp.register_hook(passed_back.append)
    y32, y64 = ours(inp), ref(x64)
    assert type(y32.grad_fn).__name__.startswith(path)
    grad = torch.randn(y32.shape).contiguous(memory_format=torch.channels_last)
    y32.backward(grad)
    y64.backward(grad.double())
    # PyTorch's own float32 convolution, for the error a float32 sum of ~100k terms has anyway
    torch_conv = nn.Conv2d(cin, cout, k).to(memory_format=torch.channels_last)
    torch_conv.load_state_dict(ours.state_dict())
    torch_conv(x).backward(grad)

    def error(a, b):
        return ((a.double() - b).abs().max() / b.abs().max()).item()

    assert error(y32, y64) < 1e-6
    for got, want, torchs in [(ours.weight.grad, ref.weight.grad, torch_conv.weight.grad),
                              (ours.bias.grad, ref.bias.grad, torch_conv.bias.grad)]:
        assert error(got, want) < max(1e-6, error(torchs, want))  # as accurate as PyTorch's own
    if input_grad:
        assert error(x32.grad, x64.grad) < 1e-6
        assert passed_back[0].is_contiguous(memory_format=torch.channels_last)  # NCHW would slow what follows


def test_conv_leaves_other_cases_to_torch():
    x = torch.randn(2, 1, 8, 8)
    cl4 = torch.randn(2, 4, 8, 8).contiguous(memory_format=torch.channels_last)
    for conv, inp in [
        (FastConv2d(1, 4, 3, padding=1), x),         # padding
        (FastConv2d(4, 4, 3), cl4),                  # a 3x3 kernel over more than one channel
        (FastConv2d(4, 4, 1), torch.randn(2, 4, 8, 8)),  # a 1x1 kernel over NCHW memory
        (FastConv2d(4, 4, 1, stride=2), cl4),        # stride
        (FastConv2d(1, 4, 3), x.clone().requires_grad_()),  # one channel, but its input gradient is wanted
    ]:
        assert type(conv(inp).grad_fn).__name__ == "ConvolutionBackward0"
    conv = FastConv2d(1, 4, 3)
    with torch.inference_mode():  # evaluation and the app: PyTorch's convolution, bit for bit
        torch.testing.assert_close(conv(x), nn.functional.conv2d(x, conv.weight, conv.bias), rtol=0, atol=0)
