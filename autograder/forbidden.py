"""Forbidden imports, found by reading the student's code (the sandbox also catches them live).

An assignment lists forbidden modules by prefix, each with the reason shown to the student
(`torch`, `scipy.signal`, `course_lib`, ...), and allowed exceptions inside them
(`course_lib.gradient_check`, `course_lib.data`, ...): see `Policy`. A forbidden package that
has allowed parts stays importable itself, but everything it re-exports from its forbidden
parts is forbidden, so `course_lib.affine_forward` is forbidden because the object it names was
defined in `course_lib.layers.affine`; `reference_names` works that out from the real library.

`static_violations` reads the units' code with `ast` (nothing is executed) and reports, for
each graded function, how it reaches something forbidden: an import inside it, a module-level
import or alias it uses, an attribute chain (`course_lib.layers.affine.affine_forward`), a
string passed to `__import__`/`importlib.import_module`, or a helper of the student's that
does any of these (followed through the student's own top-level functions).
"""

from __future__ import annotations

import ast
import importlib
import sys

__all__ = ["Policy", "reference_names", "static_violations", "matches"]


def matches(name: str, prefixes) -> str | None:
    """The prefix (from `prefixes`) that dotted `name` falls under, if any."""
    for prefix in prefixes:
        if name == prefix or name.startswith(prefix + "."):
            return prefix
    return None


# Allowed in every assignment: parts of course_lib that compute nothing a student writes and
# that the library runs when it is imported (malloc settings).
ALWAYS_ALLOWED = ("course_lib.kernels.memory",)


class Policy:
    """Which modules student code may not use in one assignment, and why."""

    def __init__(self, forbidden: dict[str, str], allowed=()):
        self.forbidden = dict(forbidden)
        self.allowed = tuple(allowed) + tuple(a for a in ALWAYS_ALLOWED if a not in allowed)
        # Forbidden packages with allowed parts (and the packages in between) stay importable.
        self._packages = {".".join(a.split(".")[:i]) for a in self.allowed
                          for i in range(1, a.count(".") + 1)
                          if matches(".".join(a.split(".")[:i]), self.forbidden)}

    def hit(self, name: str) -> str | None:
        """The forbidden prefix that applies to module `name`, or None if it is allowed."""
        if not name or matches(name, self.allowed) or name in self._packages:
            return None
        return matches(name, self.forbidden)

    def reason(self, name: str) -> str:
        prefix = matches(name, self.forbidden)
        return self.forbidden.get(prefix, "not allowed in this assignment")

    def as_config(self) -> dict:
        return {"forbidden": self.forbidden, "allowed": list(self.allowed)}


def reference_names(policy: Policy) -> set[str]:
    """Dotted names like 'course_lib.affine_forward' that re-export forbidden objects."""
    names: set[str] = set()
    for package in sorted(policy._packages):
        try:
            module = importlib.import_module(package)
        except Exception:  # noqa: BLE001 - a missing package forbids nothing by re-export
            continue
        for attr in dir(module):
            value = getattr(module, attr, None)
            origin = value.__name__ if isinstance(value, type(ast)) else \
                getattr(value, "__module__", None)
            if isinstance(origin, str) and policy.hit(origin):
                names.add(f"{package}.{attr}")
        names.update(m for m in list(sys.modules) if m.startswith(package + ".")
                     and policy.hit(m))
    return names


def _dotted(node: ast.AST) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


class _Checker:
    def __init__(self, policy: Policy, reference: set[str]):
        self.policy = policy
        self.reference = reference

    def forbidden(self, dotted: str) -> str | None:
        """The dotted name itself if it is, or lies under, a forbidden module or name."""
        parts = dotted.split(".")
        partial = parts[0] in {p.split(".")[0] for p in self.policy._packages}
        for i in range(1, len(parts) + 1):
            candidate = ".".join(parts[:i])
            if candidate in self.reference or not partial and self.policy.hit(candidate):
                return dotted      # everything under a forbidden name is forbidden
        return None

    def import_origins(self, stmt: ast.Import | ast.ImportFrom) -> dict[str, str]:
        """name bound -> dotted origin, for an import statement."""
        bound = {}
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:
                    bound[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif stmt.level == 0 and stmt.module:
            for alias in stmt.names:
                if alias.name == "*":
                    bound["*" + stmt.module] = stmt.module
                else:
                    bound[alias.asname or alias.name] = f"{stmt.module}.{alias.name}"
        return bound


def static_violations(units: list[dict], functions: list[str], policy: Policy,
                      reference: set[str], lent: dict[str, list[str]] | None = None
                      ) -> dict[str, list[str]]:
    """For each graded function: what forbidden thing it uses (empty list when none).

    `lent`: for a graded function, the names the grader replaces by its reference while that
    function runs (autograder.sandbox.references); what the student's own versions of those
    use is not held against it."""
    checker = _Checker(policy, reference)
    origins: dict[str, str] = {}       # module-level name -> dotted origin
    defs: dict[str, ast.AST] = {}      # module-level student function/class definitions
    # Star imports that can bind a forbidden name: every name is looked up in each of them, so
    # the list holds only those (once each), keeping the check linear in the code's size.
    star_modules: dict[str, None] = {}
    leading = {".".join(r.split(".")[:i]) for r in reference for i in range(1, r.count(".") + 1)}
    leading |= set(policy._packages)
    for unit in units:
        try:
            tree = ast.parse(unit["code"])
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
        for stmt in tree.body:
            if isinstance(stmt, ast.Import | ast.ImportFrom):
                for name, origin in checker.import_origins(stmt).items():
                    if name.startswith("*"):
                        if origin in leading or checker.forbidden(origin):
                            star_modules[origin] = None
                    else:
                        origins[name] = origin
                        defs.pop(name, None)
            elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                if unit.get("origin") != "setup":
                    defs[stmt.name] = stmt
                origins.pop(stmt.name, None)
            elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 \
                    and isinstance(stmt.targets[0], ast.Name):
                name = stmt.targets[0].id
                dotted = _dotted(stmt.value)
                resolved = _resolve(dotted, origins) if dotted else None
                defs.pop(name, None)
                if resolved:
                    origins[name] = resolved
                else:
                    origins.pop(name, None)

    def resolve_name(name: str) -> str | None:
        if name in origins:
            return origins[name]
        if name in defs:
            return None
        for module in star_modules:
            candidate = f"{module}.{name}"
            if checker.forbidden(candidate):
                return candidate
        return None

    direct: dict[str, list[str]] = {}
    calls: dict[str, set[str]] = {}
    for name, node in defs.items():
        found, used = [], set()
        inner = {id(sub.value) for sub in ast.walk(node) if isinstance(sub, ast.Attribute)}
        for sub in ast.walk(node):
            if isinstance(sub, ast.Import | ast.ImportFrom):
                for origin in checker.import_origins(sub).values():
                    hit = checker.forbidden(origin)
                    if hit:
                        found.append(f"imports {hit}")
            elif isinstance(sub, ast.Attribute | ast.Name) and id(sub) not in inner:
                dotted = _dotted(sub)
                if not dotted or isinstance(sub.ctx, ast.Store):
                    continue
                if isinstance(sub, ast.Name) and sub.id in defs and sub.id != name:
                    used.add(sub.id)
                base = resolve_name(dotted[0])
                hit = base and checker.forbidden(".".join([base, *dotted[1:]]))
                if hit:
                    found.append(f"uses {hit}")
            elif isinstance(sub, ast.Call) and sub.args and isinstance(sub.args[0], ast.Constant) \
                    and isinstance(sub.args[0].value, str):
                callee = _dotted(sub.func) or []
                if callee[-1:] in (["__import__"], ["import_module"]):
                    hit = checker.forbidden(sub.args[0].value)
                    if hit:
                        found.append(f"imports {hit}")
        direct[name] = sorted(set(found))
        calls[name] = used
    result: dict[str, list[str]] = {}
    for function in functions:
        if function in origins and checker.forbidden(origins[function]):
            result[function] = [f"is {checker.forbidden(origins[function])} itself"]
            continue
        if function not in defs and resolve_name(function):
            result[function] = [f"is {resolve_name(function)} itself"]
            continue
        reasons = list(direct.get(function, []))
        seen = {function, *(lent or {}).get(function, ())}
        stack = list(calls.get(function, ()))
        while stack:
            helper = stack.pop()
            if helper in seen:
                continue
            seen.add(helper)
            for reason in direct.get(helper, []):
                reasons.append(f"calls {helper}, which {reason}")
            stack.extend(calls.get(helper, ()))
        result[function] = sorted(set(reasons))
    return result


def _resolve(dotted: list[str], origins: dict[str, str | None]) -> str | None:
    base = origins.get(dotted[0])
    if base is None:
        return None
    return ".".join([base, *dotted[1:]])
