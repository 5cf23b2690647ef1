"""`xmodal fit --search [GRID]`: choose the V2S hyper-parameters on the training split.

    xmodal fit --dataset GunPoint --search            # the "small" grid of xmodal.training.search
    xmodal fit --dataset GunPoint --search tiny --search-folds 3

Prints every candidate's held-out score and the choice; metrics.json gets a
"search" entry with the grid, the scores, the method and the chosen settings.
"""

from __future__ import annotations

import argparse
import sys

from xmodal.training.search import GRIDS


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    search = parser.add_argument_group("hyper-parameter search (series task)")
    search.add_argument("--search", nargs="?", const="small", choices=sorted(GRIDS),
                        help="choose mapping, copies, upsampling, mask, lr and epochs on a held-out part of the "
                             "training split (grid 'small' when no name is given; see README), then refit the "
                             "winner on the whole training split; the explicit settings of those options are ignored")
    search.add_argument("--search-folds", type=int, default=1,
                        help="1: one stratified held-out quarter of the training data (default); k > 1: stratified k-fold")


def report_search(classifier, metrics: dict) -> None:
    """Print the search's scores and choice, and record them in `metrics`."""
    result = getattr(classifier, "search_result_", None)
    if result is None:
        return
    metrics["search"] = result.to_dict()
    print(f"search ({result.method}, {len(result.grid)} candidates, {result.seconds:.1f} s):", file=sys.stderr)
    for i, (candidate, score) in enumerate(zip(result.grid, result.scores)):
        mark = "*" if i == result.best_index else " "
        print(f" {mark} held-out accuracy {score['accuracy']:.4f}  log-loss {score['log_loss']:.4f}  {candidate}",
              file=sys.stderr)
    score = result.scores[result.best_index]["accuracy"] if result.scores else None
    print(f"chosen settings: {result.best}  (held-out accuracy {'n/a' if score is None else f'{score:.4f}'})")
