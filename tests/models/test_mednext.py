"""lucid_mlx.models.MedNeXt against MONAI 1.6.1's MedNeXt (weights, outputs, gradients)."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as mnn
import pytest

from lucid_mlx.models.nets import mednext as lm

monai_mednext = pytest.importorskip("monai.networks.nets.mednext", reason="MONAI is the reference for MedNeXt")
torch = pytest.importorskip("torch", reason="MONAI's MedNeXt runs on PyTorch")

from monai_twin import check_twin  # noqa: E402


CONFIGS = [
    # (id, constructor kwargs, input shape, seed). The bottleneck volume keeps
    # several voxels: PyTorch's GroupNorm refuses a single value per group in
    # training mode, and over two values (one group per channel) its gradient
    # is so ill-conditioned that float32 rounding alone exceeds the
    # tolerance. Kernel 7 only on a small net: lucid_mlx's portable depthwise
    # path costs ~k^3 MLX ops per call on the CPU.
    ("k7-two-stages", dict(init_filters=4, blocks_down=(2, 1), blocks_bottleneck=1, blocks_up=(1, 2)),
     (1, 1, 8, 8, 8), 0),
    ("default-blocks-k3", dict(init_filters=2, kernel_size=3), (1, 1, 32, 32, 16), 1),
    ("residual-ds-grn-k3", dict(init_filters=4, in_channels=2, out_channels=3, kernel_size=3,
                                use_residual_connection=True, deep_supervision=True, global_resp_norm=True,
                                blocks_down=(1, 2, 1), blocks_bottleneck=1, blocks_up=(1, 1, 2),
                                encoder_expansion_ratio=(2, 3, 4), decoder_expansion_ratio=(3, 2, 1),
                                bottleneck_expansion_ratio=3), (2, 2, 16, 16, 8), 2),
    ("k5-no-bottleneck", dict(init_filters=6, out_channels=1, kernel_size=5, use_residual_connection=True,
                              blocks_down=(2, 0), blocks_bottleneck=0, blocks_up=(0, 1),
                              encoder_expansion_ratio=1, decoder_expansion_ratio=4), (1, 1, 12, 8, 8), 3),
]


class _TorchTraining(torch.nn.Module):
    """Keeps the wrapped MONAI model in training mode whatever ``.eval()`` says."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def train(self, mode: bool = True):
        super().train(mode)
        self.inner.train(True)
        return self

    def forward(self, x):
        return self.inner(x)


class _MlxTraining(mnn.Module):
    """The lucid_mlx counterpart of :class:`_TorchTraining`."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def train(self, mode: bool = True):
        super().train(mode)
        self.inner.train(True)
        return self

    def __call__(self, x):
        return self.inner(x)


@pytest.mark.parametrize("kwargs,shape,seed", [c[1:] for c in CONFIGS], ids=[c[0] for c in CONFIGS])
def test_mednext_matches_monai(kwargs, shape, seed):
    make_ref = lambda: monai_mednext.MedNeXt(**kwargs)  # noqa: E731
    make_ours = lambda: lm.MedNeXt(**kwargs)  # noqa: E731
    if kwargs.get("deep_supervision"):
        # MONAI returns the deep-supervision outputs in training mode only,
        # and the twin helper draws its cotangents from the eval outputs; a
        # net without BatchNorm or dropout computes the same in both modes, so
        # run both twins in training mode to compare (and differentiate) every
        # output. Eval mode's single output is checked below.
        make_ref = lambda: _TorchTraining(monai_mednext.MedNeXt(**kwargs))  # noqa: E731
        make_ours = lambda: _MlxTraining(lm.MedNeXt(**kwargs))  # noqa: E731
    torch.manual_seed(seed)
    ref = make_ref()
    mx.random.seed(seed)
    report = check_twin(ref, make_ours(), make_ref, shape, seed=seed, tol=2e-5)
    assert report["eval_out_abs"] < 1e-3


def test_deep_supervision_outputs_only_in_training():
    net = lm.MedNeXt(init_filters=2, kernel_size=3, deep_supervision=True, blocks_down=(1, 1),
                     blocks_bottleneck=1, blocks_up=(1, 1), out_channels=3)
    x = mx.random.normal((1, 1, 8, 8, 8))
    outs = net.train()(x)
    assert [tuple(o.shape) for o in outs] == [(1, 3, 8, 8, 8), (1, 3, 4, 4, 4), (1, 3, 2, 2, 2)]
    assert tuple(net.eval()(x).shape) == (1, 3, 8, 8, 8)


@pytest.mark.parametrize("variant", ["S", "B", "M", "L"])
def test_variants_have_monai_state_dict(variant):
    import lucid_mlx

    kwargs = dict(in_channels=2, out_channels=3, kernel_size=5, deep_supervision=True)
    ours = lucid_mlx.torch_state_dict(lm.create_mednext(variant, **kwargs))
    theirs = monai_mednext.create_mednext(variant, **kwargs).state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}


def test_aliases_are_monais():
    for name in monai_mednext.__all__:
        assert hasattr(lm, name), name
    assert lm.MedNeXtS is lm.MedNextSmall and lm.MedNext is lm.MedNeXt
    assert sum(v.size for v in lm.MedNeXtS(kernel_size=3).parameters()["stem"].values()) == 64


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(spatial_dims=2), ValueError, "`spatial_dims` must be 3"),
    (dict(norm_type="batch"), ValueError, "`norm_type` must be one of"),
    (dict(kernel_size=4), ValueError, "`kernel_size` must be odd"),
    (dict(blocks_up=(2, 2, 2)), ValueError, "`blocks_up` must have one entry per encoder stage"),
    (dict(encoder_expansion_ratio=(2, 2)), ValueError, "`encoder_expansion_ratio`"),
    (dict(decoder_expansion_ratio=2.0), TypeError, "`decoder_expansion_ratio`"),
    (dict(deep_supervision=1), TypeError, "`deep_supervision` must be a bool"),
    (dict(init_filters=0), ValueError, "`init_filters` must be >= 1"),
])
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        lm.MedNeXt(**kwargs)


def test_bad_variant_and_input_are_refused():
    with pytest.raises(ValueError, match="`variant` must be one of"):
        lm.create_mednext("XL")
    net = lm.MedNeXt(init_filters=2, kernel_size=3, blocks_down=(1, 1), blocks_bottleneck=0, blocks_up=(1, 1))
    with pytest.raises(ValueError, match="divisible by 2\\*\\*len\\(blocks_down\\) = 4"):
        net(mx.zeros((1, 1, 8, 8, 6)))
    with pytest.raises(ValueError, match="`input` must be"):
        net(mx.zeros((1, 8, 8, 8)))
