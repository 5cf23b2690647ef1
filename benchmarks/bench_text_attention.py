"""MiniLM's attention kernels side by side, on the CPU: PyTorch's fused attention (sdpa, what the
encoder loads with) against the eager one, for reading alone and for backpropagation to the input
embeddings (what training R2DL's theta does), in each way the text source computes: its bfloat16 copy (what it
runs under bfloat16 autocast), the float32 encoder under bfloat16 autocast (what it ran before that copy,
docs/experiments.md 0.36), and float32.

    OMP_NUM_THREADS=1 python benchmarks/bench_text_attention.py [--lengths 8,24,48,96,144,192,240] [--repeats 3]

A batch of 32 random embedding sequences (MiniLM's scale), every position attended; the time is the mean
of `repeats` passes after one warm-up pass, both kernels measured alternately in this one process. The
encoder (or its bfloat16 copy, which shares its kernel) is called directly, with the kernel set, and its hidden
states summed; the last hidden states of both kernels are compared too (largest absolute difference). A second
table sets the copy against autocast, each with the kernel the source picks. The text source uses eager
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
PRECISIONS = ("bfloat16 copy", "autocast", "float32")  # the bfloat16 copy; the float32 encoder under autocast


def seconds(source, inputs: torch.Tensor, precision: str, backprop: bool, repeats: int) -> tuple[float, torch.Tensor]:
    """Mean seconds of one pass (the hidden states, and their backward to the inputs when `backprop`), and the
    last hidden states."""
    mask = torch.ones(inputs.shape[:2], dtype=torch.long)
    copy = precision == "bfloat16 copy"
    encoder = source.bfloat16_encoder() if copy else source.encoder
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "autocast" else nullcontext()
    times = []
    for _ in range(repeats + 1):  # the first pass warms up
        embeds = inputs.clone().requires_grad_(backprop)
        start = time.perf_counter()
        with autocast, torch.set_grad_enabled(backprop):
            states = encoder(inputs_embeds=embeds.to(torch.bfloat16) if copy else embeds, attention_mask=mask,
                             output_hidden_states=True).hidden_states
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
    encoder = source.encoder  # switching its kernel switches the copy's: they share one config
    rows = []
    for length in (int(value) for value in args.lengths.split(",")):
        inputs = torch.randn(BATCH, length, source.input_spec.embedding_dim) * source.embedding_matrix.std()
        for precision in PRECISIONS:
            for backprop in (False, True):
                measured = {}
                for kernel in KERNELS:
                    encoder.set_attn_implementation(kernel)
                    measured[kernel] = seconds(source, inputs, precision, backprop, args.repeats)
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
             f"{EAGER_BACKPROP_POSITIONS} positions on the CPU. Precision: 'bfloat16 copy' is the encoder's bfloat16 "
             "copy, what the text source runs under bfloat16 autocast; 'autocast' the float32 encoder under bfloat16 "
             "autocast, what it ran before (docs/experiments.md 0.36); 'float32' without autocast.", "",
             "| positions | precision | backprop | sdpa s | eager s | sdpa / eager | largest difference, last state |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['positions']} | {r['precision']} | {'yes' if r['backprop'] else 'no'} | {r['sdpa_s']:.3f} | "
              f"{r['eager_s']:.3f} | {r['sdpa_over_eager']:.2f} | {r['max_state_difference']:.2g} |" for r in rows]
    lines += ["", "The bfloat16 copy against the float32 encoder under autocast, each with the kernel the source picks "
              "(eager for backpropagation up to the limit, else sdpa):", "",
              "| positions | backprop | autocast s | copy s | autocast / copy |", "|---|---|---|---|---|"]
    for length, backprop in sorted({(r["positions"], r["backprop"]) for r in rows}):
        kernel = "eager" if backprop and length <= EAGER_BACKPROP_POSITIONS else SDPA
        pair = {r["precision"]: r[f"{kernel}_s"] for r in rows if (r["positions"], r["backprop"]) == (length, backprop)}
        autocast, copy = pair["autocast"], pair["bfloat16 copy"]
        backprop_text = "yes" if backprop else "no"
        lines.append(f"| {length} | {backprop_text} | {autocast:.3f} | {copy:.3f} | {autocast / copy:.2f} |")
    write_results("text_attention", rows, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
