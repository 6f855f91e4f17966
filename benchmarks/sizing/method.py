"""A sizing method's entry, what the harness asks of it, and the registry
every method module adds itself to (:func:`register`): one module per method."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from benchmarks.sizing.job import Job


@dataclass(frozen=True)
class Penalty:
    """A flag of penalty weights (``--l1-lams``: attribute ``l1_lams``), a list
    of numbers: one run per weight."""

    flag: str
    help: str
    #: The default weights; ``None``: the harness sets them (the help says how).
    grid: Optional[Tuple[float, ...]] = None

    @property
    def option(self) -> str:
        return "--" + self.flag.replace("_", "-")


@dataclass(frozen=True)
class SizingMethod:
    """How one method chooses the embedding size: :obj:`run` gives the result
    columns of one point of the size curve for ``job.config.dim``.

    * :obj:`gated`: its model has a size gate, so the gate settings enter its
      runs' config ids (a model without one does not depend on them);
    * :obj:`curve`: one trained model per dataset, seed and penalty weight
      gives every point of its curve (kept in ``job.cache``);
    * :obj:`penalty`: the flag of its penalty weights; a method with one and
      no shared curve trains once per weight from the largest size;
    * :obj:`settings`: settings the method fixes whatever the flags say
      (in its runs and their config ids).
    """

    name: str
    run: Callable[[Job], Dict]
    help: str
    gated: bool = False
    curve: bool = False
    penalty: Optional[Penalty] = None
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def from_largest(self) -> bool:
        """Whether its runs start from the largest size only (one per penalty weight)."""
        return self.penalty is not None and not self.curve


#: What the baselines trained over a grid of penalty weights fix: the weight as given on every graph (the
#: harness picks one per seed on validation, so the graph is in that choice already; DAM's one run is scaled).
GRID_SETTINGS: Mapping[str, Any] = {"penalty_edges": 0}

#: Every method by name, in the order the modules registered them.
METHODS: Dict[str, SizingMethod] = {}


def register(method: SizingMethod) -> SizingMethod:
    """Add :obj:`method` (a name already taken is refused)."""
    if method.name in METHODS:
        raise ValueError(f"a sizing method named {method.name!r} is registered already")
    METHODS[method.name] = method
    return method


def penalties() -> List[Penalty]:
    """The penalty flags of the registered methods, each once."""
    return list({m.penalty.flag: m.penalty for m in METHODS.values() if m.penalty is not None}.values())


def penalised() -> Sequence[str]:
    """The methods trained once per penalty weight from the largest size (separate points on a curve)."""
    return tuple(name for name, m in METHODS.items() if m.from_largest)
