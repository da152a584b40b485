"""Loading by Hub repo id: snapshot_download into huggingface_hub's cache, from a local fake Hub."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

REPO = "tiny-org/LLaDA-tiny"


@pytest.fixture
def hub(fake_hub, tmp_path, monkeypatch):
    import huggingface_hub.constants as constants

    server = fake_hub(REPO)
    # What HF_ENDPOINT sets when huggingface_hub is imported (it was imported before this test).
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        server.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return server


def test_a_repo_id_loads_through_the_hub_cache(hub, tmp_path, tiny_torch):
    from llada_torch import load

    model, tokenizer = load(REPO, device="cpu")
    ids = torch.tensor([[3, 4, 5]])
    assert torch.equal(model(ids), tiny_torch[0](ids))
    assert (tmp_path / "hub" / "models--tiny-org--LLaDA-tiny").is_dir()
    assert all(".py" not in r.path for r in hub.requests)  # never any code from the repo


def test_an_unknown_repo_id_is_one_clear_error(hub):
    from llada_core.checkpoint import CheckpointError
    from llada_torch import load

    with pytest.raises(CheckpointError, match="could not download nobody/nothing"):
        load("nobody/nothing", device="cpu")
