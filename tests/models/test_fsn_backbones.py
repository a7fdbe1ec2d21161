"""FSN / WFSN (FSN §3.3-3.4): receptive field, snippet-to-frame upsampling alignment, pooling;
2D backbones (FSN §3.2): pooled features, width, TSN cross-modality initialization."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidseg_cli.models import ModelInputError
from vidseg_cli.models.backbones2d import VGG16, ResNet2D, cross_modality_init
from vidseg_cli.models.fsn import FSN, WFSN, consecutive_snippet_centers, upsample_to_frames


def test_temporal_cnn_receptive_field_is_15_snippets():
    torch.manual_seed(0)
    m = FSN(in_features=6, num_classes=4, hidden=8).eval()
    assert m.tcnn.receptive_field == 15
    x = torch.randn(1, 40, 6)
    j = 20
    x2 = x.clone()
    x2[0, j] += 10.0
    with torch.no_grad():
        changed = (m.snippet_logits(x2) - m.snippet_logits(x)).abs().amax(dim=1)[0] > 0
    assert changed.nonzero().flatten().tolist() == list(range(j - 7, j + 8))
    assert [c.dilation[0] for c in m.tcnn.body if isinstance(c, torch.nn.Conv1d)] == [1, 2, 4]


def test_upsampling_puts_each_snippet_on_its_centre_frame():
    s = torch.tensor([[[0.0, 10.0, 20.0, 50.0]]])  # 1 x 1 x 4 snippets of 5 frames
    up = upsample_to_frames(s, consecutive_snippet_centers(4, 5), 20)[0, 0]
    assert up[[2, 7, 12, 17]].tolist() == [0, 10, 20, 50]  # centre frames i*5 + 2
    assert up[:3].tolist() == [0, 0, 0] and up[17:].tolist() == [50, 50, 50]  # nearest outside
    torch.testing.assert_close(up[3:8], torch.tensor([2.0, 4.0, 6.0, 8.0, 10.0]))  # linear between
    ref = F.interpolate(s, scale_factor=5, mode="linear", align_corners=False)[0, 0]
    torch.testing.assert_close(up, ref)
    # even snippets: centre (L-1)/2 = 1.5, still equal to align_corners=False
    torch.testing.assert_close(
        upsample_to_frames(s, consecutive_snippet_centers(4, 4), 16), F.interpolate(s, scale_factor=4, mode="linear")
    )


def test_upsampling_with_stored_centres_and_errors():
    s = torch.tensor([[[1.0, 3.0]]])
    up = upsample_to_frames(s, [2, 12], 15)[0, 0]  # centres as a features file stores them
    assert up[2] == 1 and up[12] == 3 and up[7] == 2 and up[14] == 3
    assert upsample_to_frames(s[..., :1], [4], 3)[0, 0].tolist() == [1, 1, 1]
    with pytest.raises(ModelInputError, match="centres must increase"):
        upsample_to_frames(s, [5, 5], 10)
    with pytest.raises(ModelInputError, match="one centre per snippet"):
        upsample_to_frames(s, [5], 10)


def test_fsn_frame_probabilities():
    torch.manual_seed(0)
    m = FSN(in_features=6, num_classes=4, hidden=8)  # K = 3 actions + background
    x = torch.randn(2, 7, 6)  # §3.5: T = 35 frames, N = 7 snippets
    y = m(x)
    assert y.shape == (2, 4, 35)
    torch.testing.assert_close(m.probs(x).sum(dim=1), torch.ones(2, 35))
    assert m(x, num_frames=33).shape == (2, 4, 33)
    F.cross_entropy(y, torch.randint(0, 4, (2, 35))).backward()  # Eq. 4
    assert m.tcnn.body[0].weight.grad.abs().sum() > 0
    with pytest.raises(ModelInputError, match="B x N x 6 features"):
        m(torch.randn(2, 7, 5))


def test_wfsn_pooling_and_dense_scores():
    torch.manual_seed(0)
    x = torch.randn(3, 100, 6)  # §3.5: M = 100 segments
    gmp = WFSN(in_features=6, num_classes=5, hidden=8)
    s = gmp.snippet_logits(x)
    assert s.shape == (3, 5, 100)
    torch.testing.assert_close(gmp(x), s.amax(dim=-1))
    gap = WFSN(in_features=6, num_classes=5, hidden=8, pooling="avg")
    gap.load_state_dict(gmp.state_dict())
    torch.testing.assert_close(gap(x), s.mean(dim=-1))
    dense = gmp.frame_scores(x[:, :10], snippet=5)  # §4.3: pooling removed
    assert dense.shape == (3, 5, 50)
    torch.testing.assert_close(dense.sum(dim=1), torch.ones(3, 50))
    with pytest.raises(ValueError, match="pooling must be one of"):
        WFSN(in_features=6, num_classes=5, pooling="sum")


def test_cross_modality_init():
    w = torch.randn(8, 3, 7, 7)
    out = cross_modality_init(w, 10)
    assert out.shape == (8, 10, 7, 7) and out.is_contiguous()
    for c in range(10):
        torch.testing.assert_close(out[:, c], w.mean(dim=1))


@pytest.mark.parametrize(
    "make, dim",
    [
        (lambda: ResNet2D(depth=18, width=1 / 8), 64),
        (lambda: ResNet2D(depth=18, width=1 / 8, in_channels=10), 64),
        (lambda: ResNet2D(depth=50, width=1 / 16), 128),
        (lambda: VGG16(width=1 / 16), 256),
        (lambda: VGG16(width=1 / 16, head="gap"), 32),
    ],
    ids=["resnet18", "resnet18-flow", "resnet50", "vgg16-fc7", "vgg16-gap"],
)
def test_backbones_return_pooled_features(make, dim):
    m = make().eval()
    x = torch.randn(2, m.in_channels, 64, 64)
    with torch.no_grad():
        f = m.forward_features(x)
    assert f.shape == (2, dim) == (2, m.feature_dim)
    with pytest.raises(RuntimeError, match="without a classifier"):
        m(x)


def test_backbone_classifier_and_bad_inputs():
    m = ResNet2D(depth=18, num_classes=4, width=1 / 8)
    x = torch.randn(2, 3, 64, 64)
    F.cross_entropy(m(x), torch.tensor([0, 3])).backward()
    assert m.conv1.weight.grad.abs().sum() > 0
    with pytest.raises(ModelInputError, match="resnet18 takes 3 input channels, got 10"):
        m(torch.randn(1, 10, 64, 64))
    with pytest.raises(ModelInputError, match="vgg16 needs images of at least 32x32"):
        VGG16(width=1 / 16).forward_features(torch.randn(1, 3, 16, 16))
    with pytest.raises(ValueError, match="no fc layers"):
        VGG16(head="gap", num_classes=3)
    assert VGG16(width=1 / 16, num_classes=3)(torch.randn(1, 3, 32, 32)).shape == (1, 3)
