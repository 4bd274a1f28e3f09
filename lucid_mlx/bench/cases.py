"""The fixed set of benchmark layers, and the lookup of every case by name.

Each case is one Conv3d layer as it appears in 3-D medical and video
networks.  ``padding_mode`` other than 'zeros' pads first and convolves
with zero padding, as ``torch.nn.Conv3d`` does.  Whole networks are the
other family of cases (:mod:`lucid_mlx.bench.model_cases`); ``layers`` and
``models`` name the families.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar, Union

from .model_cases import EXTRA_MODEL_CASES, MODEL_CASES, ModelCase, available


@dataclass(frozen=True)
class Case:
    name: str
    input: tuple[int, int, int, int, int]  # N, C_in, D, H, W
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    padding_mode: str = "zeros"
    note: str = ""

    kind: ClassVar[str] = "layer"
    dtypes: ClassVar[tuple[str, ...]] = ("float32", "float16")  # what runs unless --dtypes says

    @property
    def weight(self) -> tuple[int, int, int, int, int]:
        k = self.kernel
        return (self.out_channels, self.input[1] // self.groups, k, k, k)

    @property
    def plain_mlx(self) -> bool:
        """Whether a hand-written ``mx.conv3d`` call can run this layer."""
        return self.groups == 1 and self.padding_mode == "zeros"

    def describe(self) -> str:
        n, c, d, h, w = self.input
        parts = [f"{n}x{c}x{d}x{h}x{w}->{self.out_channels} k{self.kernel}"]
        for label, value, default in (("s", self.stride, 1), ("p", self.padding, 0),
                                      ("d", self.dilation, 1), ("g", self.groups, 1)):
            if value != default:
                parts.append(f"{label}{value}")
        if self.padding_mode != "zeros":
            parts.append(self.padding_mode)
        return " ".join(parts)

    def conv_call(self) -> tuple[tuple[int, ...], tuple, tuple, tuple, int]:
        """(input shape, stride, pads, dilation, groups) of the conv3d lucid_mlx runs.

        A padding mode other than 'zeros' pads first, so the convolution sees
        the padded input and no padding of its own.
        """
        s, p, d = (self.stride,) * 3, self.padding, (self.dilation,) * 3
        if self.padding_mode == "zeros":
            return self.input, s, ((p, p),) * 3, d, self.groups
        n, c, *size = self.input
        return (n, c, *(v + 2 * p for v in size)), s, ((0, 0),) * 3, d, self.groups

    def as_dict(self) -> dict:
        return {**asdict(self), "weight": self.weight, "layer": self.describe()}


CASES: dict[str, Case] = {
    case.name: case
    for case in (
        Case("dense", (1, 32, 32, 32, 32), 32, 3, padding=1, note="plain k=3"),
        Case("dense_valid", (1, 32, 32, 32, 32), 32, 3, note="zero padding 0"),
        Case("strided", (1, 32, 32, 32, 32), 64, 3, stride=2, padding=1, note="k=3 s=2 down-sampling"),
        Case("dilated", (1, 16, 24, 24, 24), 16, 3, padding=2, dilation=2, note="k=3 d=2"),
        Case("depthwise7", (1, 32, 32, 32, 32), 32, 7, padding=3, groups=32,
             note="7^3 depthwise, MedNeXt / ConvNeXt-3D"),
        Case("depthwise", (2, 64, 32, 32, 32), 64, 3, padding=1, groups=64, note="goal case"),
        Case("grouped4", (2, 64, 32, 32, 32), 64, 3, padding=1, groups=4, note="goal case"),
        Case("reflect", (1, 16, 32, 32, 32), 16, 3, padding=1, padding_mode="reflect"),
        Case("replicate", (1, 16, 32, 32, 32), 16, 3, padding=1, padding_mode="replicate"),
        Case("circular", (1, 16, 32, 32, 32), 16, 3, padding=1, padding_mode="circular"),
        Case("medical64", (1, 32, 64, 64, 64), 32, 3, padding=1, note="goal case: 64^3 layer"),
    )
}

# Too slow for the default run on a CPU (about 8x medical64); run it by name.
EXTRA_CASES: dict[str, Case] = {
    "medical128": Case("medical128", (1, 32, 128, 128, 128), 32, 3, padding=1,
                       note="goal case: completes on 24 GB"),
    "tiny": Case("tiny", (1, 2, 6, 6, 6), 4, 3, padding=1, groups=2, note="smoke test"),
}


FAMILIES = ("layers", "models")


def lookup(names: list[str] | None) -> list[Union[Case, ModelCase]]:
    """The cases called ``names`` (default: every layer in :data:`CASES`).

    ``layers`` stands for every case of :data:`CASES`, ``models`` for every
    network of :data:`MODEL_CASES` that ``lucid_mlx.models`` has.
    """
    if not names:
        return list(CASES.values())
    known = {**CASES, **EXTRA_CASES, **MODEL_CASES, **EXTRA_MODEL_CASES}
    unknown = [name for name in names if name not in known and name not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown case(s) {unknown}; known cases: {sorted(known)}, "
                         f"or a family: {', '.join(FAMILIES)}")
    picked: list[Union[Case, ModelCase]] = []
    for name in names:
        if name == "layers":
            group = list(CASES.values())
        elif name == "models":
            group = [case for case in MODEL_CASES.values() if available(case)]
        else:
            group = [known[name]]
        picked += [case for case in group if case not in picked]
    return picked
