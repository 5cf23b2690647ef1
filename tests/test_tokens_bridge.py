"""The R2DL bridge with the real MiniLM: sparse init, the k-sparse invariant, modes, inputs."""

import numpy as np
import pytest
import torch

from xmodal.bridges.tokens_to_embeddings import (
    TokensToEmbeddings,
    TokensToEmbeddingsConfig,
    code_sparsely,
    keep_top_k,
    target_embeddings,
)
from xmodal.data.tokenizers import (
    AMINO_ACIDS,
    Vocabulary,
    encode,
    make_tokenizer,
    token_counts,
)
from xmodal.errors import DataError, XmodalError
from xmodal.maps import LinearHead
from xmodal.reprogrammer import Reprogrammer
from xmodal.training.config import TrainConfig
from xmodal.training.loop import train

PROTEIN = make_tokenizer("protein")
VOCABULARY = Vocabulary.build(PROTEIN)


def build(minilm, mode="sparse", k=4, seed=0, init="spelled"):
    bridge = TokensToEmbeddings(TokensToEmbeddingsConfig(tokens=list(AMINO_ACIDS), mode=mode, sparsity=k, init=init))
    model = Reprogrammer(bridge, minilm, LinearHead(minilm.feature_dim, 2, seed=seed), ["AMP", "DECOY"], reads="features")
    bridge.initialise(seed)
    return model


def ids_of(sequences, max_tokens=510):
    return encode([PROTEIN.tokenize(s) for s in sequences], VOCABULARY, [str(i) for i in range(len(sequences))],
                  max_tokens).ids


def amp_subset(amp, n, seed=0):
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(amp.train), n, replace=False)
    y = torch.as_tensor((amp.train.labels[picks] == "DECOY").astype(np.int64))
    return ids_of([amp.train.sequences[i] for i in picks]), y


def test_omp_codes_have_k_nonzeros_and_fit_better_than_random_atoms(minilm):
    dictionary = minilm.embedding_matrix.numpy()
    targets = target_embeddings(minilm.embedding_matrix, 22, seed=0).numpy()
    codes = code_sparsely(targets, dictionary, 8)
    assert codes.shape == (22, 30522) and ((codes != 0).sum(axis=1) == 8).all()
    error = np.linalg.norm(codes @ dictionary - targets) / np.linalg.norm(targets)
    rng = np.random.default_rng(0)
    atoms = dictionary[rng.choice(30522, 8, replace=False)]  # least squares on 8 random atoms
    random_fit = atoms.T @ np.linalg.lstsq(atoms.T, targets.T, rcond=None)[0]
    assert error < 0.9 * np.linalg.norm(random_fit.T - targets) / np.linalg.norm(targets)


def test_keep_top_k_keeps_the_largest_entries():
    theta = torch.tensor([[0.1, -3.0, 2.0, 0.5], [1.0, 0.0, -0.2, 0.3]])
    assert torch.equal(keep_top_k(theta, 2), torch.tensor([[0.0, -3.0, 2.0, 0.0], [1.0, 0.0, 0.0, 0.3]]))


def test_spelled_init_starts_at_each_tokens_own_word_piece(minilm):
    model = build(minilm, k=4)
    theta, table = model.bridge.theta.detach(), model.bridge.token_table().detach()
    k_id = VOCABULARY.ids(["K"], "r")[0]
    piece = minilm.tokenizer.convert_tokens_to_ids("k")
    assert (theta[k_id] != 0).sum() == 1 and theta[k_id, piece] == pytest.approx(1.0, abs=1e-5)
    assert torch.allclose(table[k_id], minilm.embedding_matrix[piece], atol=1e-5)
    assert ((theta != 0).sum(dim=1) <= 4).all()
    random = build(minilm, k=4, init="random").bridge.theta.detach()
    assert ((random != 0).sum(dim=1) == 4).all()  # random targets need all k atoms
    with pytest.raises(DataError, match="init must be one of"):
        TokensToEmbeddingsConfig(tokens=["A"], init="zeros")


def test_sparsity_invariant_holds_after_training(minilm, amp):
    model = build(minilm, k=4, init="random")
    start = model.bridge.theta.detach().clone()
    x, y = amp_subset(amp, 48)
    train(model, x, y, TrainConfig(epochs=2, lr=0.05, batch_size=16, val_fraction=0, progress=False))
    theta = model.bridge.theta.detach()
    assert ((theta != 0).sum(dim=1) <= 4).all() and ((theta != 0).sum(dim=1) == 4).all()
    assert not torch.equal(theta, start)  # trained, and still k-sparse
    assert model.bridge.sparsity_report()["max_nonzeros_per_row"] == 4
    assert not any(p.requires_grad for p in minilm.parameters())


def test_dense_mode_fills_theta_and_prompt_mode_trains_only_the_prompt(minilm, amp):
    x, y = amp_subset(amp, 16)
    dense = build(minilm, mode="dense", k=4)
    train(dense, x, y, TrainConfig(epochs=1, batch_size=16, val_fraction=0, progress=False))
    assert dense.bridge.sparsity_report()["max_nonzeros_per_row"] > 1000
    prompt = build(minilm, mode="prompt")
    spelled = prompt.bridge.spelled.clone()
    assert torch.allclose(spelled[VOCABULARY.ids(["K"], "r")[0]], minilm.embedding_matrix[minilm.tokenizer.convert_tokens_to_ids("k")])
    names = {n for n, p in prompt.named_parameters() if p.requires_grad}
    assert names == {"bridge.prompt", "output_map.linear.weight", "output_map.linear.bias"}
    train(prompt, x, y, TrainConfig(epochs=1, batch_size=16, val_fraction=0, progress=False))
    assert torch.equal(prompt.bridge.spelled, spelled)


@pytest.mark.parametrize("mode", ["sparse", "prompt"])
def test_layout_cls_tokens_sep_and_mask(minilm, mode):
    model = build(minilm, mode=mode)
    ids = ids_of(["GLFK", "GL"])
    embeds, mask = model.bridge(ids)
    extra = 8 if mode == "prompt" else 0
    assert embeds.shape == (2, 4 + 2 + extra, 384)
    assert mask.tolist()[1] == [1] * (2 + 2 + extra) + [0, 0]
    cls, sep = minilm.embedding_matrix[[101, 102]]
    assert torch.equal(embeds[0, 0], cls) and torch.equal(embeds[0, 5 + extra], sep) and torch.equal(embeds[1, 3 + extra], sep)


def test_a_record_scores_the_same_alone_or_padded_in_a_batch(minilm):
    model = build(minilm)
    with torch.no_grad():
        batched = model.predict_proba(ids_of(["GLFDIVKKVVGALGSL", "GL"]))[1]
        alone = model.predict_proba(ids_of(["GL"]))[0]
    assert torch.allclose(batched, alone, atol=1e-5)


def test_bad_inputs_are_refused(minilm, source):
    model = build(minilm)
    with pytest.raises(DataError, match="torch.long"):
        model.bridge(torch.zeros(2, 3))
    with pytest.raises(DataError, match="token ids must be in"):
        model.bridge(torch.tensor([[2, 99]]))
    with pytest.raises(DataError, match="record 1 of the batch has no tokens"):
        model.bridge(torch.tensor([[2, 3], [0, 0]]))
    with pytest.raises(DataError, match="the source fits 510"):
        model.bridge(torch.full((1, 511), 2))
    with pytest.raises(XmodalError, match="feeds a text source"):
        Reprogrammer(TokensToEmbeddings(TokensToEmbeddingsConfig(tokens=["A"])), source, LinearHead(35, 2))
    with pytest.raises(DataError, match="bridge mode must be one of"):
        TokensToEmbeddingsConfig(tokens=["A"], mode="lora")
    with pytest.raises(XmodalError, match="tokens, width, positions"):
        Reprogrammer(TokensToEmbeddings(TokensToEmbeddingsConfig(tokens=["A"], max_positions=128)), minilm,
                     LinearHead(minilm.feature_dim, 2), reads="features")
    with pytest.raises(XmodalError, match="reads 384 features but 'minilm-l6' pools 8064"):
        Reprogrammer(TokensToEmbeddings(TokensToEmbeddingsConfig(tokens=["A"])), minilm, LinearHead(384, 2), reads="features")
    assert TokensToEmbeddingsConfig.from_dict({"tokens": ["A"]}).tokens == ["A"]
    with pytest.raises(TypeError, match="unknown TokensToEmbeddingsConfig setting"):
        TokensToEmbeddingsConfig.from_dict({"tokens": ["A"], "from_the_future": 1})
    assert token_counts(ids_of(["GLF", "G"])).tolist() == [3, 1]


@pytest.mark.parametrize("mode", ["sparse", "prompt"])
def test_the_start_view_stays_where_theta_started(minilm, amp, mode):
    """beside_start: view 0 reads theta as `initialise` left it, view 1 the trained theta; both are saved
    (in sparse mode as k values per row) and come back on load."""
    model = build(minilm, mode=mode)
    x, _ = amp_subset(amp, 6)
    with torch.no_grad():
        start = model.source_logits(x)
        model.bridge._theta.add_(0.05 * torch.randn_like(model.bridge._theta))
        model.bridge.constrain()
        trained = model.source_logits(x)
        model.bridge.config.beside_start = True
        both = model.source_logits(x)
    assert model.bridge.views == 2 and model.bridge.probe_views == 1
    assert not torch.allclose(start, trained, atol=1e-3)
    assert torch.equal(both, torch.cat([start, trained], dim=1))
    state = model.bridge.state_dict()
    if mode == "sparse":
        assert {"theta_values", "theta_start_values"} <= set(state) and "theta_start" not in state
    loaded = build(minilm, mode=mode, seed=1)
    loaded.bridge.config.beside_start = True
    loaded.bridge.load_state_dict(state)
    with torch.no_grad():
        assert torch.equal(loaded.source_logits(x), both)
    # a bridge that reads once saves no start, and its state still loads strictly into another
    model.bridge.config.beside_start = False
    once = model.bridge.state_dict()
    assert not any("start" in key for key in once)
    loaded.bridge.config.beside_start = False
    loaded.bridge.load_state_dict(once)
    with torch.no_grad():
        assert torch.equal(loaded.source_logits(x), trained)
