"""The example's network: MONAI's ``UNet`` from ``lucid_mlx.models``, its saved arguments, and applying it.

The weights are saved under MONAI's parameter names
(``lucid_mlx.save_torch_state_dict``) and a JSON file beside them holds
everything a script needs to rebuild and apply the network: the MONAI class
and its constructor arguments, the class names, the voxel size the network
was trained at and the sliding-window size.  With MONAI installed::

    spec = json.load(open("best.json"))
    net = monai.networks.nets.UNet(**spec["args"])
    net.load_state_dict(safetensors.torch.load_file("best.safetensors"))  # strict

``predict.py`` does the same on MLX (``load_network``).
"""

from __future__ import annotations

import json
import math
import os

import mlx.core as mx
import numpy as np

import lucid_mlx
import lucid_mlx.inferers
from lucid_mlx.models import UNet

NORMS = ("batch", "instance", "group")
SPEC_VERSION = 1


def network_args(channels: tuple[int, ...], strides: tuple[int, ...], norm: str, res_units: int,
                 n_classes: int) -> dict:
    """MONAI ``UNet``'s constructor arguments (plain JSON types) for the example's options."""
    if norm == "group":
        # MONAI's UNet takes one norm for every level, so the group count
        # must divide every level's channels: the most groups that leaves
        # at least 4 channels per group wherever the channels are fewest.
        g = math.gcd(*channels)
        groups = max([d for d in range(1, g + 1) if g % d == 0 and g // d >= 4], default=1)
        norm_arg = ["group", {"num_groups": groups}]
    elif norm == "instance":
        norm_arg = ["instance", {"affine": True}]
    else:
        # Running statistics over about the last 100 steps, not PyTorch's
        # default 10 (momentum 0.1): with 2 patches a step, the eval-mode
        # network then depends much less on the last few corrupted volumes.
        norm_arg = ["batch", {"momentum": 0.01}]
    # No convolution biases: every convolution but the last feeds a norm that
    # subtracts its mean, so a bias there gets only rounding noise as
    # gradient, which Adam scales up to full-size steps (measured: such biases
    # drifted by 1e-2 in 4 steps, differently on 1 and 2 ranks, and moved
    # the BatchNorm running means with them).
    return {"spatial_dims": 3, "in_channels": 1, "out_channels": n_classes, "channels": list(channels),
            "strides": list(strides), "num_res_units": res_units, "norm": norm_arg, "bias": False}


def build_network(args: dict) -> UNet:
    """``lucid_mlx.models.UNet(**args)``; JSON lists are turned back into MONAI's tuples."""
    kwargs = dict(args)
    if isinstance(kwargs.get("norm"), list):
        kwargs["norm"] = tuple(kwargs["norm"])
    return UNet(**kwargs)


def write_spec(path: str, args: dict, classes, spacing, roi: int, tta: str, orientation: str) -> dict:
    """The JSON beside the weights; returns what it wrote.

    ``spacing`` and ``orientation`` (axis codes such as ``"RAS"``) describe
    the training volume's voxel axes, in which the network learnt anatomy:
    ``predict.py`` brings a new image to the same ones.
    """
    spec = {
        "version": SPEC_VERSION,
        "network": "UNet",
        "monai_class": "monai.networks.nets.UNet",
        "args": args,
        "classes": list(classes),
        "spacing_mm": [float(s) for s in spacing],
        "orientation": orientation,
        "roi_size": [roi] * 3,
        "tta": tta,
        "input": "one T1 channel, each volume scaled so its 1st/99th percentiles are 0/1 (augment.normalise)",
    }
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(spec, f, indent=1)
    os.replace(tmp, path)
    return spec


def spec_path(weights: str) -> str:
    """The JSON that goes with a weights file: ``best.safetensors`` -> ``best.json``."""
    root, ext = os.path.splitext(weights)
    return (root if ext else weights) + ".json"


class SpecError(ValueError):
    """A weights/arguments pair the example cannot use; a one-line message."""


def read_spec(path: str) -> dict:
    """The JSON ``write_spec`` wrote, checked; raises SpecError."""
    if not os.path.isfile(path):
        raise SpecError(f"no network arguments at {path!r} (the JSON that training writes beside the weights)")
    try:
        with open(path) as f:
            spec = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SpecError(f"cannot read {path!r} as JSON ({' '.join(str(e).split())})") from None
    keys = ("network", "args", "classes", "spacing_mm", "roi_size")
    if not isinstance(spec, dict) or any(k not in spec for k in keys):
        raise SpecError(f"{path!r} is not a network-arguments file: it needs the keys {', '.join(keys)}")
    if spec["network"] != "UNet":
        raise SpecError(f"{path!r}: network {spec['network']!r} is not one this example builds (UNet)")
    spec.setdefault("orientation", "RAS")  # files written before it was saved: the template's
    checks = (("spacing_mm", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0,
               "3 voxel sizes > 0"),
              ("roi_size", lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0, "3 ints > 0"))
    for key, ok, expected in checks:
        value = spec[key]
        if not (isinstance(value, list) and len(value) == 3 and all(ok(v) for v in value)):
            raise SpecError(f"{path!r}: {key} must be {expected}, got {value!r}")
    codes = spec["orientation"]
    if not (isinstance(codes, str) and len(codes) == 3 and sorted(codes.translate(str.maketrans("LPI", "RAS")))
            == ["A", "R", "S"]):
        raise SpecError(f"{path!r}: orientation must be 3 axis codes such as 'RAS', got {codes!r}")
    return spec


def load_network(weights: str, spec: dict) -> UNet:
    """The network of ``spec`` with the weights loaded strictly, in eval mode; raises SpecError."""
    try:
        model = build_network(spec["args"])
    except (TypeError, ValueError) as e:
        raise SpecError(f"cannot build UNet from the saved arguments ({' '.join(str(e).split())})") from None
    try:
        lucid_mlx.load_torch_state_dict(model, weights, strict=True)
    except (ValueError, OSError, RuntimeError, TypeError, ImportError) as e:
        # TypeError: a file that holds no state_dict; ImportError: a .pt file without PyTorch.
        reason = " ".join(str(e).split())
        raise SpecError(f"the weights do not fit the saved arguments ({reason[:300]})") from None
    model.eval()
    return model


TTA = ("flip", "none")


def segment_probabilities(model, image: np.ndarray, roi: int, overlap: float, sw_batch: int,
                          tta: str = "flip", progress: bool = False) -> mx.array:
    """Class probabilities (K, X, Y, Z) of a normalised (X, Y, Z) volume by sliding windows.

    Windows of ``roi``^3 overlap by ``overlap`` and are blended with
    Gaussian weights, so a voxel's prediction comes mostly from windows
    centred near it.  A volume smaller than the window is padded with
    zeros, the normalised background's intensity, and cropped back.  With
    ``tta="flip"`` the probabilities are averaged with those of the volume
    mirrored along its first axis (mirrored back), the flip training
    patches get half the time.
    """
    x = mx.array(image[None, None].astype(np.float32))

    def probabilities(volume: mx.array) -> mx.array:
        logits = lucid_mlx.inferers.sliding_window_inference(
            volume, roi, sw_batch, model, overlap=overlap, mode="gaussian", progress=progress)
        return mx.softmax(logits[0], axis=0)

    probs = probabilities(x)
    if tta == "flip":
        probs = (probs + probabilities(x[:, :, ::-1])[:, ::-1]) / 2
    return probs


def segment(model, image: np.ndarray, roi: int, overlap: float, sw_batch: int, tta: str = "flip") -> np.ndarray:
    """Class indices (uint8, shape of ``image``) of a normalised volume."""
    probs = segment_probabilities(model, image, roi, overlap, sw_batch, tta)
    return np.array(mx.argmax(probs, axis=0)).astype(np.uint8)
