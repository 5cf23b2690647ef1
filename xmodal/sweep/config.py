"""A sweep's configuration: a TOML or YAML file read into plain data, checked before any work.

    name = "demo"                          # names the results (default: the file's name)
    task = "series"                        # series | sequence | table
    datasets = ["GunPoint", "Coffee"]      # names, dataset files/folders, or folders of UCR datasets
    data_dir = "../shared/data/ucr"        # series: where names are looked for (optional)
    seeds = 2                              # seeds 0 .. N-1, or a list such as [0, 7]
    presets = ["best", "v2s"]              # one method per preset ...
    sources = ["bc-resnet-gsc35"]          # ... per source, when given ...
    baselines = ["minirocket"]             # ... plus one per baseline of xmodal.baselines
    [data]                                 # data flags of `xmodal fit TASK`, for every item
    label_column = "target"                # (tables and sequences; series: resample, impute)
    [settings]                             # settings every method takes (xmodal.settings names)
    epochs = 20
    [grid]                                 # each preset crossed with every combination
    lr = [0.01, 0.001]
    [methods.v2s-search]                   # named methods: a preset and settings, or a baseline
    preset = "v2s"
    search = "small"

A work item is one (dataset, method, seed); a method is a dict of plain values (`preset`
and settings, or `baseline`; `data` when the config has data flags), which is also its
identity in the results: a changed method never mixes with results of the old one.
Everything is checked here (presets, setting values, baselines, dataset paths, and each
method's `xmodal fit` command line with the fit's own checks) so that a typo fails in one
line before Ray starts.
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from xmodal.errors import DataError
from xmodal.sweep.item import SEARCH_KEYS, Item, check_item

TASKS = ("series", "sequence", "table")
KEYS = {"name", "task", "datasets", "data_dir", "data", "seeds", "presets", "sources", "baselines", "settings",
        "grid", "methods", "costs"}


@dataclass
class SweepConfig:
    name: str
    task: str
    datasets: dict[str, str]  # name -> path given to fit (a name, file or folder)
    methods: dict[str, dict]
    seeds: list[int]
    data_dir: str | None = None
    costs: dict[str, float] = field(default_factory=dict)  # method -> relative cost per training sample

    def items(self) -> list[Item]:
        """Every (dataset, method, seed), largest first (size of the dataset's files x method cost)."""
        sizes = {name: _size(path, self.data_dir) for name, path in self.datasets.items()}  # read once per dataset
        items = [Item(self.task, name, path, self.data_dir, method, settings, seed,
                      sizes[name] * self.costs.get(method, 1.0))
                 for name, path in self.datasets.items() for method, settings in self.methods.items()
                 for seed in self.seeds]
        return sorted(items, key=lambda item: -item.cost)


def load_config(path: str | Path) -> SweepConfig:
    """Read and check a .toml, .yaml or .yml sweep file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"sweep config {path} not found; give a .toml or .yaml file (see `xmodal sweep --help`)")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            raise DataError(f"sweep config {path}: give a .toml, .yaml or .yml file")
    except DataError:
        raise
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        kind = path.suffix[1:].upper()
        raise DataError(f"sweep config {path} is not valid {kind}: {' '.join(str(exc).split())}") from None
    except Exception as exc:  # yaml.YAMLError: its module is imported only for YAML files
        raise DataError(f"sweep config {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise DataError(f"sweep config {path}: expected a table of keys ({', '.join(sorted(KEYS))})")
    # Relative paths in the file are relative to the file, not to where the command runs.
    return config_from_dict({"name": path.stem, **data}, base=path.parent)


def config_from_dict(data: dict, base: Path = Path(".")) -> SweepConfig:
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise DataError(f"sweep config: unknown keys {unknown}; the keys are {', '.join(sorted(KEYS))}")
    task = data.get("task")
    if task not in TASKS:
        raise DataError(f"sweep config: task must be one of {', '.join(TASKS)}, got {task!r}")
    name = str(data.get("name") or "sweep")
    data_dir = _resolve(data["data_dir"], base) if data.get("data_dir") else None
    if data_dir is not None and (task != "series" or not Path(data_dir).is_dir()):
        raise DataError(f"sweep config: data_dir {data['data_dir']} must be a folder of UCR datasets, for series only")
    datasets = find_datasets(task, _list(data, "datasets", required=True), data_dir, base)
    methods = _methods(task, data)
    seeds = _seeds(data.get("seeds", 1))
    first = next(iter(datasets.items()))
    for method, settings in methods.items():  # each method's fit command line, checked as `fit` checks it
        check_item(Item(task, first[0], first[1], data_dir, method, settings, seeds[0]))
    costs = data.get("costs") or {}
    if not isinstance(costs, dict) or any(m not in methods or not isinstance(v, (int, float)) or v <= 0
                                          for m, v in costs.items()):
        raise DataError(f"sweep config: costs must map methods of this sweep ({', '.join(methods)}) to positive "
                        f"numbers, got {costs!r}")
    return SweepConfig(name, task, datasets, methods, seeds, data_dir, {m: float(v) for m, v in costs.items()})


def _list(data: dict, key: str, required: bool = False) -> list:
    value = data.get(key)
    if value is None:
        if required:
            raise DataError(f"sweep config: `{key}` is missing; give a list")
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        raise DataError(f"sweep config: `{key}` must be a non-empty list, got {value!r}")
    return value


def _resolve(text: str, base: Path) -> str:
    path = Path(str(text)).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def find_datasets(task: str, entries: list, data_dir: str | None, base: Path) -> dict[str, str]:
    """name -> path. A series folder holding UCR datasets (<Name>/<Name>_TRAIN.*) stands for all of them."""
    found: dict[str, str] = {}
    for entry in entries:
        path = Path(_resolve(entry, base))
        if task == "series" and path.is_dir() and not any(path.glob("*_TRAIN.ts*")):
            inner = sorted(p.parent for p in path.glob("*/*_TRAIN.ts*"))
            if not inner:
                raise DataError(f"sweep config: dataset folder {entry} holds no UCR dataset (<Name>/<Name>_TRAIN.tsv)")
            for folder in inner:
                found.setdefault(folder.name, str(folder))
        elif path.exists():
            name = path.stem.removesuffix("_TRAIN") if path.is_file() else path.name
            if name in found and found[name] != str(path):
                raise DataError(f"sweep config: two datasets are named {name} ({found[name]} and {path}); the tables "
                                "need one name per dataset")
            found[name] = str(path)
        elif task == "series" and "/" not in str(entry):  # a UCR name, looked up by `fit` (data_dir, then sktime)
            if data_dir is not None and not (Path(data_dir) / str(entry)).is_dir():
                raise DataError(f"sweep config: dataset {entry} is not in data_dir {data_dir}")
            found.setdefault(str(entry), str(entry))
        else:
            raise DataError(f"sweep config: dataset {entry} not found (relative paths are read from the config's "
                            "folder)")
    return found


def _seeds(value) -> list[int]:
    if isinstance(value, bool) or not isinstance(value, (int, list)):
        raise DataError(f"sweep config: seeds must be a count or a list of whole numbers, got {value!r}")
    seeds = list(range(value)) if isinstance(value, int) else value
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise DataError(f"sweep config: seeds must be a positive count or a list of whole numbers >= 0, got {value!r}")
    return list(dict.fromkeys(seeds))


def _methods(task: str, data: dict) -> dict[str, dict]:
    common = data.get("settings") or {}
    grid = data.get("grid") or {}
    for key, table in (("settings", common), ("grid", grid), ("methods", data.get("methods") or {})):
        if not isinstance(table, dict):
            raise DataError(f"sweep config: `{key}` must be a table, got {table!r}")
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise DataError(f"sweep config: grid {name} must be a non-empty list of values, got {values!r}")
    methods: dict[str, dict] = {}
    sources = _list(data, "sources")
    combinations = [dict(zip(grid, values)) for values in itertools.product(*grid.values())] or [{}]
    for preset in _list(data, "presets"):
        for source in sources or [None]:
            for combination in combinations:
                settings = {"preset": preset, **common, **({"source": source} if source else {}), **combination}
                label = preset + (f"@{source}" if source else "")
                if combination:
                    label += "[" + ",".join(f"{k}={v}" for k, v in combination.items()) + "]"
                methods[label] = settings
    for baseline in _list(data, "baselines"):
        methods[baseline] = {"baseline": baseline}
    for name, method in (data.get("methods") or {}).items():
        if not isinstance(method, dict):
            raise DataError(f"sweep config: method {name} must be a table (preset and settings, or baseline)")
        if str(name) in methods:
            raise DataError(f"sweep config: two methods are named {name} (a preset or baseline and a [methods.{name}] "
                            "table); rename the table")
        methods[str(name)] = method if "baseline" in method else {**common, **method}
    if not methods:
        raise DataError("sweep config: no methods; give presets, baselines or [methods.NAME] tables")
    options = data.get("data") or {}
    if not isinstance(options, dict):
        raise DataError(f"sweep config: `data` must be a table of `xmodal fit {task}` data flags, got {options!r}")
    if options:  # part of every method's identity: other data options, other results
        methods = {name: {**method, "data": dict(options)} for name, method in methods.items()}
    for name, method in methods.items():
        check_method(task, name, method)
    return methods


def check_method(task: str, name: str, method: dict) -> None:
    """A method is a baseline of the task, or a preset with settings that resolve (DataError otherwise)."""
    from xmodal.baselines import BASELINES
    from xmodal.presets import resolve_settings
    from xmodal.settings import SETTINGS

    where = f"sweep config: method {name}"
    if "baseline" in method:
        if set(method) - {"data"} != {"baseline"} or method["baseline"] not in BASELINES[task]:
            raise DataError(f"{where}: a baseline method is just `baseline = NAME`, NAME one of "
                            f"{', '.join(BASELINES[task])}; got {method}")
        return
    if "preset" not in method:
        raise DataError(f"{where}: give `preset` (and settings) or `baseline`")
    settings = {k: v for k, v in method.items() if k not in ("preset", "data", *SEARCH_KEYS)}
    unknown = sorted(set(settings) - set(SETTINGS[task]))
    if unknown:
        raise DataError(f"{where}: {unknown} are not {task} settings (`xmodal presets --task {task}` lists them)")
    if any(k in method for k in SEARCH_KEYS) and task != "series":
        raise DataError(f"{where}: search and search_folds are series fit options")
    if "search" in method and not isinstance(method["search"], str):
        raise DataError(f"{where}: search must name a grid of xmodal.training.search (small, tiny)")
    try:
        resolve_settings(task, method["preset"], settings)
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from None


def _size(path: str, data_dir: str | None) -> float:
    """Bytes of a dataset's files (0 when fit looks the name up itself): the largest run first."""
    candidates = [Path(path)] + ([Path(data_dir) / path] if data_dir else [])
    for candidate in candidates:
        if candidate.is_file():
            return float(candidate.stat().st_size)
        if candidate.is_dir():
            return float(sum(p.stat().st_size for p in candidate.rglob("*") if p.is_file()))
    return 0.0
