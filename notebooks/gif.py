"""Write a matplotlib animation as a GIF that the repository host shows without a kernel.

The notebooks draw each frame with a function of the frame number, save the
frames with Pillow, and link the file from a markdown cell
(``![...](figures/name.gif)``), so the motion survives in the rendered
``.ipynb`` where JavaScript players do not. Frames are drawn by Agg at a fixed
size and resolution, and the file carries no timestamp, so re-running a
notebook rewrites the same bytes.
"""

import pathlib

import matplotlib.pyplot as plt
from matplotlib.animation import FuncAnimation, PillowWriter

FIGURES = pathlib.Path(__file__).resolve().parent / "figures"
LIMIT = 1_000_000  # bytes: a GIF above this is too heavy for a page of the notebook


def save_gif(fig, draw, n_frames, name, fps=1.0, dpi=72):
    """Save ``draw(0), ..., draw(n_frames - 1)`` on ``fig`` as ``figures/name``; return its size in bytes.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure ``draw`` paints on; closed afterwards, so it is not shown
        a second time as a still image.
    draw : callable
        ``draw(frame)`` redraws the figure for frame number ``frame``.
    n_frames : int
    name : str
        File name under ``notebooks/figures``, ending in ``.gif``.
    fps : float
        Frames per second.
    dpi : int
        Resolution; with the notebooks' small figures, 72 keeps a GIF well
        under a megabyte.

    Raises
    ------
    ValueError
        When the file would exceed ``LIMIT`` bytes (it is written anyway, to be looked at).
    """
    FIGURES.mkdir(exist_ok=True)
    path = FIGURES / name
    animation = FuncAnimation(fig, draw, frames=n_frames, repeat=False)
    animation.save(path, writer=PillowWriter(fps=fps), dpi=dpi)
    plt.close(fig)
    size = path.stat().st_size
    if size > LIMIT:
        raise ValueError(f"{name} is {size} bytes; expected at most {LIMIT}")
    return size
