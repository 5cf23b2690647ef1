"""The MiniLM text source: packaged weights, frozen, inputs_embeds forward, layer-wise pooling."""

import pytest
import torch

from adapters_modal import load_source, local_weights
from adapters_modal.text import EAGER_BACKPROP_POSITIONS, MINILM_WEIGHTS, TextInput, TextSource, load_text_source
from xmodal.errors import WeightsError, XmodalError


def test_minilm_loads_offline_frozen_with_its_identity(minilm):
    assert minilm.identity == {"name": "minilm-l6", "weights_sha256": MINILM_WEIGHTS.sha256}
    assert not any(p.requires_grad for p in minilm.parameters())
    minilm.train()
    assert not minilm.training
    spec = minilm.input_spec
    assert (spec.modality, spec.vocab_size, spec.embedding_dim, spec.max_positions) == ("text", 30522, 384, 512)
    assert minilm.embedding_matrix.shape == (30522, 384)
    assert local_weights("minilm-l6").name == "model"


def test_features_pool_every_layer_and_hold_the_sentence_embedding(minilm):
    """Features hold one mean-pooled block per hidden state (embeddings + 6 layers), then one
    max-pooled and one min-pooled block per hidden state. The last mean block, through
    inputs_embeds, reproduces all-MiniLM-L6-v2's own sentence embeddings; the last max (min)
    block is the last layer's maximum (minimum) over the attended positions."""
    from sentence_transformers import SentenceTransformer

    texts = ["antimicrobial peptides kill bacteria", "a short one"]
    reference = SentenceTransformer(str(local_weights("minilm-l6")), device="cpu").encode(texts, convert_to_tensor=True)
    inputs = minilm.text_inputs(texts)
    with torch.no_grad():
        features = minilm.features(inputs)
        last_layer = minilm.hidden_states(inputs)[-1]
    assert minilm.feature_dim == 3 * 7 * 384 and features.shape == (2, 3 * 7 * 384)
    means, maxima, minima = features.split(7 * 384, dim=1)
    ours = torch.nn.functional.normalize(means[:, -384:], dim=1)
    assert torch.allclose(ours, reference, atol=1e-5)
    assert not torch.allclose(means[:, :384], means[:, -384:], atol=1e-2)  # distinct layers, not copies
    short = int(inputs.attention_mask[1].sum())  # the padded record: its extremes ignore the padding
    assert torch.allclose(maxima[1, -384:], last_layer[1, :short].amax(dim=0))
    assert torch.allclose(minima[1, -384:], last_layer[1, :short].amin(dim=0))
    assert not torch.allclose(minima[1, -384:], last_layer[1].amin(dim=0))  # padding would change it
    assert torch.allclose(maxima[0, -384:], last_layer[0].amax(dim=0))
    assert torch.allclose(minima[0, -384:], last_layer[0].amin(dim=0))


def test_gradient_reaches_the_embeddings_not_the_weights(minilm):
    inputs = minilm.text_inputs(["hello world"])
    embeds = inputs.inputs_embeds.detach().requires_grad_()
    minilm.features(TextInput(embeds, inputs.attention_mask)).sum().backward()
    assert embeds.grad is not None and embeds.grad.abs().sum() > 0
    assert all(p.grad is None for p in minilm.parameters())


def test_bfloat16_autocast_runs_a_bfloat16_copy_and_keeps_the_source_in_float32(minilm):
    """Under the CPU's bfloat16 autocast the encoder runs as a frozen bfloat16 copy (autocast would cast every
    frozen weight on every call): the source itself stays float32 (the bridge builds its inputs from
    V_S), states and features come back in the inputs' dtype within bfloat16's rounding of float32's, padding
    positions change nothing beyond that rounding (a batch may round differently from a lone record where the CPU
    has no native bfloat16: 0.7 % on an AVX2 machine; padding that leaked would move it by about 70 %), and
    gradients still reach the float32 inputs, not the copy."""
    inputs = minilm.text_inputs(["k l m n p q r s", "a"])
    with torch.no_grad():
        full = minilm.features(inputs)
    minilm._bfloat16_copy = None
    embeds = inputs.inputs_embeds.detach().clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reduced = minilm.features(TextInput(embeds, inputs.attention_mask))
        with torch.no_grad():  # one kernel (sdpa) for both
            batched, alone = minilm.features(inputs)[1], minilm.features(minilm.text_inputs(["a"]))[0]
    reduced.sum().backward()
    assert minilm._bfloat16_copy is not None  # made by the reading above
    made = minilm._bfloat16_copy[1]
    copy = minilm.bfloat16_encoder()
    assert copy is made  # made once
    assert next(copy.parameters()).dtype == torch.bfloat16 and copy.config is minilm.encoder.config
    assert not any(p.requires_grad or p.grad is not None for p in copy.parameters())
    assert all(p.dtype == torch.float32 for p in minilm.parameters())
    assert reduced.dtype == torch.float32 and not torch.equal(reduced, full)
    assert ((reduced - full).norm() / full.norm()).item() < 0.01
    assert ((batched - alone).norm() / alone.norm()).item() < 0.01
    assert embeds.grad is not None and embeds.grad.abs().sum() > 0


def test_backpropagation_in_bfloat16_runs_eager_attention(minilm):
    """sdpa's backward under the CPU's bfloat16 autocast costs up to about 2.2 times eager attention's
    (benchmarks/results/text_attention.md): where gradients flow to the inputs there, through at most
    EAGER_BACKPROP_POSITIONS positions, the encoder runs eager attention; any other call, the sdpa it was
    loaded with (reading without gradients, float32, longer inputs)."""
    def kernel(embeds: torch.Tensor, bfloat16: bool = True) -> str:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            minilm.features(TextInput(embeds, torch.ones(embeds.shape[:2], dtype=torch.long)))
        return minilm.encoder.config._attn_implementation

    embeds = minilm.text_inputs(["k l m n p q r s"]).inputs_embeds.detach()
    assert kernel(embeds.clone().requires_grad_()) == "eager"
    assert kernel(embeds) == "sdpa"
    with torch.no_grad():  # an input that asks for gradients, read where none flow
        assert kernel(embeds.clone().requires_grad_()) == "sdpa"
    assert kernel(embeds.clone().requires_grad_(), bfloat16=False) == "sdpa"
    assert kernel(embeds.clone().requires_grad_()) == "eager"
    assert kernel(torch.zeros(1, EAGER_BACKPROP_POSITIONS + 1, 384, requires_grad=True)) == "sdpa"


def test_the_attention_kernels_are_one_function(minilm):
    """Switching kernels changes the time, not the model: in float32 the hidden states and the gradients
    reaching the input embeddings of a padded batch agree between sdpa and eager attention."""
    inputs = minilm.text_inputs(["k l m n p q r s", "a"])
    results = {}
    try:
        for kernel in ("sdpa", "eager"):
            minilm.encoder.set_attn_implementation(kernel)
            embeds = inputs.inputs_embeds.detach().clone().requires_grad_()
            states = minilm.encoder(inputs_embeds=embeds, attention_mask=inputs.attention_mask,
                                    output_hidden_states=True).hidden_states
            (states[-1] * inputs.attention_mask.unsqueeze(-1)).sum().backward()
            results[kernel] = (states[-1].detach(), embeds.grad)
    finally:
        minilm.encoder.set_attn_implementation(minilm.loaded_attention)
    for sdpa, eager in zip(*results.values()):  # float error against each tensor's own scale (2e-6 measured)
        assert (sdpa - eager).abs().max() <= 1e-5 * sdpa.abs().max()
    assert results["sdpa"][1].abs().sum() > 0


def test_padding_positions_do_not_change_features(minilm):
    inputs = minilm.text_inputs(["k l m n p q r s", "a"])
    with torch.no_grad():
        batched = minilm.features(inputs)[1]
        alone = minilm.features(minilm.text_inputs(["a"]))[0]
    assert torch.allclose(batched, alone, atol=1e-5)


def test_too_many_positions_and_head_are_clear_errors(minilm):
    long = TextInput(torch.zeros(1, 513, 384), torch.ones(1, 513, dtype=torch.long))
    with pytest.raises(XmodalError, match="at most 512"):
        minilm.features(long)
    with pytest.raises(XmodalError, match="without classes"):
        minilm.logits(minilm.text_inputs(["x"]))


def test_explicit_folder_loads_and_wrong_files_are_refused(tmp_path):
    folder = local_weights("minilm-l6")
    assert load_source("minilm-l6", folder).identity["weights_sha256"] == MINILM_WEIGHTS.sha256
    fake = tmp_path / "model.safetensors"
    fake.write_bytes(b"not a model")
    with pytest.raises(WeightsError, match="sha256"):
        load_source("minilm-l6", fake)
    with pytest.raises(WeightsError, match="does not exist"):
        load_source("minilm-l6", tmp_path / "missing" / "model.safetensors")


def test_any_local_encoder_folder_or_missing_hub_id(tmp_path):
    source = load_text_source(str(local_weights("minilm-l6")))
    assert isinstance(source, TextSource) and source.identity["weights_sha256"] == MINILM_WEIGHTS.sha256
    with pytest.raises(WeightsError, match="HF_HUB_OFFLINE"):
        load_text_source("no-such-org/no-such-model")
    with pytest.raises(XmodalError, match="takes audio, not text"):
        load_text_source("bc-resnet-gsc35")
