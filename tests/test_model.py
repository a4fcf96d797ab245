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
