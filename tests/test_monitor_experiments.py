"""The experiments record a monitor run (``--monitor``): ResNet-56's smoke preset."""

from __future__ import annotations

import pytest

import jaxsurf as js


@pytest.mark.slow
def test_resnet56_smoke_records_a_monitor_run(tmp_path):
    from experiments import resnet56

    out = tmp_path / "r56"
    resnet56.main(["--preset", "smoke", "--noskip", "--monitor", "--out", str(out)])
    records = js.Monitor.load(out / "noskip" / "monitor")
    steps_per_epoch = 256 // 64  # smoke: 256 training images in batches of 64, 1 epoch
    assert list(records) == list(range(steps_per_epoch + 1))  # every=1: each step and 0
    assert records[0].is_plane and records[0].metric_names == ["loss", "accuracy"]
    series = js.Monitor.load_curvature(out / "noskip" / "monitor")
    assert series["step"].tolist() == list(records)
    assert (series["top_eigenvalue"] > 0).all()
    assert (out / "noskip" / "monitor.gif").stat().st_size > 0
