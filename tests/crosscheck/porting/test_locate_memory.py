"""locate on a model that barely fits: no whole-model float64 copy, and gradients judged only on rows
whose float64 gradients fit beside both models (the others forward, saying so)."""

import numpy as np
import torch
from flax import nnx

from crosscheck import check, copy_torch_to_jax, locate
from crosscheck.porting import locating


class TorchWide(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.small = torch.nn.Linear(4, 4)
        self.wide = torch.nn.Linear(4, 64)

    def forward(self, x):
        return self.wide(torch.tanh(self.small(x)))


class JaxWide(nnx.Module):
    def __init__(self):
        self.small = nnx.Linear(4, 4, rngs=nnx.Rngs(0))
        self.wide = nnx.Linear(4, 64, rngs=nnx.Rngs(1))

    def __call__(self, x):
        return self.wide(nnx.tanh(self.small(x)))


def _pair():
    torch.manual_seed(0)
    ref, port = TorchWide(), JaxWide()
    copy_torch_to_jax(ref, port)
    return ref, port, np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)


def test_rows_too_large_for_float64_gradients_are_judged_forward_and_say_so(monkeypatch):
    monkeypatch.setattr(locating, "SMALL_MODEL", 0)
    ref, port, x = _pair()
    result = locate(port, ref, x, grads=True)
    rows = {layer.path: layer for layer in result.layers}
    assert result.passed and result.not_judged == [], str(result)
    assert any("grad" in item.item for item in rows["small"].items)  # 20 of 340 parameters: with gradients
    for path in ("", "wide"):
        assert rows[path].items and not any("grad" in item.item for item in rows[path].items)
        assert rows[path].notes and "gradients not judged" in rows[path].notes[0]
        assert "gradients not judged" in str(result)


def test_a_small_model_has_every_row_checked_with_gradients():
    ref, port, x = _pair()
    result = locate(port, ref, x, grads=True)
    assert all(any("grad" in item.item for item in layer.items) for layer in result.layers), str(result)
    assert all(not layer.notes for layer in result.layers)


def test_locate_leaves_every_torch_tensor_in_its_own_dtype_and_value():
    ref, port, x = _pair()
    ref = ref.to(torch.bfloat16)
    before = {k: v.detach().clone() for k, v in ref.state_dict().items()}
    locate(port, ref, x, grads=True)
    after = ref.state_dict()
    assert all(after[k].dtype == v.dtype and torch.equal(after[k], v) for k, v in before.items())


class TorchTokens(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4, padding_idx=0)
        self.proj = torch.nn.Linear(4, 4)

    def forward(self, ids):
        return self.proj(self.embed(ids))


class JaxTokens(nnx.Module):
    """Zeroes the padding row's gradient where the embedding is used, as a port of padding_idx does."""

    def __init__(self):
        self.embed = nnx.Embed(10, 4, rngs=nnx.Rngs(0))
        self.proj = nnx.Linear(4, 4, rngs=nnx.Rngs(1))

    def __call__(self, ids):
        import jax

        x = self.embed(ids)
        x = jax.numpy.where((ids == 0)[..., None], jax.lax.stop_gradient(x), x)
        return self.proj(x)


def test_an_embedding_with_a_padding_index_is_judged_forward_alone_and_the_honest_port_passes():
    torch.manual_seed(0)
    ref, port = TorchTokens(), JaxTokens()
    copy_torch_to_jax(ref, port)
    ids = np.array([[0, 3, 5, 0], [2, 0, 9, 1]], np.int32)
    result = locate(port, ref, ids, grads=True)
    rows = {layer.path: layer for layer in result.layers}
    assert result.passed and result.first_failure is None, str(result)
    assert "padding_idx=0" in rows["embed"].notes[0]
    assert any("grad" in item.item for item in rows["proj"].items)


def test_check_reports_its_three_phases_when_asked_and_nothing_by_default(capsys):
    from crosscheck import check

    ref, port, x = _pair()
    seen = []
    assert check(port, ref, x, progress=lambda done, total: seen.append((done, total))).passed
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    check(port, ref, x)
    assert capsys.readouterr().err == ""


def test_locate_and_check_hand_freed_memory_back_only_where_memory_is_short(monkeypatch):
    """A large model's freed pages go back to the system between phases and rows only where the model
    takes over a sixteenth of the machine: elsewhere a page handed back would only be faulted in again."""
    from crosscheck.porting import checking, streaming

    monkeypatch.setattr(streaming, "LARGE_MODEL", 0)  # the pair counts as large
    monkeypatch.setattr(streaming, "_LARGE", 0)  # and every row as worth releasing after
    released = []
    for module in (locating, checking):
        monkeypatch.setattr(module, "release_freed_memory", lambda *a, **k: released.append(1))
    ref, port, x = _pair()
    counts = {}
    for machine in ((20 * 2**30, 24 * 2**30), (1000, 1000)):  # plenty; less than 16x the pair's 1.4 KB
        monkeypatch.setattr(streaming, "system_memory", lambda machine=machine: machine)
        released.clear()
        assert locate(port, ref, x).passed
        located = len(released)
        assert check(port, ref, x).passed
        counts[machine[1]] = (located, len(released) - located)
    assert counts[24 * 2**30] == (0, 0)
    assert counts[1000][0] > 2 and counts[1000][1] == 1
