"""jaxsurf.data.load_python_source: the standard library's source as byte tokens,
split by file, deterministic and recorded."""

from __future__ import annotations

import numpy as np
import pytest

from jaxsurf.data import load_python_source
from jaxsurf.data import python_source as ps


def test_stdlib_deterministic_and_split_by_file():
    a = load_python_source(seq_len=32, max_bytes=30_000, val_fraction=0.2)
    b = load_python_source(seq_len=32, max_bytes=30_000, val_fraction=0.2)
    for split in ("train", "val"):
        for key in ("x", "y", "mask"):
            np.testing.assert_array_equal(a[split][key], b[split][key])
        assert a["split"][split]["tokens_sha256"] == b["split"][split]["tokens_sha256"]
    rec = a["split"]
    assert not set(rec["train"]["files"]) & set(rec["val"]["files"])
    assert all(ps.file_split(f, 0.2) == "val" for f in rec["val"]["files"])
    assert all(ps.file_split(f, 0.2) == "train" for f in rec["train"]["files"])
    assert rec["train"]["bytes"] == 24_000 and rec["val"]["bytes"] == 6_000
    assert not any("site-packages" in f for f in rec["train"]["files"] + rec["val"]["files"])
    assert a["synthetic"] is False and a["vocab_size"] == 256
    for split in ("train", "val"):
        x, y, mask = a[split]["x"], a[split]["y"], a[split]["mask"]
        assert x.dtype == np.int32 and x.shape[1] == 32 and mask.dtype == np.uint8
        assert int(mask.sum()) == rec[split]["target_tokens"]
        assert a["tokens_per_example"][split] == pytest.approx(mask.sum() / len(mask))
        # each file's bytes minus its first are the targets: sum over files
        assert rec[split]["target_tokens"] == sum(n - 1 for n in rec[split]["file_bytes"])
        # y is x shifted by one inside a sequence, and padding is masked
        real = mask[:, 1:].astype(bool)
        np.testing.assert_array_equal(x[:, 1:][real], y[:, :-1][real])
        assert np.all(y[mask == 0] == ps.PAD)
    # the first file read is the start of that file, byte for byte
    first = rec["train"]["files"][0]
    head = (ps.stdlib_root() / first).read_bytes()[:33]
    assert bytes(a["train"]["x"][0].astype(np.uint8)) == head[:32]


def test_split_depends_on_the_path_only(tmp_path):
    for i in range(30):
        (tmp_path / f"m{i}.py").write_text(f"x = {i}\n" * (i + 2))
    (tmp_path / "site-packages").mkdir()
    (tmp_path / "site-packages" / "third.py").write_text("import this\n")
    first = load_python_source(seq_len=8, val_fraction=0.3, root=tmp_path)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "new.py").write_text("y = 1\n" * 5)
    second = load_python_source(seq_len=8, val_fraction=0.3, root=tmp_path)
    for split in ("train", "val"):
        assert set(first["split"][split]["files"]) <= set(second["split"][split]["files"])
    assert "site-packages/third.py" not in second["split"]["train"]["files"] + \
        second["split"]["val"]["files"]
    every = second["split"]["train"]["num_files"] + second["split"]["val"]["num_files"]
    assert every == 31 == second["split"]["files_available"]


def test_to_sequences_covers_every_target_once():
    data = bytes(range(1, 24))
    s = ps.to_sequences(data, 5)
    assert s["x"].shape == (5, 5)     # ceil(22 / 5) windows
    assert s["y"][s["mask"] == 1].tolist() == list(data[1:])
    assert ps.to_sequences(b"a", 5)["x"].shape == (0, 5)


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="seq_len"):
        load_python_source(seq_len=0)
    with pytest.raises(ValueError, match="val_fraction"):
        load_python_source(val_fraction=1.0)
    with pytest.raises(ValueError, match="max_bytes"):
        load_python_source(max_bytes=1)
    with pytest.raises(FileNotFoundError, match="no .py files"):
        load_python_source(root=tmp_path)
    with pytest.raises(FileNotFoundError, match="no directory"):
        load_python_source(root=tmp_path / "missing")
    (tmp_path / "a.py").write_text("print(1)\n")
    with pytest.raises(ValueError, match="split holds no sequence"):
        load_python_source(root=tmp_path, val_fraction=0.0)


def test_packages_and_exclude_select_files_and_keep_each_files_split(tmp_path):
    """packages= reads only those packages, exclude= leaves them out; a file's split
    is the same in a restricted load as in the whole one (its path stays relative
    to the root), so a package's validation files are never in a pretraining load."""
    for pkg in ("alpha", "beta", "gamma"):
        (tmp_path / pkg).mkdir()
        for i in range(12):
            (tmp_path / pkg / f"m{i}.py").write_text(f"{pkg} = {i}\n" * (i + 3))
    (tmp_path / "top.py").write_text("z = 0\n" * 4)
    whole = load_python_source(seq_len=8, val_fraction=0.3, root=tmp_path)
    only = load_python_source(seq_len=8, val_fraction=0.3, root=tmp_path,
                              packages=["alpha", "top.py"])
    rest = load_python_source(seq_len=8, val_fraction=0.3, root=tmp_path, exclude=["alpha/"])
    for split in ("train", "val"):
        files = only["split"][split]["files"]
        assert files and all(f.startswith("alpha/") or f == "top.py" for f in files)
        assert not any(f.startswith("alpha/") for f in rest["split"][split]["files"])
        assert set(files) <= set(whole["split"][split]["files"])
    assert "top.py" in only["split"]["train"]["files"] + only["split"]["val"]["files"]
    assert only["split"]["packages"] == ["alpha", "top.py"]
    assert rest["split"]["exclude"] == ["alpha/"]
    with pytest.raises(ValueError, match="'delta' names no .py file"):
        load_python_source(root=tmp_path, packages=["delta"])
    with pytest.raises(ValueError, match="exclude"):
        load_python_source(root=tmp_path, exclude=["alph"])
    with pytest.raises(ValueError, match="list of package"):
        load_python_source(root=tmp_path, packages="alpha")
    with pytest.raises(ValueError, match="leaves no file"):
        load_python_source(root=tmp_path, packages=["alpha"], exclude=["alpha"])
