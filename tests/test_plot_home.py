"""One home for figures (js.plot) and one atomic writer (jaxsurf._io.atomic)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

import jaxsurf as js
from jaxsurf import _hessian as hessian, _pca as pca, _subsample as subsample
from jaxsurf import _surface as surface, _train as train
from jaxsurf._io import atomic as _atomic

ROOT = Path(__file__).resolve().parents[1]


def _convexity_surface() -> js.Surface:
    a, b = np.linspace(-1, 1, 7), np.linspace(-0.5, 0.5, 5)
    A, B = np.meshgrid(a, b, indexing="ij")
    lam_max = 2 + A**2
    lam_min = B - 0.2
    return js.Surface(a, b, {"lambda_max": lam_max, "lambda_min": lam_min,
                             "ratio": np.abs(lam_min / lam_max)}, {"num_iterations": 8})


def _history() -> list[dict[str, float]]:
    return [{"epoch": e, "train_loss": 2.0 / e, "val_loss": 2.2 / e,
             "train_accuracy": 1 - 0.5 / e, "val_accuracy": 1 - 0.6 / e} for e in (1, 2, 3)]


def _pca_inputs() -> tuple[js.Surface, np.ndarray]:
    a, b = np.linspace(-2, 2, 9), np.linspace(-1, 1, 7)
    A, B = np.meshgrid(a, b, indexing="ij")
    coords = np.stack([np.linspace(-1.5, 0, 5), np.linspace(0.8, 0, 5)], axis=1)
    return js.Surface(a, b, {"loss": A**2 + 3 * B**2 + 0.1}), coords


def test_importing_plot_does_not_import_jax():
    # jaxsurf/__init__ itself imports jax (evaluate, tree), so load the plot package
    # under a bare parent package: this checks what js.plot and its own imports pull in.
    code = textwrap.dedent(f"""
        import sys, types
        pkg = types.ModuleType("jaxsurf")
        pkg.__path__ = [{str(ROOT / "jaxsurf")!r}]
        sys.modules["jaxsurf"] = pkg
        import jaxsurf.plot
        assert callable(jaxsurf.plot.convexity) and callable(jaxsurf.plot.training_curves)
        print(sorted(m for m in sys.modules if m == "jax" or m.startswith("jax.")))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_sem_suffix_lives_with_surface():
    assert surface.SEM_SUFFIX == "_sem"
    assert subsample.SEM_SUFFIX is surface.SEM_SUFFIX


@pytest.mark.parametrize("old, new, args", [
    (lambda: hessian.plot_convexity, "js.plot.convexity", lambda: (_convexity_surface(),)),
    (lambda: hessian.plot_spectrum, "js.plot.spectrum",
     lambda: (np.linspace(-1, 3, 50), np.exp(-np.linspace(-1, 3, 50) ** 2))),
    (lambda: pca.plot_path, "js.plot.pca_path", _pca_inputs),
    (lambda: train.plot_history, "js.plot.training_history", lambda: (_history(),)),
])
def test_deprecated_aliases_warn_and_draw_the_same_figure(old, new, args, tmp_path):
    with pytest.warns(DeprecationWarning, match=new.replace(".", r"\.")):
        fig = old()(*args(), out=tmp_path / "old.png")
    assert isinstance(fig, Figure) and (tmp_path / "old.png").stat().st_size > 0
    current = getattr(js.plot, new.rsplit(".", 1)[1])(*args())
    assert [ax.get_title() for ax in fig.axes] == [ax.get_title() for ax in current.axes]
    assert [ax.get_xlabel() for ax in fig.axes] == [ax.get_xlabel() for ax in current.axes]


def test_training_curves_regression_draws_loss_only(tmp_path):
    history = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e} for e in (1, 2, 3)]
    fig = js.plot.training_curves(history, tmp_path / "c.png", "an mlp " * 12,
                                  regression=True, loss="mse")
    (ax,) = fig.axes
    assert ax.get_ylabel() == "mse loss" and ax.get_xlabel() == "epoch"
    assert "\n" in ax.get_title()  # wrapped at 55 characters
    assert [line.get_label() for line in ax.get_lines()] == ["train", "val"]
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    classifier = js.plot.training_curves(_history(), None, "cls")
    assert [ax.get_title() for ax in classifier.axes] == ["loss", "accuracy"]
    with pytest.raises(ValueError, match="history is empty"):
        js.plot.training_curves([], None, "x", regression=True)


def test_moved_figures_keep_matplotlib_suffix_rules(tmp_path):
    fig = js.plot.spectrum(np.linspace(0, 1, 5), np.ones(5), out=tmp_path / "spec")
    assert (tmp_path / "spec.png").exists()  # as savefig did: no suffix -> .png
    js.plot.spectrum(np.linspace(0, 1, 5), np.ones(5), out=tmp_path / "spec.jpg")
    assert (tmp_path / "spec.jpg").read_bytes()[:2] == b"\xff\xd8"
    with pytest.raises(ValueError, match="cannot save a figure"):
        js.plot.contour(_pca_inputs()[0], out=tmp_path / "c.jpg")  # Surface figures: 3 formats
    assert isinstance(fig, Figure)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.jpg", "spec.png"]  # no temps


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "f.txt"
    assert _atomic.write_text(target, "old\n") == target
    assert _atomic.write_bytes(target, b"new") == target
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["f.txt"]


@pytest.mark.parametrize("writer", ["with", "via_path"])
def test_atomic_write_that_fails_keeps_the_old_file(tmp_path, writer):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    def half_then_fail(handle_or_path):
        if writer == "with":
            handle_or_path.write(b"half")
        else:
            Path(handle_or_path).write_bytes(b"half")
        raise RuntimeError("killed mid-write")

    write = _atomic.write_with if writer == "with" else _atomic.write_via_path
    with pytest.raises(RuntimeError, match="killed"):
        write(target, half_then_fail)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_figure_save_failure_keeps_previous_figure(tmp_path, monkeypatch):
    s = _pca_inputs()[0]
    out = tmp_path / "c.png"
    js.plot.contour(s, out=out)
    before = out.read_bytes()

    def broken(self, fname, **kwargs):
        Path(fname).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        js.plot.heatmap(s, out=out)
    assert out.read_bytes() == before
    assert os.listdir(tmp_path) == ["c.png"]
