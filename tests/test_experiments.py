"""The seed's experiments in their smoke preset: each module runs in-process into a
temporary folder and its outputs are checked (results.json, surfaces, figures),
plus reuse of finished work, the restore of an epoch from the trajectory and
the surface statistics."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsurf as js
from experiments import config as cfg
from experiments import report as rep

MODULES = {  # module -> its variants
    "resnet56": ("skip", "noskip"),
    "resnet110": ("skip", "noskip"),
    "densenet": ("densenet", "resnet"),
    "resnet50_pca": ("skip", "noskip"),
    "taaf": ("plain", "taaf"),
}
VARIANT_KEYS = ("model", "variant", "num_params", "preset", "dataset", "epochs", "train_loss",
                "val_loss", "best_epoch", "surfaces", "figures", "surface_stats", "curvature",
                "sharpness")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """Runs every module once (smoke preset); tests read the results."""
    runs = {}
    for name in MODULES:
        out = tmp_path_factory.mktemp(name)
        module = importlib.import_module(f"experiments.{name}")
        runs[name] = (out, module.main(["--preset", "smoke", "--out", str(out)]))
    return runs


def _is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODULES))
def test_smoke_outputs(smoke_runs, name):
    out, returned = smoke_runs[name]
    results = json.loads((out / "results.json").read_text())
    assert results["experiment"] == name and results["preset"] == "smoke"
    assert sorted(results["variants"]) == sorted(MODULES[name])
    regression = name == "taaf"
    for variant, r in results["variants"].items():
        missing = [k for k in VARIANT_KEYS if k not in r]
        assert not missing, f"{name}/{variant} lacks {missing}"
        assert r["variant"] == variant and r["preset"] == "smoke" and r["num_params"] > 0
        assert set(r["dataset"]) >= {"name", "sizes", "synthetic"}
        assert r["dataset"]["sizes"]["train"] > 0
        assert r["epochs"] >= 1 and 1 <= r["best_epoch"] <= r["epochs"]
        assert np.isfinite(r["train_loss"]) and np.isfinite(r["val_loss"])
        if regression:
            assert np.isfinite(r["val_mae"]) and r["dataset"]["synthetic"] is True
        else:
            assert 0.0 <= r["val_accuracy"] <= 1.0
        # surfaces load, with the preset's grid, and say how they were made
        assert "plane_final" in r["surfaces"] and "line_final" in r["surfaces"]
        for key, file in r["surfaces"].items():
            surface = js.Surface.load(out / file)
            assert np.all(np.isfinite(surface.metrics["loss"]))
            assert surface.metadata["variant"] == variant
            assert surface.metadata["synthetic"] == r["dataset"]["synthetic"]
            if key.startswith("plane"):
                assert surface.metrics["loss"].shape == (5, 5)
        for file in r["figures"].values():
            assert _is_png(out / file), file
        assert {"training_curves", "contour_final", "surface3d_final", "line_final"} <= set(
            r["figures"])
        stats = r["surface_stats"]["final"]
        assert {k: r["surface_stats"][k] for k in stats} == stats  # also at the top
        assert stats["minimum"] <= stats["at_origin"] <= stats["maximum"]
        assert set(stats["mean_at_radius"]) == {"0.25", "0.5", "1.0"}
        assert all(v is not None and v >= stats["minimum"] - 1e-6
                   for v in stats["mean_at_radius"].values())
        assert 0.0 < stats["fraction_below_2x_min"] <= 1.0
        curvature = r["curvature"]
        assert np.isfinite(curvature["lambda_max"]) and np.isfinite(curvature["trace"])
        assert curvature["trace_stderr"] >= 0
        assert np.isfinite(r["sharpness"]["sam_rho_0.05"])
        assert np.isfinite(r["sharpness"]["average_weight_scaled_sigma_0.05"])
    assert "final" in results["comparison_figures"]
    for file in results["comparison_figures"].values():
        assert _is_png(out / file)
    assert returned["variants"].keys() == results["variants"].keys()


@pytest.mark.slow
def test_resnet50_pca_has_path(smoke_runs):
    out, results = smoke_runs["resnet50_pca"]
    for r in results["variants"].values():
        pca = r["pca"]
        assert len(pca["explained_variance_ratio"]) == 2
        assert len(pca["path_coordinates"]) == r["epochs"] + 1      # epoch 0 .. N
        np.testing.assert_allclose(pca["path_coordinates"][-1], [0.0, 0.0], atol=1e-4)
        plane = js.Surface.load(out / r["surfaces"]["plane_pca"])
        assert plane.metadata["explained_variance_ratio"] == pca["explained_variance_ratio"]
        assert _is_png(out / r["figures"]["pca_path"])
    assert "pca" in results["comparison_figures"]


@pytest.mark.slow
def test_rerun_reuses_and_merges(smoke_runs):
    """A second run (one variant) retrains nothing, evaluates no surface point again
    (every point comes from the library's store), keeps the other variant in
    results.json and its comparison figure."""
    out, first = smoke_runs["resnet56"]
    log = (out / "noskip" / "train" / "log.jsonl").read_text()
    from experiments import resnet56

    again = resnet56.main(["--preset", "smoke", "--noskip", "--out", str(out)])
    assert (out / "noskip" / "train" / "log.jsonl").read_text() == log
    for key, file in again["variants"]["noskip"]["surfaces"].items():
        meta = js.Surface.load(out / file).metadata
        assert meta["points_evaluated"] == 0 < meta["points_from_store"], key
    assert sorted(again["variants"]) == ["noskip", "skip"]
    assert again["variants"]["noskip"]["surface_stats"] == first["variants"]["noskip"][
        "surface_stats"]
    assert again["variants"]["noskip"]["curvature"] == first["variants"]["noskip"]["curvature"]
    assert "final" in again["comparison_figures"]


@pytest.mark.slow
def test_restore_epoch_matches_final_params(smoke_runs):
    out, results = smoke_runs["resnet56"]
    from jaxsurf import models

    model = models.ResNetCIFAR(depth=8, width=8, skip=False)
    like = model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
    r = results["variants"]["noskip"]
    restored = rep.restore_epoch(out / "noskip" / "train", r["epochs"], like)
    plane = js.Surface.load(out / r["surfaces"]["plane_final"])
    assert js.tree.fingerprint(restored["params"]) == plane.metadata["params_fingerprint"]
    assert set(restored) == {"params", "batch_stats"}
    first = rep.restore_epoch(out / "noskip" / "train", 0, like)   # the initialisation
    assert js.tree.fingerprint(first["params"]) != plane.metadata["params_fingerprint"]


@pytest.mark.slow
def test_changed_training_settings_stop(smoke_runs):
    out, _ = smoke_runs["densenet"]
    from experiments import densenet

    with pytest.raises(SystemExit, match="other settings"):
        densenet.main(["--preset", "smoke", "--variants", "resnet", "--train-examples", "200",
                       "--out", str(out)])


def test_surface_stats_of_a_bowl():
    grid = np.linspace(-1, 1, 41)
    a, b = np.meshgrid(grid, grid, indexing="ij")
    bowl = js.Surface(grid, grid, {"loss": 1.0 + a ** 2 + 4 * b ** 2})
    stats = rep.surface_stats(bowl)
    assert stats["minimum"] == pytest.approx(1.0) and stats["at_origin"] == pytest.approx(1.0)
    for r in (0.25, 0.5, 1.0):       # mean of r^2 cos^2 + 4 r^2 sin^2 over the circle
        assert stats["mean_at_radius"][str(r)] == pytest.approx(1 + 2.5 * r * r, rel=5e-3)
    # below 2x the minimum: inside the ellipse a^2 + 4 b^2 < 1, area pi/2 of 4
    assert stats["fraction_below_2x_min"] == pytest.approx(np.pi / 8, abs=0.03)
    narrow = js.Surface(grid / 2, grid, {"loss": bowl.metrics["loss"]})
    assert rep.surface_stats(narrow)["mean_at_radius"]["1.0"] is None


def test_command_line_options():
    presets = {"smoke": cfg.Preset(train_examples=8, val_examples=4, test_examples=0,
                                      epochs=1, grid=3, range=1.0, line_points=3,
                                      surface_examples=4, analysis_examples=4,
                                      lanczos_iterations=2, hutchinson_samples=2,
                                      sharpness_samples=2)}
    args = cfg.parse_args("doc", presets, ["--preset", "smoke", "--out", "x", "--grid", "9",
                                              "--range", "2", "--loss", "mse",
                                              "--variants", "noskip"],
                             variants=("skip", "noskip"))
    assert args.preset_config.grid == 9 and args.preset_config.range == 2.0
    assert args.loss == "mse" and args.variants == ["noskip"]
    with pytest.raises(SystemExit):
        cfg.parse_args("doc", presets, ["--preset", "smoke", "--out", "x", "--variants",
                                           "dense"], variants=("skip", "noskip"))


@pytest.mark.slow
def test_a_new_grid_in_a_finished_out_is_recomputed(smoke_runs):
    """Another --grid/--range reuses the training but evaluates a new plane (its
    resumable store is keyed by the grid too)."""
    out, first = smoke_runs["taaf"]
    from experiments import taaf

    log = (out / "taaf" / "train" / "log.jsonl").read_text()
    again = taaf.main(["--preset", "smoke", "--variants", "taaf", "--grid", "3", "--range", "2",
                       "--out", str(out)])
    assert (out / "taaf" / "train" / "log.jsonl").read_text() == log
    plane = js.Surface.load(out / again["variants"]["taaf"]["surfaces"]["plane_final"])
    assert plane.metrics["loss"].shape == (3, 3) and plane.alphas[0] == -2.0


@pytest.mark.parametrize("module, argv, words", [
    ("resnet56", ["--epochs", "0"], "--epochs is too small"),
    ("resnet50_pca", ["--epochs", "1"], "at least 2"),
    ("densenet", ["--grid", "1"], "--grid is too small"),
    ("resnet56", ["--range", "0"], "--range must be positive"),
    ("taaf", ["--width", "0"], "must be a positive integer"),
])
def test_bad_options_stop_before_any_work(tmp_path, capsys, module, argv, words):
    import importlib

    with pytest.raises(SystemExit):
        importlib.import_module(f"experiments.{module}").main(
            ["--preset", "smoke", *argv, "--out", str(tmp_path)])
    assert words in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_a_given_data_dir_must_hold_the_data_even_in_smoke(tmp_path):
    from experiments import resnet56, taaf

    with pytest.raises(SystemExit, match="Fashion-MNIST not found"):
        resnet56.main(["--preset", "smoke", "--data-dir", str(tmp_path / "none"),
                       "--out", str(tmp_path / "r")])
    with pytest.raises(SystemExit, match="does not exist"):
        taaf.main(["--preset", "smoke", "--data-dir", str(tmp_path / "none"),
                   "--out", str(tmp_path / "t")])


@pytest.mark.slow
def test_results_of_other_settings_are_not_merged(tmp_path):
    """A variant run later with another seed does not join the earlier variants in
    results.json or in the comparison figure."""
    from experiments import taaf

    out = tmp_path / "t"
    taaf.main(["--preset", "smoke", "--variants", "plain", "--out", str(out)])
    same = taaf.main(["--preset", "smoke", "--variants", "taaf", "--out", str(out)])
    assert sorted(same["variants"]) == ["plain", "taaf"] and "final" in same[
        "comparison_figures"]
    other = taaf.main(["--preset", "smoke", "--variants", "taaf", "--seed", "1",
                       "--out", str(tmp_path / "u")])
    assert sorted(other["variants"]) == ["taaf"]
    again = taaf.main(["--preset", "smoke", "--variants", "plain", "--loss", "mse",
                       "--out", str(tmp_path / "u")])
    assert sorted(again["variants"]) == ["plain"] and not again["comparison_figures"]


@pytest.mark.slow
def test_final_plane_on_every_split_and_its_basins(smoke_runs):
    """--surface-split (default train,val): the val plane and line beside the training
    ones, the gap numbers, the figures, and the topology numbers in surface_stats."""
    out, _ = smoke_runs["resnet56"]
    results = json.loads((out / "results.json").read_text())
    for r in results["variants"].values():
        train = js.Surface.load(out / r["surfaces"]["plane_final"])
        val = js.Surface.load(out / r["surfaces"]["plane_final_val"])
        assert val.metadata["split"] == "val" and "split" not in train.metadata
        assert val.metadata["num_examples"] == r["dataset"]["sizes"]["val"]
        np.testing.assert_array_equal(val.alphas, train.alphas)
        gap = r["split_gap"]["val"]
        diff = val.metrics["loss"] - train.metrics["loss"]
        assert gap["mean"] == pytest.approx(float(np.mean(diff)), rel=1e-5)
        for name in ("splits_final", "gap_final_val", "line_splits_final", "basins_final"):
            assert _is_png(out / r["figures"][name]), name
        topo = r["surface_stats"]["final"]["topology"]
        assert topo["num_minima"] >= topo["num_persistent_minima"] >= 1
        assert topo == js.topology.summary(train)
        assert "topology" in r["surface_stats"]["final_val"]


def test_surface_split_option():
    presets = {"smoke": cfg.Preset(train_examples=8, val_examples=4, test_examples=0,
                                      epochs=1, grid=3, range=1.0, line_points=3,
                                      surface_examples=4, analysis_examples=4,
                                      lanczos_iterations=2, hutchinson_samples=2,
                                      sharpness_samples=2)}

    def parse(*argv):
        return cfg.parse_args("doc", presets, ["--preset", "smoke", "--out", "x", *argv])

    assert parse().surface_split == ["train", "val"]
    assert parse("--surface-split", "test,val").surface_split == ["train", "val", "test"]
    assert parse("--surface-split", "val").surface_split == ["train", "val"]
    with pytest.raises(SystemExit):
        parse("--surface-split", "holdout")


EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def _imports(path: Path) -> set[str]:
    """The modules a file imports (``from experiments import report`` gives
    ``experiments.report``), function-level and ``TYPE_CHECKING`` ones included."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _calls(path: Path) -> set[str]:
    """Dotted names the file calls, e.g. ``js.evaluate_plane``."""
    import ast

    def dotted(node):
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            head = dotted(node.value)
            return f"{head}.{node.attr}" if head else None
        return None

    return {name for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and (name := dotted(node.func))}


def test_item5_experiments_call_the_library_themselves_without_import_cycles():
    """Issue 24, item 5: each experiment shows its method (``js.random_plane``,
    ``js.evaluate_*``, ``js.hessian``) in its own file; the shared modules are
    only data, config and the report writer, and nothing imports in a cycle."""
    modules = {f"experiments.{p.stem}": p for p in EXPERIMENTS.glob("*.py")
               if p.stem != "__init__"}
    graph = {name: {m for m in _imports(path) if m in modules and m != name}
             for name, path in modules.items()}

    def reaches(start, goal, seen=()):
        return any(m == goal or (m not in seen and reaches(m, goal, (*seen, m)))
                   for m in graph[start])

    cycles = sorted(name for name in graph if reaches(name, name))
    assert not cycles, f"import cycles among {cycles}: {graph}"
    runnable = {name for name, path in modules.items()
                if 'if __name__ == "__main__":' in path.read_text()}
    shared = set().union(*graph.values()) - runnable   # imported, and not an experiment
    assert shared == {"experiments.config", "experiments.data", "experiments.report"}
    for name in modules:   # public library only: no jaxsurf._private modules, except
        imported = _imports(modules[name])   # the one atomic writer (not public yet)
        private = sorted(m for m in imported if m.startswith("jaxsurf.")
                         and any(part.startswith("_") for part in m.split(".")[1:])
                         and "atomic" not in m and f"{m}.atomic" not in imported)
        assert not private, f"{name} reaches into {private}"
    steps = {"resnet56": {"train.fit", "js.flax.adapt", "js.random_plane",
                          "js.evaluate_plane", "js.evaluate_line",
                          "js.hessian.top_eigenpairs", "js.hessian.trace",
                          "js.sharpness.sam_sharpness", "js.sharpness.average_sharpness"},
             "resnet50_pca": {"js.pca_directions", "js.project", "js.evaluate_plane",
                              "js.plot.pca_path"},
             "quickstart": {"train.fit", "js.random_plane", "js.evaluate_plane",
                            "js.evaluate_line"},
             "connectivity": {"train.fit", "connect.fit_curve", "connect.evaluate_curve",
                              "js.evaluate_plane"},
             "merging": {"train.fit", "connect.task_plane", "connect.merge", "connect.slerp",
                         "connect.attention_spec", "connect.combine_specs",
                         "connect.evaluate_path", "connect.align", "connect.repair_path",
                         "js.evaluate_plane", "js.plot.contour"}}
    for name, wanted in steps.items():
        missing = wanted - _calls(EXPERIMENTS / f"{name}.py")
        assert not missing, f"experiments/{name}.py does not call {sorted(missing)} itself"


def _check_merging_results(tmp_path, results, merging):
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["merges"]) == {"base", "fine-tune A", "fine-tune B", *merging.MERGES}
    for row in saved["merges"].values():
        assert np.isfinite(row["loss_A"]) and np.isfinite(row["loss_B"])
    assert saved["merges"]["fine-tune A"]["lambda_A"] == pytest.approx(1.0, abs=1e-4)
    assert saved["merges"]["soup (linear)"]["off_plane_distance"] < 1e-3
    assert set(saved["finetune_barriers"]) == {"line", "SLERP"}
    assert len(saved["scratch_barriers"]) == (7 if saved["model_kind"] == "transformer" else 5)
    for row in [*saved["finetune_barriers"].values(), *saved["scratch_barriers"].values()]:
        assert row["loss_barrier"] >= 0
    for name in results["figures"].values():
        assert _is_png(tmp_path / name)
    # the plane's value at (1, 0) is fine-tune A's own loss on task A
    plane = js.Surface.load(tmp_path / "task_plane_A.npz")
    i, j = list(plane.alphas).index(1.0), list(plane.betas).index(0.0)
    assert plane.metrics["loss"][i, j] == pytest.approx(
        saved["merges"]["fine-tune A"]["loss_A"], rel=1e-4)
    return saved


@pytest.mark.slow
def test_merging_smoke(tmp_path):
    """Issue 26: the merging experiment's smoke preset on its default model, the
    transformer LM (about 1 minute on 2 shared cores): pretrained on the standard
    library without the two task groups, fine-tuned on two disjoint groups of
    packages; every merge in the table, barriers of every path, the figures."""
    from experiments import merging

    results = merging.main(["--preset", "smoke", "--out", str(tmp_path)])
    saved = _check_merging_results(tmp_path, results, merging)
    assert saved["preset"] == "smoke" and saved["model_kind"] == "transformer"
    assert "transformer LM" in saved["model_choice"]
    data = saved["data"]
    files = {k: set(data[k]["train"]["files"]) | set(data[k]["val"]["files"])
             for k in ("pretrain", "A", "B")}
    assert files["A"] and files["B"] and not files["A"] & files["B"]
    assert not (files["A"] | files["B"]) & files["pretrain"]
    assert all(f.split("/")[0] in saved["packages"]["A"] for f in files["A"])
    assert all(f.split("/")[0] in saved["packages"]["B"] for f in files["B"])
    assert set(saved["weight_vs_activation_same_unit"]) == {
        "heads:block_0/attn", "mlp:block_0/hidden_0"}
    assert "activation matching + REPAIR (MLP units)" in saved["scratch_barriers"]


@pytest.mark.slow
def test_merging_smoke_cnn(tmp_path):
    """The same experiment with --model cnn (the Fashion-MNIST CNN; random images
    when the data set is missing; about 3 minutes on 2 shared cores)."""
    from experiments import merging

    results = merging.main(["--model", "cnn", "--preset", "smoke", "--out", str(tmp_path)])
    saved = _check_merging_results(tmp_path, results, merging)
    assert saved["model_kind"] == "cnn" and "Fashion-MNIST CNN" in saved["stand_in"]


@pytest.mark.slow
def test_transformer_smoke(tmp_path):
    """The language-model experiment (issue 25): training on the standard library's
    source, the random and PCA planes, the init -> final line and the curvature on
    train and validation tokens, and the same sharded over 2 model shards."""
    from experiments import transformer
    out = tmp_path / "transformer"
    returned = transformer.main(["--preset", "smoke", "--out", str(out), "--shards", "2"])
    results = json.loads((out / "results.json").read_text())
    assert results["experiment"] == "transformer" and results == json.loads(
        json.dumps(rep.jsonable(returned)))
    r = results["variants"]["lm"]
    missing = [k for k in VARIANT_KEYS if k not in r]
    assert not missing, missing
    assert r["dataset"]["synthetic"] is False and r["dataset"]["name"] == "python-stdlib"
    split = json.loads((out / "lm" / "data_split.json").read_text())
    assert split["train"]["num_files"] > 0 and split["val"]["num_files"] > 0
    assert not set(split["train"]["files"]) & set(split["val"]["files"])
    assert r["val_perplexity"] == pytest.approx(np.exp(r["val_loss"]))
    assert 0.0 <= r["val_accuracy"] <= 1.0 and r["epochs"] == 2
    for key in ("plane_final", "plane_final_val", "plane_pca", "plane_pca_val",
                "line_final", "interpolation", "interpolation_val"):
        surface = js.Surface.load(out / r["surfaces"][key])
        assert np.all(np.isfinite(surface.metrics["loss"])), key
        if key.startswith("plane"):
            assert surface.metrics["loss"].shape == (5, 5)
    # the interpolation ends at the trained weights: alpha 1 is the plane's centre
    plane = js.Surface.load(out / r["surfaces"]["plane_final"])
    assert r["interpolation"]["train"]["at_trained"] == pytest.approx(
        r["surface_stats"]["final"]["at_origin"], rel=1e-5)
    for split_name in ("train", "val"):
        assert r["curvature"][split_name]["lambda_max"] > 0
    assert plane.metadata["variant"] == "lm"
    for name in ("training_curves", "contour_final", "pca_path_pca", "pca_path_pca_val",
                 "interpolation", "splits_final"):
        assert _is_png(out / r["figures"][name]), name
    sharded = results["sharded"]
    assert sharded["shards"] == 2 and sharded["agree"] is True
    assert {"plane_final", "plane_pca_val", "interpolation", "lambda_max", "trace_val"} <= set(
        sharded["differences"])
    assert "P(None, 'model')" in sharded["specs_used"]


def test_merging_transformer_permutations_keep_the_function():
    """The merging experiment's transformer permutations (heads, MLP units, and the
    extra row's residual stream) give the same logits, and its activations have one
    entry per group with the group's units last."""
    from experiments import merging
    from jaxsurf.models import TransformerLM

    lm = TransformerLM(d_model=16, num_heads=4, num_layers=2, max_len=8)
    tokens = jax.random.randint(jax.random.key(1), (3, 8), 0, 256)
    params = lm.init(jax.random.key(0), tokens)["params"]
    params = jax.tree.map(lambda x: x + 0.1 * jax.random.normal(jax.random.key(2), x.shape),
                          params)
    rng = np.random.default_rng(0)
    for spec, hidden in ((merging.lm_spec(params, 4, 2), merging.lm_hidden(lm, pre=False)),
                         (js.connect.combine_specs(merging.lm_spec(params, 4, 2),
                                                   merging.lm_residual_spec(params, 16)),
                          merging.lm_residual_hidden(lm))):
        perms = {k: rng.permutation(g.size) for k, g in spec.groups.items()}
        moved = js.connect.apply_permutation(params, spec, perms)
        np.testing.assert_allclose(lm.apply({"params": moved}, tokens),
                                   lm.apply({"params": params}, tokens), rtol=1e-5, atol=1e-5)
        acts = hidden(params, {"x": tokens})
        assert set(acts) == set(spec.groups)
        for name, value in acts.items():
            for a in (value if isinstance(value, list) else [value]):
                assert a.shape[-1] == spec.groups[name].size
    residual = merging.lm_residual_spec(params, 16)
    assert residual.axes["['embed']['embedding']"] == (None, "residual")
    assert residual.axes["['block_0']['mlp_out']['kernel']"] == (None, "residual")
    assert "['block_0']['mlp_in']['bias']" not in residual.axes
