"""Every file a model folder's weight index names must lie inside the folder: a downloaded index
naming ../../ or an absolute path is refused before anything is opened."""

from __future__ import annotations

import json

import pytest

from llada_core.checkpoint import CheckpointError, weight_files


def folder_with_index(tmp_path, names):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {f"w{i}": name for i, name in enumerate(names)}}))
    return folder


@pytest.mark.parametrize("name", [
    "../secret.safetensors", "../../etc/passwd", "/etc/passwd", "sub/../../x.safetensors",
    "..\\..\\x.safetensors", "C:\\Windows\\x.safetensors", "", 5, ["a"],
])
def test_names_outside_the_folder_are_refused(tmp_path, name):
    outside = tmp_path / "secret.safetensors"
    outside.write_bytes(b"")
    with pytest.raises(CheckpointError) as error:
        weight_files(folder_with_index(tmp_path, ["model.safetensors", name]))
    assert "\n" not in str(error.value)


def test_names_inside_the_folder_and_hub_links_load(tmp_path):
    folder = folder_with_index(tmp_path, ["model.safetensors", "shards/part.safetensors"])
    (folder / "shards").mkdir()
    # A Hub cache snapshot links its files to blobs outside the snapshot folder: still fine.
    blob = tmp_path / "blob"
    blob.write_bytes(b"")
    (folder / "shards" / "part.safetensors").symlink_to(blob)
    assert [p.name for p in weight_files(folder)] == ["model.safetensors", "part.safetensors"]


def test_the_bundled_demo_still_loads_its_files():
    from app.models.catalog import bundled_demo_model

    demo = bundled_demo_model()
    if demo is None:
        pytest.skip("no bundled demo")
    assert weight_files(demo)
