"""Mutants: plausible student bugs, each an assignment's correct solution with ONE substitution.

They are data, not code: tests/fixtures/assignments/<a>/mutants.toml lists for each mutant the
function it attacks, the bug in words, and the `old` text of ../solution.py that `new` replaces
once. The modules are built on the fly, so a change to solution.py carries over to every mutant,
and a substitution that no longer applies exactly once fails loudly instead of drifting.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Mutant:
    name: str
    attacks: str
    bug: str
    old: str
    new: str


def load_mutants(fixtures: Path) -> list[Mutant]:
    """The mutants of fixtures/mutants.toml, sorted by name."""
    with (fixtures / "mutants.toml").open("rb") as f:
        table = tomllib.load(f)
    return [Mutant(name, **spec) for name, spec in sorted(table.items())]


def mutant_source(solution: Path, mutant: Mutant) -> str:
    """solution.py with the mutant's substitution; the `old` text must occur exactly once."""
    text = solution.read_text()
    count = text.count(mutant.old)
    if count != 1 or mutant.old == mutant.new:
        raise ValueError(f"mutant {mutant.name}: its old text occurs {count} times in "
                         f"{solution.name} (expected once) or equals the new text")
    return text.replace(mutant.old, mutant.new, 1)


def build_mutants(solution: Path, mutants: list[Mutant], folder: Path) -> list[Path]:
    """Write each mutant as folder/<name>.py (the name the grader reports) and return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for mutant in mutants:
        path = folder / f"{mutant.name}.py"
        path.write_text(mutant_source(solution, mutant))
        paths.append(path)
    return paths
