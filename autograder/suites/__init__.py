"""Hidden test suites, one package per assignment: `autograder/suites/<assignment>/`.

A suite package's `__init__.py` describes the assignment to the runner:

    NOTEBOOK   stem of the source notebook (default: the assignment name)
    FUNCTIONS  {function: {"opaque": [positions in the returned tuple kept in the sandbox]}},
               e.g. {"affine_forward": {"opaque": [1]}} keeps the cache of (out, cache);
               "call_timeout": seconds per call of that function when it needs more than
               the default (a training task), never less than the instructor's limit;
               "uses": [graded functions whose reference behaviour is lent to every call of
               this one, so a model is graded with correct layers (autograder.sandbox.references)]
    REFERENCES {function: callable run in the trusted parent for a lent function}
    FORBIDDEN  {module prefix: reason shown to the student}
    ALLOWED    [module prefixes allowed inside a forbidden package]
    warm()     calls each oracle function once per dtype the tests use (fills Numba's cache)

and its `test_*.py` files are the hidden tests (markers and fixtures: `autograder.plugin`).
The suite's version is a hash of its files, so results are redone when a test changes.

Suites are looked up in the directories of the environment variable AUTOGRADER_SUITES_PATH
(os.pathsep-separated, each holding `<assignment>/` folders) before this package, so a course
can keep its hidden suites outside the kit (and the kit's tests use a frozen fixture suite).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Suite", "load_suite", "available_suites", "DEFAULT_FORBIDDEN"]

SUITES_DIR = Path(__file__).parent

# Forbidden in every assignment unless a suite says otherwise: frameworks that implement the
# layers students are asked to write.
DEFAULT_FORBIDDEN = {
    "torch": "PyTorch implements these layers; write them with numpy",
    "tensorflow": "TensorFlow implements these layers; write them with numpy",
    "jax": "JAX implements these layers; write them with numpy",
    "keras": "Keras implements these layers; write them with numpy",
    "autograder": "the grader's own code is off limits",
}


@dataclass(frozen=True)
class Suite:
    name: str
    directory: Path
    notebook: str
    functions: dict
    forbidden: dict
    allowed: tuple
    version: str
    module: object
    references: dict = field(default_factory=dict)

    def warm(self) -> None:
        warm = getattr(self.module, "warm", None)
        if warm is not None:
            warm()


def _search_path() -> list[Path]:
    extra = os.environ.get("AUTOGRADER_SUITES_PATH", "")
    return [Path(p).resolve() for p in extra.split(os.pathsep) if p] + [SUITES_DIR]


def _suite_dirs() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for base in _search_path():
        if not base.is_dir():
            continue
        for path in sorted(base.iterdir()):
            if (path / "__init__.py").is_file() and any(path.glob("test_*.py")):
                found.setdefault(path.name, path)
    return found


def available_suites() -> list[str]:
    return sorted(_suite_dirs())


def _version(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*.py")):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def load_suite(name: str) -> Suite:
    """The suite of assignment `name`; ValueError naming the known suites if there is none."""
    directory = _suite_dirs().get(name)
    if directory is None:
        raise ValueError(f"no hidden suite for assignment {name!r}; known: "
                         f"{', '.join(available_suites()) or 'none'}")
    if directory.parent == SUITES_DIR:
        module = importlib.import_module(f"autograder.suites.{name}")
    else:
        # The same module pytest will import the test files under (prepend import mode).
        if str(directory.parent) not in sys.path:
            sys.path.insert(0, str(directory.parent))
        module = importlib.import_module(name)
    return Suite(name=name, directory=directory,
                 notebook=getattr(module, "NOTEBOOK", name),
                 functions=dict(module.FUNCTIONS),
                 forbidden={**DEFAULT_FORBIDDEN, **getattr(module, "FORBIDDEN", {})},
                 allowed=tuple(getattr(module, "ALLOWED", ())),
                 version=_version(directory), module=module,
                 references=dict(getattr(module, "REFERENCES", {})))
