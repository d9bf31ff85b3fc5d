"""The small CNN for the 8x8 digits, as a chain of operators:

    conv2d (1 -> 8 channels, 3x3, padding 1) -> relu -> max_pool2d 2x2
    -> reshape (N, 8*4*4) -> linear (128 -> 10) -> cross_entropy

1,370 parameters; about 98 % test accuracy on digits after a few seconds of training
(README, "Train with any implementation").
"""

from __future__ import annotations

from harness.ops.chain import Network, Node

CHANNELS = 8
IMAGE = 8  # digits are 8x8, one channel
POOLED = IMAGE // 2
CLASSES = 10


def cnn(channels: int = CHANNELS, image: int = IMAGE, classes: int = CLASSES) -> Network:
    """The CNN for ``image`` x ``image`` one-channel images (``image`` even)."""
    if image % 2 or image < 2:
        raise ValueError(f"image size {image!r}: expected an even number >= 2 (max_pool2d 2x2 halves it)")
    features = channels * (image // 2) ** 2
    return Network(
        "cnn",
        (
            Node("conv2d", {"stride": 1, "padding": 1, "dilation": 1},
                 (("W", (channels, 1, 3, 3)), ("b", (channels,)))),
            Node("relu"),
            Node("max_pool2d", {"kernel": 2, "stride": 2, "padding": 0}),
            Node("reshape", {"shape": (-1, features)}),
            Node("linear", {}, (("W", (classes, features)), ("b", (classes,)))),
            Node("cross_entropy"),
        ),
        input_shape=(1, image, image),
        n_classes=classes,
    )


MODELS = {"cnn": cnn}


def model(name: str, **sizes) -> Network:
    """The built-in network called ``name`` (``--model``), for inputs of ``sizes``."""
    if name not in MODELS:
        raise ValueError(f"--model {name!r}: expected one of {', '.join(MODELS)}")
    return MODELS[name](**sizes)


def as_plain(network: Network) -> dict:
    """``network`` as JSON-able data (what a worker process is sent to rebuild it)."""
    return {"name": network.name, "input_shape": list(network.input_shape), "n_classes": network.n_classes,
            "nodes": [{"op": n.op, "params": dict(n.params), "weights": [[name, list(shape)] for name, shape in n.weights]}
                      for n in network.nodes]}


def from_plain(plain: dict) -> Network:
    """The ``Network`` that ``as_plain`` described (JSON's lists back to tuples)."""
    def tupled(value):
        return tuple(tupled(v) for v in value) if isinstance(value, list) else value

    return Network(plain["name"],
                   tuple(Node(n["op"], {k: tupled(v) for k, v in n["params"].items()},
                              tuple((name, tupled(shape)) for name, shape in n["weights"])) for n in plain["nodes"]),
                   input_shape=tupled(plain["input_shape"]), n_classes=plain["n_classes"])
