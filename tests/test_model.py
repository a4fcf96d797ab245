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
