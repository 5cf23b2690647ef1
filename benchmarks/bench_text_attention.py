"""MiniLM's attention kernels side by side, on the CPU: PyTorch's fused attention (sdpa, what the
encoder loads with) against the eager one, for reading alone and for backpropagation to the input
embeddings (what training R2DL's theta does), in bfloat16 autocast and in float32.

    OMP_NUM_THREADS=1 python benchmarks/bench_text_attention.py [--lengths 8,24,48,96,144,192,240] [--repeats 3]

A batch of 32 random embedding sequences (MiniLM's scale), every position attended; the time is the mean
of `repeats` passes after one warm-up pass, both kernels measured alternately in this one process. The
encoder is called directly, with the kernel set, and its hidden states summed; the last hidden states of
both kernels are compared too (largest absolute difference). The text source uses eager
attention where gradients flow to its inputs through at most EAGER_BACKPROP_POSITIONS positions
(adapters_modal.text). Writes benchmarks/results/text_attention.{json,md}.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import write_results  # noqa: E402

from adapters_modal.text import EAGER_BACKPROP_POSITIONS, SDPA, load_text_source  # noqa: E402

BATCH = 32
KERNELS = (SDPA, "eager")


def seconds(encoder, inputs: torch.Tensor, precision: str, backprop: bool, repeats: int) -> tuple[float, torch.Tensor]:
    """Mean seconds of one pass (the hidden states, and their backward to the inputs when `backprop`), and the
    last hidden states."""
    mask = torch.ones(inputs.shape[:2], dtype=torch.long)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bfloat16" else nullcontext()
    times = []
    for _ in range(repeats + 1):  # the first pass warms up
        embeds = inputs.clone().requires_grad_(backprop)
        start = time.perf_counter()
        with autocast, torch.set_grad_enabled(backprop):
            states = encoder(inputs_embeds=embeds, attention_mask=mask, output_hidden_states=True).hidden_states
        if backprop:
            sum(state.float().sum() for state in states).backward()
        times.append(time.perf_counter() - start)
    return sum(times[1:]) / repeats, states[-1].detach().float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", default="8,24,48,96,144,192,240")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    source = load_text_source("minilm-l6")
    encoder = source.encoder
    rows = []
    for length in (int(value) for value in args.lengths.split(",")):
        inputs = torch.randn(BATCH, length, source.input_spec.embedding_dim) * source.embedding_matrix.std()
        for precision in ("bfloat16", "float32"):
            for backprop in (False, True):
                measured = {}
                for kernel in KERNELS:
                    encoder.set_attn_implementation(kernel)
                    measured[kernel] = seconds(encoder, inputs, precision, backprop, args.repeats)
                encoder.set_attn_implementation(source.loaded_attention)
                rows.append({"positions": length, "precision": precision, "backprop": backprop,
                             **{f"{kernel}_s": round(measured[kernel][0], 4) for kernel in KERNELS},
                             "sdpa_over_eager": round(measured[SDPA][0] / measured["eager"][0], 2),
                             "max_state_difference": float((measured[SDPA][1] - measured["eager"][1]).abs().max())})
                print(rows[-1], flush=True)
    lines = [f"# MiniLM's attention kernels on the CPU ({BATCH} records per batch)", "",
             f"Machine: {platform.machine()}, threads {torch.get_num_threads()}, torch {torch.__version__}. "
             f"Command: `{' '.join(['benchmarks/bench_text_attention.py', *sys.argv[1:]])}`. Seconds per batch (the "
             "encoder's hidden states, and their backward to the input embeddings where 'backprop'), the mean of "
             f"{args.repeats} passes after a warm-up. The text source backpropagates through eager attention up to "
             f"{EAGER_BACKPROP_POSITIONS} positions on the CPU.", "",
             "| positions | precision | backprop | sdpa s | eager s | sdpa / eager | largest difference, last state |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['positions']} | {r['precision']} | {'yes' if r['backprop'] else 'no'} | {r['sdpa_s']:.3f} | "
              f"{r['eager_s']:.3f} | {r['sdpa_over_eager']:.2f} | {r['max_state_difference']:.2g} |" for r in rows]
    write_results("text_attention", rows, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
