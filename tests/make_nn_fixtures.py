"""Record small PyTorch networks (weights, an input, outputs, gradients) for deconv.nn's tests.

Run from the repository root with a Python that has torch installed:

    python tests/make_nn_fixtures.py

Writes ``tests/data/nn_state_dicts.npz``. For every network ``NAME`` the
archive holds

* ``NAME/keys``: the keys of ``state_dict()``, in order (a str array);
* ``NAME/state/<key>``: each state_dict entry as a NumPy array;
* ``NAME/input`` (and ``NAME/target`` for the loss);
* ``NAME/output``: the network's output on ``NAME/input``;
* ``NAME/loss``: the loss value, ``NAME/grad_input``: its gradient with
  respect to the input (float inputs only), ``NAME/grad/<key>``: the
  gradient of each parameter (autograd).

``f32`` is a float32 network: its ``output`` is torch's float32 result and
``output64`` the float64 result of the same (float32-exact) weights and
input, the reference the tests compare a float32 deconv twin with.

This script depends only on torch and numpy (never on deconv). torch is
imported inside :func:`main`, so that pytest's doctest collection can
import this file without it.
"""

import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PATH = os.path.join(HERE, "data", "nn_state_dicts.npz")


def build(nn):
    """The networks, by name: (module, input, target or None, loss or None)."""
    import torch

    def seq():
        """Every 2-D layer kind in one chain: (2, 2, 8, 8) -> (2, 1, 16, 16)."""
        return nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1),
            nn.LeakyReLU(0.1), nn.AvgPool2d(2),
            nn.Upsample(scale_factor=2, mode="bilinear"),
            nn.Conv2d(3, 4, 1), nn.PixelShuffle(2), nn.Tanh(),
        )

    class Nested(nn.Module):
        """Attribute-named children: keys ``encoder.1.bias``, ``decoder.0.weight``, ``head.bias``."""

        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1),
                                         nn.Conv2d(3, 3, 3, stride=2, padding=1), nn.ReLU())
            self.decoder = nn.Sequential(nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1),
                                         nn.Sigmoid())
            self.head = nn.Conv2d(2, 3, 1)

        def forward(self, x):
            return self.head(self.decoder(self.encoder(x)))

    def one_d():
        """The 1-D layers: (2, 3, 10) -> (2, 2, 18)."""
        return nn.Sequential(
            nn.Conv1d(3, 4, 3, padding=1), nn.ReLU(),
            nn.ConvTranspose1d(4, 2, 4, stride=2, padding=1), nn.MaxPool1d(2),
            nn.AvgPool1d(2, stride=1), nn.Upsample(scale_factor=2),
        )

    def text():
        """Embedding (a padding row), Flatten, Linear: tokens (3, 5) -> logits (3, 3)."""
        return nn.Sequential(nn.Embedding(10, 4, padding_idx=0), nn.Flatten(),
                             nn.Linear(20, 6), nn.Tanh(), nn.Linear(6, 3))

    gen = torch.Generator().manual_seed(1)
    randn = lambda *shape: torch.randn(*shape, generator=gen, dtype=torch.float64)  # noqa: E731
    nets = {}
    torch.manual_seed(0)
    nets["seq"] = (seq().double(), randn(2, 2, 8, 8), randn(2, 1, 16, 16), nn.MSELoss())
    nets["nested"] = (Nested().double(), randn(2, 1, 8, 8),
                      torch.randint(0, 3, (2, 8, 8), generator=gen), nn.CrossEntropyLoss())
    nets["conv1d"] = (one_d().double(), randn(2, 3, 10), randn(2, 2, 18), nn.L1Loss())
    nets["text"] = (text().double(), torch.randint(0, 10, (3, 5), generator=gen),
                    torch.tensor([0, 2, 1]), nn.CrossEntropyLoss())
    nets["f32"] = (seq(), randn(2, 2, 8, 8).float(), None, None)
    return nets


def record(name, module, x, target, loss, arrays):
    """Run ``module`` (and ``loss``) on ``x`` and add what the tests need to ``arrays``."""
    import torch

    state = module.state_dict()
    arrays[f"{name}/keys"] = np.array(list(state), dtype=str)
    for key, value in state.items():
        arrays[f"{name}/state/{key}"] = value.detach().numpy().copy()
    floating = x.is_floating_point()
    x = x.clone().requires_grad_(floating)
    arrays[f"{name}/input"] = x.detach().numpy().copy()
    y = module(x)
    arrays[f"{name}/output"] = y.detach().numpy().copy()
    if y.dtype == torch.float32:
        with torch.no_grad():
            arrays[f"{name}/output64"] = module.double()(x.double()).numpy().copy()
        module.float()
    if loss is not None:
        value = loss(y, target)
        value.backward()
        arrays[f"{name}/target"] = target.numpy().copy()
        arrays[f"{name}/loss"] = np.array(value.item())
        if floating:
            arrays[f"{name}/grad_input"] = x.grad.numpy().copy()
        for key, p in module.named_parameters():
            arrays[f"{name}/grad/{key}"] = p.grad.numpy().copy()


def main():
    """Build, run and save every network."""
    import torch
    from torch import nn

    torch.use_deterministic_algorithms(True)
    arrays = {}
    for name, (module, x, target, loss) in build(nn).items():
        record(name, module, x, target, loss, arrays)
    os.makedirs(os.path.dirname(OUT_PATH), exist_ok=True)
    np.savez_compressed(OUT_PATH, **arrays)
    print(f"wrote {len(arrays)} arrays to {OUT_PATH} (torch {torch.__version__})")


if __name__ == "__main__":
    main()
