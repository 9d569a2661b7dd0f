"""progress=: the ProgressInfo callback, the terminal bar and when it is on."""

import io
import sys

import jax
import numpy as np
import pytest

import jaxsurf as js
from helpers import classification_data, mlp_fn
from jaxsurf._progress import (ProgressBar, ProgressInfo, ProgressLog, ProgressTracker,
                              format_line, log_line, make_sink)


@pytest.fixture
def line_problem():
    rng = np.random.default_rng(0)

    def mlp_like():
        return {f"Dense_{i}": {"kernel": rng.normal(size=(a, b)).astype(np.float32),
                               "bias": rng.normal(size=b).astype(np.float32)}
                for i, (a, b) in enumerate([(5, 4), (4, 3)])}

    return mlp_like(), mlp_like(), classification_data(n=30)


def test_callback_sees_every_chunk_with_rate_and_eta(line_problem):
    params, d, data = line_problem
    log = []
    js.evaluate_line(mlp_fn, params, d, data, np.linspace(-1, 1, 7), chunk_size=3,
                     progress=log.append)
    assert [i.done for i in log] == [0, 3, 6, 7] and {i.total for i in log} == {7}
    assert log[0].rate is None and log[0].eta is None and log[0].elapsed >= 0
    assert all(i.rate > 0 and i.eta >= 0 for i in log[1:]) and log[-1].eta == 0
    assert log[-1].finished and not log[1].finished
    assert [i.elapsed for i in log] == sorted(i.elapsed for i in log)


def test_stream_progress_counts_the_share_of_batches_read(line_problem):
    params, d, data = line_problem
    batches = [{k: v[i:i + 10] for k, v in data.items()} for i in range(0, 30, 10)]
    log = []
    js.evaluate_line(mlp_fn, params, d, batches, np.linspace(-1, 1, 6), progress=log.append)
    assert [i.done for i in log] == [0, 2, 4, 6]


def test_rate_leaves_out_the_first_chunk_once_a_second_is_done():
    clock = iter([0.0, 10.0, 11.0, 12.0]).__next__  # start, then 3 chunks of 5 points
    log = []
    track = ProgressTracker(log.append, total=15, stored=5, clock=clock)
    track.update(5)
    track.update(10)
    track.update(15)
    assert log[1].rate == pytest.approx(0.5) and log[1].eta == pytest.approx(20.0)
    assert log[2].rate == pytest.approx(5.0) and log[2].eta == pytest.approx(1.0)
    assert log[3].elapsed == 12.0 and log[3].eta == 0.0 and log[3].stored == 5


@pytest.mark.parametrize("info, width, text", [
    (ProgressInfo(10, 40, 2.0, 5.0, 6.0), 70,
     "jaxsurf [#####---------------] 10/40 points  25%  5 points/s  ETA 0:06"),
    (ProgressInfo(0, 441, 0.5, None, None), 80,
     "jaxsurf [--------------------] 0/441 points   0%  -- points/s  ETA --:--"),
    (ProgressInfo(3, 9, 30.0, 0.1, 60.0, stored=4), 80,
     "jaxsurf [####---------] 3/9 points  33%  10.0 s/point  ETA 1:00  (+4 from store)"),
    (ProgressInfo(441, 441, 3725.0, 123.456, 0.0), 80,
     "jaxsurf [####################] 441/441 points 100%  123 points/s  in 1:02:05"),
    (ProgressInfo(10, 40, 2.0, 5.0, 6.0), 50,  # too narrow for a bar
     "jaxsurf 10/40 points  25%  5 points/s  ETA 0:06"),
])
def test_format_line(info, width, text):
    assert format_line(info, width) == text
    assert len(format_line(info, 30)) <= 30


def test_bar_redraws_one_line_and_ends_it():
    out = io.StringIO()
    bar = ProgressBar(out, min_interval=0.0)
    for done in (0, 5, 10):
        bar(ProgressInfo(done, 10, done / 10, 10.0 if done else None, 1.0 - done / 10))
    text = out.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n") and text.count("\n") == 1
    assert "10/10 points 100%" in text


def test_bar_is_throttled_and_closed_after_an_error(line_problem):
    out = io.StringIO()
    bar = ProgressBar(out, min_interval=60.0)
    for done in range(5):
        bar(ProgressInfo(done, 10, 0.0, None, None))
    assert out.getvalue().count("\r") == 1  # the first draw only
    params, d, data = line_problem
    ragged = [{k: v[:10] for k, v in data.items()}, {"x": data["x"][:5], "y": data["y"][:4]}]
    out = io.StringIO()
    with pytest.raises(ValueError, match="batch 1 leaves have different leading"):
        js.evaluate_line(mlp_fn, params, d, ragged, [0.0], progress=ProgressBar(out))
    assert out.getvalue().startswith("\rjaxsurf") and out.getvalue().endswith("\n")


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_bar_is_on_by_default_only_in_a_terminal(monkeypatch, line_problem):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert isinstance(make_sink(None), ProgressLog)
    monkeypatch.setattr(sys, "stderr", None)
    assert make_sink(None) is None
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert isinstance(make_sink(None), ProgressBar) and make_sink(False) is None
    params, d, data = line_problem
    js.evaluate_line(mlp_fn, params, d, data, np.linspace(-1, 1, 4), progress=False)
    assert terminal.getvalue() == ""
    js.evaluate_line(mlp_fn, params, d, data, np.linspace(-1, 1, 4))
    assert "4/4 points 100%" in terminal.getvalue() and terminal.getvalue().endswith("\n")
    with pytest.raises(TypeError, match="progress must be None"):
        make_sink(1)


# --------------------------------------------------------------------------- log lines
def test_default_progress_in_a_log_is_whole_lines(monkeypatch, line_problem, tmp_path):
    """Not a terminal: a start line, lines at most every 10 %, an end line; no \\r."""
    params, d, data = line_problem
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    js.evaluate_line(mlp_fn, params, d, data, np.linspace(-1, 1, 40), chunk_size=4,
                     store=tmp_path / "line.store", devices=jax.devices()[:1])
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and log.getvalue().endswith("\n")
    assert lines[0] == "jaxsurf: 40 points to do on 1 device"
    assert lines[-1].startswith("jaxsurf: done: 40 points in ") and "points/s" in lines[-1]
    middle = lines[1:-1]
    assert 1 <= len(middle) <= 9  # every 10 % of 40 points in chunks of 4: 9 at most
    assert all("/40 points (" in m and "ETA" in m for m in middle)

    log.seek(0)
    log.truncate()
    js.evaluate_line(mlp_fn, params, d, data, np.linspace(-1, 1, 40), chunk_size=4,
                     store=tmp_path / "line.store", devices=jax.devices()[:1])
    assert log.getvalue() == "jaxsurf: all 40 points from the store, nothing to evaluate\n"


def test_a_resumed_run_says_so_in_its_first_line(monkeypatch, line_problem, tmp_path):
    params, d, data = line_problem
    grid = np.linspace(-1, 1, 4)
    store_half = tmp_path / "half.store"
    stop_after = []

    def stop(info):  # interrupt after the first chunk of 8 points
        if info.done:
            stop_after.append(info.done)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        js.evaluate_plane(mlp_fn, params, d, d, data, grid, grid, store=store_half,
                          chunk_size=8, devices=jax.devices()[:2], progress=stop)
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    js.evaluate_plane(mlp_fn, params, d, d, data, grid, grid, store=store_half, chunk_size=8,
                      devices=jax.devices()[:2])
    lines = log.getvalue().splitlines()
    assert lines[0] == "jaxsurf: resuming: 8 of 16 points from the store; 8 to do on 2 devices"
    assert lines[-1].startswith("jaxsurf: done: 8 points in ")
    assert lines[-1].endswith("; 8 more from the store")


def test_log_lines_every_tenth_or_every_interval():
    out = io.StringIO()
    now = [0.0]
    sink = ProgressLog(out, every=0.1, interval=60.0, clock=lambda: now[0])
    sink(ProgressInfo(0, 1000, 0.0, None, None))
    for done in range(1, 1000):  # one point a second... for 999 s
        now[0] = float(done)
        sink(ProgressInfo(done, 1000, now[0], 1.0, 1000.0 - done))
    now[0] = 1000.0
    sink(ProgressInfo(1000, 1000, 1000.0, 1.0, 0.0))
    lines = out.getvalue().splitlines()
    # start, end, each 10 % mark, and a line whenever 60 s passed without one
    assert lines[0] == "jaxsurf: 1000 points to do"
    assert lines[1] == "jaxsurf: 60/1000 points (6%), 1 points/s, ETA 15:40"
    assert lines[-1] == "jaxsurf: done: 1000 points in 16:40 (1 points/s)"
    dones = [0] + [int(line.split()[1].split("/")[0]) for line in lines[1:-1]] + [1000]
    assert set(range(100, 1000, 100)) <= set(dones)
    assert max(b - a for a, b in zip(dones, dones[1:])) <= 60
    assert len(lines) == len(set(dones))

    out = io.StringIO()  # fast work: only the 10 % marks
    sink = ProgressLog(out, clock=lambda: 0.0)
    for done in range(0, 1001):
        sink(ProgressInfo(done, 1000, 0.0, 50.0, 1.0))
    shares = [line.split("(")[1].split("%")[0] for line in out.getvalue().splitlines()[1:-1]]
    assert shares == [str(p) for p in range(10, 100, 10)]


def test_log_line_units_and_labels():
    info = ProgressInfo(0, 430, 0.0, None, None, unit="steps", label="epoch 2/3")
    assert log_line(info) == "epoch 2/3: 430 steps to do"
    info = ProgressInfo(43, 430, 20.0, 0.5, 774.0, unit="steps", label="epoch 2/3")
    assert log_line(info) == "epoch 2/3: 43/430 steps (10%), 2.0 s/step, ETA 12:54"
    assert format_line(info, 80).startswith("epoch 2/3 [")
    with pytest.raises(ValueError, match="every must be a share"):
        ProgressLog(every=0)
