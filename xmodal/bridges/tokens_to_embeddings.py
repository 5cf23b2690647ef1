"""R2DL bridge: target tokens become combinations of the source's token embeddings.

    V_T' = Theta V_S,   Theta: N_T x N_S, k non-zeros per row   (Vinod, Chen & Das 2020)

A batch of target-token ids (N, L), right-padded with 0, becomes a text-source
input: [start] (prompt) V_T'[ids] [end] as `inputs_embeds` plus the attention
mask, where start/end are the source's own [CLS]/[SEP] embeddings. The
frozen language model therefore only ever sees points of its own embedding
space (sparse mixtures of English word pieces), never free vectors.

Modes:
  sparse  R2DL. Theta starts as the k-sparse OMP code (scikit-learn's
          orthogonal matching pursuit against the unit-normalised rows of V_S)
          of one target embedding per target token, and after every optimiser
          step is re-projected onto k non-zeros per row (largest |theta| kept).
  dense   ReprogBERT-style: the same start, no projection, Theta fills up.
  prompt  WARP-style: each target token is fixed to the source embedding of its
          own spelling (e.g. amino acid "K" -> word piece "k"); the only
          theta is `prompt_length` trainable embeddings after [CLS].

What Theta codes at init (`init`):
  spelled (default)  each target token's own spelling as the LM reads it
          (amino acid "K" -> word piece "k"; a multi-piece token such as
          "[nH]" -> the mean of its pieces). Training then starts where the
          frozen LM reads the sequence as spaced-out letters, a point from which
          the linear head alone is already informative, and the k - 1 atoms a
          one-piece spelling leaves free are filled by training (top-k keeps
          the entries the task gradient grows). With everything else equal it
          scored a little higher than random codes (README, R2DL results).
  random  seeded random vectors with V_S's per-dimension mean and std, coded
          with k atoms each: no prior relation between tokens (nearly
          orthogonal, so every token is distinguishable from the first step),
          at the scale the LM expects (the earlier default here).

Sequences longer than the model's positions are never cut here: the encoder
(`xmodal.data.tokenizers.encode`) applies the chosen truncation policy and counts
the records cut; this bridge refuses ids longer than `max_tokens`.

With `beside_start` the bridge has two views, read side by side under one probe, as the
series' filtered tones do (xmodal.bridges.filtered_tones): view 0 is theta as it started
(kept as a buffer from `initialise`), view 1 the trained theta. The estimator trains with
one view and turns the second on for the final probe (the trained view, estimators.base).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xmodal.data.tokenizers import token_counts
from xmodal.errors import DataError, XmodalError
from xmodal.settings_record import SettingsRecord

MODES = ("sparse", "dense", "prompt")
INITS = ("spelled", "random")


# k for sparse Theta. 200 of MiniLM's 30522 word pieces (0.7 % density): on ToxinPred fold 0
# the validation accuracy rose with k (k = 10 / 50 / 200: 0.944 / 0.958 / 0.961) while a dense
# Theta overfitted (0.931), see README "R2DL results".
DEFAULT_SPARSITY = 200


def reserved_positions(mode: str, prompt_length: int) -> int:
    """Source positions a record's tokens cannot use: [CLS], [SEP] and, in prompt mode, the prompt
    (a function, so `fit` can check record lengths before any bridge is built)."""
    return 2 + (prompt_length if mode == "prompt" else 0)


@dataclass
class TokensToEmbeddingsConfig(SettingsRecord):
    """tokens: the target vocabulary (ids 2.. ; 0 = pad, 1 = unk), saved so a reload encodes alike.
    alphabet: protein, dna or smiles. sparsity: k, non-zeros per row of Theta (sparse mode).
    init: what Theta codes at the start, "spelled" or "random" (module docstring).
    prompt_length: soft prompt tokens (prompt mode). source_vocab_size, embedding_dim,
    max_positions: the source's N_S, d and position limit, checked when the bridge meets its source.
    beside_start: two views, the start's reading and the trained one (set after training)."""

    tokens: list[str] = field(default_factory=list)
    alphabet: str = "protein"
    mode: str = "sparse"
    init: str = "spelled"
    sparsity: int = DEFAULT_SPARSITY
    prompt_length: int = 8
    source_vocab_size: int = 30522
    embedding_dim: int = 384
    max_positions: int = 512
    beside_start: bool = False

    def __post_init__(self):
        if self.mode not in MODES:
            raise DataError(f"bridge mode must be one of {MODES}, got {self.mode!r}")
        if self.init not in INITS:
            raise DataError(f"bridge init must be one of {INITS}, got {self.init!r}")
        if not self.tokens:
            raise DataError("the bridge needs a target vocabulary (tokens)")
        if not 1 <= self.sparsity <= self.source_vocab_size:
            raise DataError(f"sparsity k must be in [1, {self.source_vocab_size}], got {self.sparsity}")
        if self.prompt_length < 1:
            raise DataError(f"prompt_length must be at least 1, got {self.prompt_length}")
        self.tokens = list(self.tokens)
        if self.max_tokens < 1:
            raise DataError(f"no room for tokens: {self.max_positions} positions, {self._overhead} reserved")

    def to_dict(self) -> dict:
        """The settings as saved; beside_start only where it is set, so a run that reads once stays
        readable by an xmodal that predates the trained view (format version 6, xmodal.persistence)."""
        values = super().to_dict()
        if not self.beside_start:
            del values["beside_start"]
        return values

    @property
    def _overhead(self) -> int:
        return reserved_positions(self.mode, self.prompt_length)

    @property
    def max_tokens(self) -> int:
        """Target tokens per record that fit the source's positions."""
        return self.max_positions - self._overhead

    @property
    def num_target_tokens(self) -> int:
        return len(self.tokens) + 2


def code_sparsely(targets: np.ndarray, dictionary: np.ndarray, k: int) -> np.ndarray:
    """(N_T, N_S) codes with at most k non-zeros per row: targets ~ codes @ dictionary.

    OMP picks atoms by correlation, which favours long rows, so it runs on
    unit-normalised rows and the codes are rescaled back."""
    from sklearn.linear_model import orthogonal_mp

    norms = np.linalg.norm(dictionary, axis=1)
    norms[norms == 0] = 1.0
    with warnings.catch_warnings():
        # A target that is itself an atom (a spelled one-piece token) is coded exactly by
        # one atom; OMP then stops early and warns, which is the right outcome here.
        warnings.filterwarnings("ignore", "Orthogonal matching pursuit ended prematurely", RuntimeWarning)
        codes = orthogonal_mp((dictionary / norms[:, None]).T, targets.T, n_nonzero_coefs=k, precompute=False)
    return (np.atleast_2d(codes.T) / norms[None, :]).astype(np.float32)


def keep_top_k(theta: torch.Tensor, k: int) -> torch.Tensor:
    """Theta with all but the k largest |entries| of each row set to zero."""
    keep = torch.zeros_like(theta, dtype=torch.bool).scatter_(1, theta.abs().topk(k, dim=1).indices, True)
    return theta * keep


def target_embeddings(source_embeddings: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """Random vectors with V_S's per-dimension mean and std (what sparse mode codes), on V_S's
    device; drawn on the CPU, so a seed gives the same vectors on any device."""
    generator = torch.Generator().manual_seed(seed)
    mean, std = source_embeddings.mean(dim=0), source_embeddings.std(dim=0)
    noise = torch.randn(count, source_embeddings.shape[1], generator=generator, dtype=source_embeddings.dtype)
    return mean + std * noise.to(source_embeddings.device)


SPARSE_TENSORS = ("theta", "theta_start")  # k-sparse rows in sparse mode: saved as values and column indices


def _pack_theta(bridge, state, prefix, _metadata) -> None:
    """theta's start is saved only where it is read (beside_start); k-sparse rows as values and column indices."""
    if not bridge.config.beside_start:
        state.pop(prefix + bridge.start_name)
    if bridge.config.mode != "sparse":
        return
    for name in SPARSE_TENSORS:
        if prefix + name in state:
            theta = state.pop(prefix + name)
            indices = theta.abs().topk(bridge.config.sparsity, dim=1).indices
            state[prefix + name + "_values"], state[prefix + name + "_indices"] = theta.gather(1, indices), indices


def _unpack_theta(bridge, state, prefix, *_) -> None:
    if prefix + bridge.start_name not in state and prefix + "theta_start_values" not in state:
        state[prefix + bridge.start_name] = getattr(bridge, bridge.start_name)  # not saved: the start stays as it is
    for name in SPARSE_TENSORS:
        if prefix + name + "_values" in state:
            values, indices = state.pop(prefix + name + "_values"), state.pop(prefix + name + "_indices")
            device = bridge.theta.device  # a saved state is on the CPU, the bridge may be on a GPU
            state[prefix + name] = bridge.theta.new_zeros(bridge.theta.shape).scatter(
                1, indices.long().to(device), values.to(device))


class TokensToEmbeddings(nn.Module):
    """Padded target-token ids (N, L) -> TextInput for a frozen text source; with `beside_start`,
    also the start's (view 0)."""

    probe_views = 1  # both views read the same records: one probe of them side by side, no per-view reduction

    def __init__(self, config: TokensToEmbeddingsConfig):
        super().__init__()
        self.config = config
        if config.mode == "prompt":
            self.prompt = nn.Parameter(torch.zeros(config.prompt_length, config.embedding_dim))
        else:
            self.theta = nn.Parameter(torch.zeros(config.num_target_tokens, config.source_vocab_size))
        self.register_buffer(self.start_name, torch.zeros_like(self._theta))
        self.register_state_dict_post_hook(_pack_theta)  # sparse: k values + column indices per row, not N_T x N_S
        self.register_load_state_dict_pre_hook(_unpack_theta)
        self._source = None  # the text source, bound by the Reprogrammer; never saved

    @property
    def _theta(self) -> nn.Parameter:
        """What trains: the prompt in prompt mode, else Theta."""
        return self.prompt if self.config.mode == "prompt" else self.theta

    @property
    def start_name(self) -> str:
        """The buffer holding the trained tensor's start (`initialise`'s value): read as view 0."""
        return "prompt_start" if self.config.mode == "prompt" else "theta_start"

    @property
    def views(self) -> int:
        return 2 if self.config.beside_start else 1

    def bind_source(self, source) -> None:
        """Read V_S, [CLS]/[SEP] and (prompt mode) spelled embeddings from the frozen source."""
        spec = source.input_spec
        if spec.modality != "text":
            raise XmodalError(f"the token bridge feeds a text source, {source.name!r} takes {spec.modality}")
        expected = (self.config.source_vocab_size, self.config.embedding_dim, self.config.max_positions)
        if (spec.vocab_size, spec.embedding_dim, spec.max_positions) != expected:
            raise XmodalError(f"bridge built for a source with (tokens, width, positions) {expected}, "
                              f"{source.name!r} has {(spec.vocab_size, spec.embedding_dim, spec.max_positions)}; "
                              "build the bridge from this source")
        start, end = source.special_token_ids
        if start is None or end is None:
            raise XmodalError(f"{source.name!r} has no start/end ([CLS]/[SEP]) tokens; the bridge needs both")
        object.__setattr__(self, "_source", source)  # not a submodule: the source stays outside theta
        self.register_buffer("ends", source.embedding_matrix[[start, end]].detach().clone(), persistent=False)
        if self.config.mode == "prompt":
            spelled = self._spelled(source)
            self.register_buffer("spelled", spelled, persistent=False)

    def _spelled(self, source) -> torch.Tensor:
        """(N_T, d): every target id's spelling as the source reads it (pad and unk by the LM's own)."""
        return source.spelled_embeddings(["[PAD]", "[UNK]", *self.config.tokens])

    @property
    def source_embeddings(self) -> torch.Tensor:
        if self._source is None:
            raise XmodalError("the bridge is not bound to a source; build it inside a Reprogrammer")
        return self._source.embedding_matrix

    @torch.no_grad()
    def initialise(self, seed: int) -> None:
        """Sparse/dense: Theta <- k-sparse OMP code of the spelled or random target
        embeddings (`config.init`). Prompt: the prompt starts as randomly chosen
        word-piece embeddings (real points of V_S)."""
        vocabulary = self.source_embeddings
        if self.config.mode == "prompt":
            generator = torch.Generator().manual_seed(seed)
            picks = torch.randint(0, len(vocabulary), (self.config.prompt_length,), generator=generator)
            self.prompt.copy_(vocabulary[picks.to(vocabulary.device)])
        else:
            if self.config.init == "spelled":
                targets = self._spelled(self._source)
            else:
                targets = target_embeddings(vocabulary, self.config.num_target_tokens, seed)
            # OMP is scikit-learn's, on the CPU: the same code on any device
            codes = code_sparsely(targets.cpu().numpy(), vocabulary.cpu().numpy(), self.config.sparsity)
            self.theta.copy_(torch.from_numpy(codes))
        getattr(self, self.start_name).copy_(self._theta)

    @torch.no_grad()
    def constrain(self) -> None:
        """After an optimiser step: back onto k non-zeros per row (sparse mode only)."""
        if self.config.mode == "sparse":
            self.theta.copy_(keep_top_k(self.theta, self.config.sparsity))

    def sparsity_report(self) -> dict:
        if self.config.mode == "prompt":
            return {"mode": "prompt", "trainable": self.prompt.numel()}
        nonzeros = (self.theta != 0).sum(dim=1)
        return {"mode": self.config.mode, "k": self.config.sparsity if self.config.mode == "sparse" else None,
                "max_nonzeros_per_row": int(nonzeros.max()), "mean_nonzeros_per_row": float(nonzeros.float().mean()),
                "density": float(nonzeros.sum()) / self.theta.numel()}

    def token_table(self, start: bool = False) -> torch.Tensor:
        """(N_T, d): the embedding each target token enters the source with (start: with theta's start)."""
        if self.config.mode == "prompt":
            return self.spelled
        return (self.theta_start if start else self.theta) @ self.source_embeddings

    def forward(self, ids: torch.Tensor, view: int = 1):
        """View 1 (the only one without beside_start): the trained theta; view 0: theta at its start."""
        from adapters_modal.text import TextInput

        start = view == 0 and self.config.beside_start
        ids = self._checked(ids)
        lengths = token_counts(ids)
        ids = ids[:, : int(lengths.max())]  # right-padded: columns past the longest record are all padding
        # F.embedding, not table[ids]: the backward of advanced indexing (an accumulating
        # index_put) gave Theta's gradient different last bits from run to run with two torch
        # threads; the embedding backward is deterministic. The forward is the same gather.
        tokens = F.embedding(ids, self.token_table(start))
        n, dim = len(ids), tokens.shape[2]
        parts = [self.ends[0].expand(n, 1, dim)]
        if self.config.mode == "prompt":
            parts.append((self.prompt_start if start else self.prompt).expand(n, -1, -1))
        offset = sum(p.shape[1] for p in parts)
        body = torch.cat(parts + [tokens, tokens.new_zeros(n, 1, dim)], dim=1)
        positions = torch.arange(body.shape[1], device=body.device)
        end_at = (offset + lengths)[:, None]
        embeds = torch.where((positions == end_at)[..., None], self.ends[1], body)
        return TextInput(embeds, (positions <= end_at).long())

    def _checked(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.dtype != torch.long or ids.ndim != 2:
            raise DataError(f"the token bridge takes a (N, L) tensor of token ids (torch.long), got "
                            f"{tuple(ids.shape)} {ids.dtype}; encode sequences with xmodal.data.tokenizers.encode")
        if len(ids) == 0:
            raise DataError("empty batch")
        if int(ids.min()) < 0 or int(ids.max()) >= self.config.num_target_tokens:
            raise DataError(f"token ids must be in [0, {self.config.num_target_tokens}); this bridge's vocabulary "
                            "has fewer tokens; encode with the vocabulary saved in the bridge")
        lengths = token_counts(ids)
        if int(lengths.min()) == 0:
            raise DataError(f"record {int(lengths.argmin())} of the batch has no tokens")
        if int(lengths.max()) > self.config.max_tokens:
            raise DataError(f"a record has {int(lengths.max())} tokens, the source fits {self.config.max_tokens}; "
                            "truncate when encoding (truncation='keep_start' or 'keep_end')")
        return ids
