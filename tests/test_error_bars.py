"""Error bars on figures: the SEM as a second panel of a plane (the ±2 SEM bands of
lines are tested in tests/test_subsample.py, the viewer's hover in test_view_browser.py)."""
import numpy as np
import pytest

import jaxsurf as js


def plane_with_sem():
    a, b = np.linspace(-1, 1, 9), np.linspace(-0.5, 0.5, 5)
    A, B = np.meshgrid(a, b, indexing="ij")
    loss = A ** 2 + 4 * B ** 2 + 0.1
    return js.Surface(a, b, {"loss": loss, "loss_sem": 0.05 * loss + 0.01 * A},
                      {"subsample": {"size": 64, "of": 1000, "seed": 0}})


@pytest.mark.parametrize("kind", ["contour", "filled", "heatmap"])
def test_sem_panel_draws_the_standard_error_true_to_orientation(kind, tmp_path):
    s = plane_with_sem()
    fig = getattr(js.plot, kind)(s, sem=True, out=tmp_path / f"{kind}.png")
    assert (tmp_path / f"{kind}.png").stat().st_size > 0
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(panels) == 2 and len(bars) == 2
    mesh = panels[1].collections[0]
    # pcolormesh(edges_a, edges_b, Z): cell [i, j] at (alphas[i], betas[j])
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(9, 5),
                               s.metrics["loss_sem"], rtol=1e-6)
    assert "standard error" in bars[1].get_ylabel() and "64" in bars[1].get_ylabel()
    assert panels[1].get_xlabel() == panels[0].get_xlabel()


def test_sem_panel_without_a_subsample_is_refused():
    a = np.linspace(-1, 1, 5)
    s = js.Surface(a, a, {"loss": np.add.outer(a ** 2, a ** 2)})
    with pytest.raises(ValueError, match="subsample="):
        js.plot.contour(s, sem=True)
    assert len(js.plot.contour(s).axes) == 2        # without sem: one panel, one colour bar
