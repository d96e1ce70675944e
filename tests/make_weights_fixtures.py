"""Record weight files written by PyTorch, for deconv.nn.serialization's tests.

Run from the repository root with a Python that has torch and safetensors:

    python tests/make_weights_fixtures.py

Writes, for a small float32 generator-style network (ConvTranspose2d ->
BatchNorm2d -> ReLU -> Conv2d, trained one step so that the running
statistics are not their initial values, then put in eval mode):

* ``tests/data/torch_weights.safetensors``: ``safetensors.torch.save_file(model.state_dict())``;
* ``tests/data/torch_weights.npz``: the same arrays with ``np.savez``;
* ``tests/data/torch_weights_io.npz``: an input ``x`` and the eval-mode output ``y``;
* ``tests/data/torch_weights_listing.json``: ``[key, shape, dtype]`` of every
  ``state_dict()`` entry in order (what ``load_state_dict(strict=True)`` checks).

This script depends only on torch, safetensors and numpy (never on deconv).
"""

import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")


def main():
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(
        nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Conv2d(3, 2, 3, padding=1),
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    for _ in range(2):
        loss = model(torch.randn(5, 4, 3, 3)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    x = torch.randn(2, 4, 3, 3)
    with torch.no_grad():
        y = model(x)
    state = model.state_dict()
    save_file(state, os.path.join(DATA, "torch_weights.safetensors"))
    np.savez(os.path.join(DATA, "torch_weights.npz"),
             **{k: v.detach().numpy() for k, v in state.items()})
    np.savez(os.path.join(DATA, "torch_weights_io.npz"), x=x.numpy(), y=y.numpy())
    listing = [[k, list(v.shape), str(v.numpy().dtype)] for k, v in state.items()]
    with open(os.path.join(DATA, "torch_weights_listing.json"), "w") as f:
        json.dump(listing, f, indent=1)
    print(json.dumps(listing))


if __name__ == "__main__":
    main()
