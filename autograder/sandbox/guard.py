"""The import guard of the sandboxed child: what student code may import and call.

Runs inside the child only (`autograder.sandbox.child` installs it before any student code).
"""

from __future__ import annotations

import builtins
import sys
import types

STUDENT_MODULE = "__student__"
STUDENT_FILE_PREFIX = "<student "


class Guard:
    """Tracks which forbidden modules or reference functions student code reaches for.

    Three layers: (1) `import`/`importlib.import_module` from student code of a forbidden
    module raises ImportError; (2) a meta-path finder refuses to load forbidden third-party
    packages at all; (3) every function of a forbidden module of a partly allowed package (the
    library's reference layers) is replaced by a tripwire as soon as it is loaded, here and
    where it is re-exported, so reaching it through `from course_lib import *`, `sys.modules` or
    attribute chains is caught when it is called. Each event is recorded against the current
    context (the unit being loaded or the function being called) and reported to the parent.
    """

    def __init__(self, policy):
        self.policy = policy
        self.context = "setup"
        self.events: list[dict] = []
        self.patched: set[str] = set()
        self._modules_seen = 0
        self._pending: set[str] = set()
        self.original_import = builtins.__import__

    def record(self, what: str, how: str) -> None:
        event = {"context": self.context, "what": what, "how": how}
        if event not in self.events:
            self.events.append(event)

    def drain(self) -> list[dict]:
        events, self.events = self.events, []
        return events

    def _refuse(self, what: str, how: str) -> ImportError:
        self.record(what, how)
        return ImportError(f"{what} is not allowed here: {self.policy.reason(what)}")

    def guarded_import(self, name, globals=None, locals=None, fromlist=(), level=0):
        student = bool(globals) and globals.get("__name__") == STUDENT_MODULE and level == 0
        if student and self.policy.hit(name):
            raise self._refuse(name, "import")
        module = self.original_import(name, globals, locals, fromlist, level)
        self.patch_reference_modules()
        if student:
            for item in fromlist or ():
                value = getattr(module, item, None) if item != "*" else None
                if isinstance(value, types.ModuleType) and self.policy.hit(value.__name__):
                    raise self._refuse(value.__name__, "import")
        return module

    def guarded_import_module(self, name, package=None):
        frame = sys._getframe(1)
        if frame.f_globals.get("__name__") == STUDENT_MODULE and self.policy.hit(name):
            raise self._refuse(name, "importlib.import_module")
        module = self._original_import_module(name, package)
        self.patch_reference_modules()
        return module

    def tripwire(self, qualname: str, original):
        guard = self

        def forbidden_call(*args, **kwargs):
            guard.record(qualname, "call")
            raise RuntimeError(f"{qualname} is not allowed here: {guard.policy.reason(qualname)}")

        forbidden_call.__name__ = getattr(original, "__name__", "forbidden")
        forbidden_call.__module__ = getattr(original, "__module__", None)
        forbidden_call.__wrapped_forbidden__ = True
        return forbidden_call

    def patch_reference_modules(self) -> None:
        """Replace the functions of loaded forbidden modules (and their re-exports).

        A module is patched once it has finished executing (a module still initialising is
        in sys.modules before its functions exist) and never again.
        """
        if len(sys.modules) == self._modules_seen and not self._pending:
            return
        self._modules_seen = len(sys.modules)
        packages = {p.split(".")[0] for p in self.policy._packages}
        loaded, self._pending = [], set()
        for name, module in list(sys.modules.items()):
            if name in self.patched or name.split(".")[0] not in packages \
                    or not self.policy.hit(name) or module is None:
                continue
            if getattr(getattr(module, "__spec__", None), "_initializing", False):
                self._pending.add(name)
            else:
                loaded.append(name)
        if not loaded:
            return
        replaced = {}
        for name in loaded:
            module = sys.modules[name]
            self.patched.add(name)
            for attr, value in list(vars(module).items()):
                if attr.startswith("__") or isinstance(value, types.ModuleType):
                    continue
                origin = getattr(value, "__module__", None)
                if callable(value) and isinstance(origin, str) and self.policy.hit(origin):
                    wire = replaced.get(id(value)) or self.tripwire(f"{origin}.{attr}", value)
                    replaced[id(value)] = wire
                    setattr(module, attr, wire)
        # Re-exports (e.g. `course_lib.affine_forward`) live in allowed modules of the package.
        for name, module in list(sys.modules.items()):
            if not isinstance(module, types.ModuleType) or name.split(".")[0] not in packages:
                continue
            for attr, value in list(vars(module).items()):
                if id(value) in replaced:
                    setattr(module, attr, replaced[id(value)])

    def install(self) -> None:
        import importlib
        import importlib.abc
        builtins.__import__ = self.guarded_import
        self._original_import_module = importlib.import_module
        importlib.import_module = self.guarded_import_module
        guard = self

        class RefuseFinder(importlib.abc.MetaPathFinder):
            """Forbidden packages that are not partly allowed are never loaded at all."""

            def find_spec(self, fullname, path=None, target=None):
                top = fullname.split(".")[0]
                if top not in {p.split(".")[0] for p in guard.policy._packages} \
                        and top not in _OUR_PACKAGES \
                        and guard.policy.hit(fullname):
                    raise guard._refuse(fullname, "import")
                return None

        sys.meta_path.insert(0, RefuseFinder())


_OUR_PACKAGES = {"autograder", "course_lib", "numpy"}
