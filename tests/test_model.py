import pytest
import torch
from torch import nn

from mnist_net.model import Net, count_parameters, summary_rows, summary_text

# The assignment's model summary (shared/seed/assignment.md), row for row.
ASSIGNMENT_TABLE = [
    ("Conv2d", (12, 26, 26), 120), ("BatchNorm2d", (12, 26, 26), 24), ("Dropout", (12, 26, 26), 0),
    ("Conv2d", (20, 24, 24), 2180), ("BatchNorm2d", (20, 24, 24), 40), ("Dropout", (20, 24, 24), 0),
    ("Conv2d", (10, 24, 24), 210), ("MaxPool2d", (10, 12, 12), 0),
    ("Conv2d", (16, 10, 10), 1456), ("BatchNorm2d", (16, 10, 10), 32), ("Dropout", (16, 10, 10), 0),
    ("Conv2d", (16, 8, 8), 2320), ("BatchNorm2d", (16, 8, 8), 32), ("Dropout", (16, 8, 8), 0),
    ("Conv2d", (16, 6, 6), 2320), ("BatchNorm2d", (16, 6, 6), 32), ("Dropout", (16, 6, 6), 0),
    ("Conv2d", (16, 4, 4), 2320), ("BatchNorm2d", (16, 4, 4), 32), ("Dropout", (16, 4, 4), 0),
    ("Conv2d", (16, 2, 2), 2320), ("BatchNorm2d", (16, 2, 2), 32), ("Dropout", (16, 2, 2), 0),
    ("Conv2d", (10, 1, 1), 650),
]


def test_summary_is_the_assignments_table():
    model = Net()
    assert summary_rows(model) == ASSIGNMENT_TABLE
    assert count_parameters(model) == 14_120
    text = summary_text(model)
    assert "Conv2d-24" in text and "[-1, 10, 1, 1]" in text and "Total params: 14,120" in text


def test_no_fully_connected_layer():
    assert not any(isinstance(m, nn.Linear) for m in Net().modules())


def test_block_outputs_have_the_tables_shapes():
    model = Net().eval()
    outs = model.forward_blocks(torch.randn(3, 1, 28, 28))
    assert list(outs) == ["block1", "block2", "block3", "block4"]
    assert [tuple(o.shape) for o in outs.values()] == [(3, 10, 12, 12), (3, 16, 8, 8), (3, 16, 4, 4), (3, 10, 1, 1)]
    # block1 ends with the 1x1 conv and the max-pool, as in the assignment.
    names = [n for n, _ in model.block1.named_children()]
    assert names[-2:] == ["one1", "pool1"] and model.block1.one1.kernel_size == (1, 1)
    assert model.block4.conv8.kernel_size == (2, 2)
    # forward_blocks and forward agree: the blocks are the forward pass.
    x = torch.randn(3, 1, 28, 28)
    logp = model(x)
    assert logp.shape == (3, 10)
    torch.testing.assert_close(logp, torch.log_softmax(model.forward_blocks(x)["block4"].flatten(1), dim=1))
    torch.testing.assert_close(logp.exp().sum(1), torch.ones(3))


def test_forward_features_feeds_the_head():
    model = Net().eval()
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(model(x), torch.log_softmax(model.forward_features(x).flatten(1), 1))


def test_dropout_rate_is_a_constructor_argument():
    model = Net(dropout=0.25)
    rates = {m.p for m in model.modules() if isinstance(m, nn.Dropout)}
    assert rates == {0.25}
    with pytest.raises(ValueError):
        Net(dropout=1.5)


def test_cheap_dropout_mask_has_the_right_rate_and_scale():
    from mnist_net.model import Dropout

    d = Dropout(0.1).train()
    y = d(torch.ones(400, 1000))
    assert abs((y == 0).float().mean().item() - 0.1) < 0.003
    assert abs(y.mean().item() - 1.0) < 0.005
    # Every position of the 16-bit draw is used fairly (a 63-bit word would bias one of them).
    per_slot = (y.view(-1, 4) == 0).float().mean(0)
    assert (per_slot - 0.1).abs().max() < 0.004
    assert torch.equal(d.eval()(torch.ones(5)), torch.ones(5))


def test_cheap_dropout_drops_the_same_elements_in_either_memory_layout():
    # The shipped weights were trained with the mask drawn in NCHW element order; a channels_last
    # input must get the very same mask (so training stays reproducible), laid out like the input.
    from mnist_net.model import Dropout

    d = Dropout(0.1).train()
    x = torch.randn(8, 20, 6, 6)
    torch.manual_seed(3)
    plain = d(x)
    torch.manual_seed(3)
    cl = d(x.contiguous(memory_format=torch.channels_last))
    assert cl.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(cl, plain)
    assert 0 < (plain == 0).sum() < plain.numel()


def _batchnorm_pair(channels: int):
    """Our BatchNorm2d and a float64 torch BatchNorm2d with the same (non-trivial) affine parameters."""
    from mnist_net.model import BatchNorm2d

    torch.manual_seed(0)
    ref = nn.BatchNorm2d(channels).double()
    with torch.no_grad():
        ref.weight.uniform_(0.5, 1.5)
        ref.bias.uniform_(-0.5, 0.5)
    ours = BatchNorm2d(channels)
    ours.load_state_dict(ref.state_dict())
    ours.fast_min_numel = 0  # the math on every shape; which sizes take it by default is tested below
    return ours, ref


@pytest.mark.parametrize("shape, offset", [
    ((128, 20, 24, 24), 0.0),  # conv2's output in a training step
    ((96, 16, 2, 2), 0.0),     # block 4 in the epoch's last, partial batch
    ((3, 5, 7, 7), 0.0),       # 147 pixels per channel: no folding of rows
    ((64, 8, 5, 5), 100.0),    # mean 100x the spread: the centred sums take over
])
def test_batchnorm_training_pass_matches_a_float64_reference(shape, offset):
    ours, ref = _batchnorm_pair(shape[1])
    x = ((torch.randn(shape) * 2 + 1).relu() + offset).contiguous(memory_format=torch.channels_last)
    grad = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    x32, x64 = x.clone().requires_grad_(), x.double().requires_grad_()
    y32, y64 = ours(x32), ref(x64)
    assert type(y32.grad_fn).__name__.startswith("_ChannelsLastBatchNorm")  # the fast path ran
    assert y32.is_contiguous(memory_format=torch.channels_last)
    y32.backward(grad)
    y64.backward(grad.double())

    def close(a, b, tol=2e-6):
        assert ((a.double() - b).abs().max() / b.abs().max()).item() < tol

    close(y32, y64)
    close(x32.grad, x64.grad)
    close(ours.weight.grad, ref.weight.grad, 1e-5)
    close(ours.bias.grad, ref.bias.grad)
    close(ours.running_mean, ref.running_mean)
    close(ours.running_var, ref.running_var)
    assert ours.num_batches_tracked.item() == ref.num_batches_tracked.item() == 1


def test_batchnorm_takes_the_fast_path_only_for_large_maps():
    from mnist_net.model import BatchNorm2d

    def path(shape):
        bn = BatchNorm2d(shape[1]).train()
        return type(bn(torch.rand(shape).contiguous(memory_format=torch.channels_last)).grad_fn).__name__

    assert path((128, 12, 26, 26)).startswith("_ChannelsLastBatchNorm")  # conv1's output, 1.0M values
    assert path((128, 20, 24, 24)).startswith("_ChannelsLastBatchNorm")  # conv2's, 1.5M
    assert path((128, 16, 10, 10)).startswith("NativeBatchNorm")  # block 2's first, 205k: torch's is faster


def test_batchnorm_leaves_evaluation_nchw_and_tiny_batches_to_torch():
    ours, _ = _batchnorm_pair(6)
    ref = nn.BatchNorm2d(6)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(4, 6, 5, 5)
    for train in (True, False):
        ours.train(train)
        ref.train(train)
        for inp in (x, x.contiguous(memory_format=torch.channels_last)):
            if train and not inp.is_contiguous():  # channels_last training: the fast path, checked above
                continue
            torch.testing.assert_close(ours(inp), ref(inp), rtol=0, atol=0)
    ours.eval()
    torch.testing.assert_close(ours(x.contiguous(memory_format=torch.channels_last)), ref.eval()(x), rtol=0, atol=0)
    ours.train()
    with pytest.raises(ValueError, match="more than 1 value per channel"):  # torch's own message
        ours(torch.randn(1, 6, 1, 1).contiguous(memory_format=torch.channels_last))


@pytest.mark.parametrize("cin, cout, k, shape, input_grad, path", [
    (20, 10, 1, (128, 20, 24, 24), True, "_PointwiseConv"),  # block 1's 1x1 conv in a training step
    (5, 3, 1, (3, 5, 7, 9), False, "_PointwiseConv"),        # no input gradient wanted; odd sizes
    (1, 12, 3, (128, 1, 28, 28), False, "_SingleChannelConv"),  # conv1 on a batch of digits
    (1, 4, 2, (3, 1, 5, 7), False, "_SingleChannelConv"),    # a 2x2 kernel on a non-square image
])
def test_conv_fast_backward_matches_a_float64_reference(cin, cout, k, shape, input_grad, path):
    from mnist_net.model import Conv2d

    torch.manual_seed(0)
    ours = Conv2d(cin, cout, k).to(memory_format=torch.channels_last)
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
    from mnist_net.model import Conv2d

    x = torch.randn(2, 1, 8, 8)
    cl4 = torch.randn(2, 4, 8, 8).contiguous(memory_format=torch.channels_last)
    for conv, inp in [
        (Conv2d(1, 4, 3, padding=1), x),         # padding
        (Conv2d(4, 4, 3), cl4),                  # a 3x3 kernel over more than one channel
        (Conv2d(4, 4, 1), torch.randn(2, 4, 8, 8)),  # a 1x1 kernel over NCHW memory
        (Conv2d(4, 4, 1, stride=2), cl4),        # stride
        (Conv2d(1, 4, 3), x.clone().requires_grad_()),  # one channel, but its input gradient is wanted
    ]:
        assert type(conv(inp).grad_fn).__name__ == "ConvolutionBackward0"
    conv = Conv2d(1, 4, 3)
    with torch.inference_mode():  # evaluation and the app: PyTorch's convolution, bit for bit
        torch.testing.assert_close(conv(x), nn.functional.conv2d(x, conv.weight, conv.bias), rtol=0, atol=0)
