"""AttRNN (de Andrade et al. 2018, arXiv 1808.08929), the network only, and
its weights read from the publisher's Keras HDF5 file with h5py.

The source model Voice2Series reprograms ("V2Sa"). Input: the standardised
log-mel (N, 125, 80) of adapters_modal.tf_log_mel. Layer names follow the
Keras model, so each torch module says which HDF5 group fills it.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

from adapters_modal.packaged import mean_max

from xmodal.errors import WeightsError

KERAS_BATCHNORM_EPSILON = 1e-3


class AttRNN(nn.Module):
    """Conv(5x1) x2 over time -> 2 BiLSTM(64) -> dot-product attention queried by
    the last step -> Dense 64 (relu) -> Dense 32 -> 36 classes."""

    def __init__(self, num_mel_bins: int = 80, num_classes: int = 36):
        super().__init__()
        self.conv2d = nn.Conv2d(1, 10, (5, 1), padding="same")
        self.batch_normalization = nn.BatchNorm2d(10, eps=KERAS_BATCHNORM_EPSILON)
        self.conv2d_1 = nn.Conv2d(10, 1, (5, 1), padding="same")
        self.batch_normalization_1 = nn.BatchNorm2d(1, eps=KERAS_BATCHNORM_EPSILON)
        self.bidirectional = nn.LSTM(num_mel_bins, 64, batch_first=True, bidirectional=True)
        self.bidirectional_1 = nn.LSTM(128, 64, batch_first=True, bidirectional=True)
        self.dense = nn.Linear(128, 128)
        self.dense_1 = nn.Linear(128, 64)
        self.dense_2 = nn.Linear(64, 32)
        self.output = nn.Linear(32, num_classes)

    def _layers(self, log_mel: torch.Tensor) -> list[torch.Tensor]:
        """Every block's output, in order; the last is the penultimate representation."""
        x = log_mel.unsqueeze(1)  # (N, 1, time, mel): the Keras convs slide over time only
        conv = self.batch_normalization(torch.relu(self.conv2d(x)))
        conv_1 = self.batch_normalization_1(torch.relu(self.conv2d_1(conv)))
        lstm, _ = self.bidirectional(conv_1.squeeze(1))
        lstm_1, _ = self.bidirectional_1(lstm)  # (N, T, 128)
        query = self.dense(lstm_1[:, -1])
        attention = torch.softmax(torch.einsum("nd,ntd->nt", query, lstm_1), dim=1)
        context = torch.einsum("nt,ntd->nd", attention, lstm_1)
        hidden = torch.relu(self.dense_1(context))
        return [conv, conv_1, lstm, lstm_1, context, hidden, self.dense_2(hidden)]

    def features(self, log_mel: torch.Tensor) -> torch.Tensor:
        """The penultimate representation (N, 32): dense_2, linear in Keras."""
        return self._layers(log_mel)[-1]

    def layer_statistics(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Every block pooled (N, 2 496): the convolutions' mean and max over time per channel
        and mel band, the LSTMs' mean and max over time, then the attention context and the
        dense layers as they are (they have no time axis left)."""
        conv, conv_1, lstm, lstm_1, *vectors = self._layers(log_mel)
        pooled = [s.flatten(1) for block in (conv, conv_1) for s in mean_max(block, (2,))]
        pooled += [s for block in (lstm, lstm_1) for s in mean_max(block, (1,))]
        return torch.cat(pooled + vectors, dim=1)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits; Keras applies the softmax inside its output layer."""
        return self.output(features)

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(log_mel))


def _conv(kernel: np.ndarray) -> np.ndarray:
    return kernel.transpose(3, 2, 0, 1)  # Keras (kh, kw, in, out) -> torch (out, in, kh, kw)


def _keras_tensors(layer: str, group: h5py.Group) -> dict[str, np.ndarray]:
    """{weight name without layer prefix and ':0' -> array} for one Keras layer."""
    found: dict[str, np.ndarray] = {}
    group.visititems(lambda name, item: found.__setitem__(name.removesuffix(":0"), item[()])
                     if isinstance(item, h5py.Dataset) else None)
    return found


def _torch_state(weights: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Keras tensors -> AttRNN state-dict entries. LSTM gates are i, f, c, o in
    both libraries; Keras' kernels are transposed and its one bias goes to
    bias_ih (bias_hh is zero)."""
    state: dict[str, np.ndarray] = {}
    for name in ("conv2d", "conv2d_1"):
        state[f"{name}.weight"] = _conv(weights[name][f"{name}/kernel"])
        state[f"{name}.bias"] = weights[name][f"{name}/bias"]
    for name in ("batch_normalization", "batch_normalization_1"):
        for keras, torch_name in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
                                  ("moving_variance", "running_var")):
            state[f"{name}.{torch_name}"] = weights[name][f"{name}/{keras}"]
    for name in ("dense", "dense_1", "dense_2", "output"):
        state[f"{name}.weight"] = weights[name][f"{name}/kernel"].T
        state[f"{name}.bias"] = weights[name][f"{name}/bias"]
    for name in ("bidirectional", "bidirectional_1"):
        for direction, suffix in (("forward", ""), ("backward", "_reverse")):
            # keys look like "bidirectional/forward_lstm/lstm_cell_1/kernel"
            tensors = {key.rsplit("/", 1)[1]: value for key, value in weights[name].items()
                       if key.split("/")[1].startswith(f"{direction}_")}
            state[f"{name}.weight_ih_l0{suffix}"] = tensors["kernel"].T
            state[f"{name}.weight_hh_l0{suffix}"] = tensors["recurrent_kernel"].T
            state[f"{name}.bias_ih_l0{suffix}"] = tensors["bias"]
            state[f"{name}.bias_hh_l0{suffix}"] = np.zeros_like(tensors["bias"])
    return state


def load_keras_weights(network: AttRNN, path: Path) -> AttRNN:
    """Fill `network` from the Keras HDF5 file at `path` (strict: every torch
    tensor must be found with its exact shape)."""
    try:
        with h5py.File(path, "r") as handle:
            root = handle["model_weights"]
            weights = {layer: _keras_tensors(layer, root[layer]) for layer in root if len(root[layer])}
        state = {key: torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
                 for key, value in _torch_state(weights).items()}
        network.load_state_dict(state, strict=True)
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise WeightsError(
            f"cannot read AttRNN weights from {path} ({exc}); it must be the Keras HDF5 file model-attRNN.h5 "
            "of douglas125/SpeechCmdRecognition"
        ) from exc
    return network
