"""Sweeps: datasets x methods (presets, settings grids, baselines) x seeds, run on Ray.

    xmodal sweep demo.toml                       # an embedded local Ray: nothing to start
    xmodal sweep demo.toml --address auto        # a running Ray cluster

  item.py     one item (Item), as `xmodal fit` runs it: a run folder with metrics.json
  config.py   the TOML / YAML file -> SweepConfig -> work items (checked before any work)
  runner.py   the items as Ray tasks; results appended as they finish; resumable
  report.py   tables, CSV and the scatter plot from the results lines
  summary.py  mean accuracy, mean rank, wins / ties / losses (pure functions)

Ray is an extra (`pip install 'xmodal[sweep]'`); only xmodal.ray_session imports it.
"""

from xmodal.sweep.config import SweepConfig, config_from_dict, load_config
from xmodal.sweep.item import Item
from xmodal.sweep.report import write_report
from xmodal.sweep.runner import SweepOutcome, read_results, run_sweep

__all__ = ["Item", "SweepConfig", "SweepOutcome", "config_from_dict", "load_config", "read_results", "run_sweep",
           "write_report"]
