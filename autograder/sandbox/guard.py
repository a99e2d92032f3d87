"""The import guard of the sandboxed child: what student code may import and call.

Runs inside the child only (`autograder.sandbox.child` installs it before any student code).

It judges what the STUDENT's code does, not what allowed libraries do on their own behalf:
`scipy.stats` may import `scipy.spatial` where a1 forbids it, but the student's code may
neither import `scipy.spatial` nor call a function defined there. Student code is code compiled
from the submission (file `<student ...>`, module `__student__`), and code of no loaded module
(exec, eval) that student code runs. course_lib, partly allowed, is stricter: its forbidden
parts never run in the child, whoever calls them.

- `import`, `__import__`, `importlib.import_module` of a forbidden module by student code raise
  ImportError; a meta-path finder refuses to load a forbidden third-party package when the
  import comes from student code or from course_lib (so `load_digits` cannot import sklearn
  where sklearn is forbidden).
- Every module runs through our loader (`exec_module` of the source and extension loaders), so
  a forbidden module is patched right after it runs, whatever its name and however it was
  reached: `del sys.modules[...]` and a fresh import, `importlib.reload`, or
  `spec_from_file_location` under a new name. The module's file decides, not its name, and
  patched modules are remembered by identity.
  * course_lib: each function defined there gets a tripwire as its code, in place, so every
    reference to it (re-exports, closures, objects found later) is dead; classes and other
    callables are also replaced by tripwires where the module names them.
  * a forbidden third-party module: each function defined there is replaced by a wrapper that
    refuses a call made directly by student code and passes library calls through.
- An audit hook (which nothing can remove) refuses to run forbidden code any other way (exec
  or eval of its code objects: runpy, marshal, a loader of one's own; functions built from its
  code; `__code__` assignment), and refuses gc's object walks, tracing and new audit hooks to
  student code.

Each refusal is recorded against the current context (the unit being loaded or the function
being called) and reported to the parent, which gives that function 0.

Not covered (the guard lives in the process it guards): copies of the library's source or
bytecode run under another file name (a plagiarism question); classes of a forbidden third-party
module (wrapping them would break the library's own isinstance checks) and its functions passed
as callbacks to library code (`np.apply_along_axis(logsumexp, ...)`); code that reaches into the
guard itself (its closures, `builtins.__import__.__self__`) or rewrites memory with ctypes.
"""

from __future__ import annotations

import builtins
import os
import sys
import types

STUDENT_MODULE = "__student__"
STUDENT_FILE_PREFIX = "<student "
# Never refused by the finder (a policy may forbid parts of course_lib, not the package);
# the grader's own code and numpy, which it runs on, are never patched either.
_OUR_PACKAGES = {"autograder", "course_lib", "numpy"}
_NEVER_PATCHED = {"autograder", "numpy"}
# Code that answers for the student besides the student's own: the child's server calling the
# graded functions, and course_lib (its forbidden parts are forbidden whoever calls them).
_ANSWERING_PACKAGES = {"autograder", "__main__"}
_CODE_EVENTS = frozenset({"exec", "function.__new__", "object.__setattr__"})
# Ways into the interpreter's insides (to find an original function or watch a module run),
# refused to student code; libraries may use them.
_PROBE_EVENTS = frozenset({"gc.get_objects", "gc.get_referrers", "gc.get_referents",
                           "sys.settrace", "sys.setprofile", "sys.addaudithook"})
# A killed function's code raises builtins.__autograder_forbidden__(<its qualified name>).
_HANDLER = "__autograder_forbidden__"
MAX_EVENTS = 200            # per reply; the parent keeps at most as many per submission
_PLACEHOLDER = "<qualified name>"


class Guard:
    """Tracks which forbidden modules or functions student code reaches for (see the module
    docstring); `install` puts it in place, `drain` hands the recorded events over."""

    def __init__(self, policy):
        self.policy = policy
        self.context = "setup"
        self.events: list[dict] = []
        self._recorded: set[tuple] = set()
        self.partial = {p.split(".")[0] for p in policy._packages}     # e.g. {"course_lib"}
        self._answering = self.partial | _ANSWERING_PACKAGES
        self._packages: list[tuple[str, str]] = []   # (directory, top-level package name)
        self._read_only: tuple[str, ...] = ()        # trees of sys.path and those packages
        self._names: dict[str, str | None] = {}      # file -> forbidden module it is, or None
        self._patched: set = set()             # patched modules (a module hashes by identity)
        self._modules_seen = 0
        self._sanctioned = None                # the module code our loader is about to run
        self._stubs: dict[int, types.CodeType] = {}
        self._machinery: set[str] = set()
        self.original_import = builtins.__import__

    # ------------------------------------------------------------------ events
    def record(self, what: str, how: str) -> None:
        key = (self.context, str(what)[:200], how)
        # A set: a flood of events stays linear; and at most MAX_EVENTS go into one reply.
        if key not in self._recorded and len(self.events) < MAX_EVENTS:
            self._recorded.add(key)
            self.events.append({"context": key[0], "what": key[1], "how": how})

    def drain(self) -> list[dict]:
        events, self.events, self._recorded = self.events, [], set()
        return events

    def _refuse(self, what: str, how: str, kind=ImportError) -> Exception:
        self.record(what, how)
        return kind(f"{what} is not allowed here: {self.policy.reason(what)}")

    def forbidden_called(self, qualname: str) -> RuntimeError:
        """Raised by a killed course_lib function (through builtins.__autograder_forbidden__)."""
        return self._refuse(qualname, "call", RuntimeError)

    # ------------------------------------------------------------------ who is asking
    def owner(self, frame) -> str | None:
        """The module whose code runs in `frame` (STUDENT_MODULE for the student's). Code of no
        loaded module (compiled at run time by exec, eval, namedtuple...) belongs to the code
        that ran it."""
        while frame is not None:
            if frame.f_code.co_filename.startswith(STUDENT_FILE_PREFIX):
                return STUDENT_MODULE
            namespace = frame.f_globals
            name = namespace.get("__name__")
            if name == STUDENT_MODULE:
                return STUDENT_MODULE
            module = sys.modules.get(name) if type(name) is str else None
            if isinstance(module, types.ModuleType) \
                    and object.__getattribute__(module, "__dict__") is namespace:
                return name
            frame = frame.f_back
        return None

    def student(self, frame) -> bool:
        return self.owner(frame) == STUDENT_MODULE

    def answerable(self, frame) -> bool:
        """Student code, course_lib or the grader: whose use of a forbidden thing counts."""
        owner = self.owner(frame)
        return owner is not None and (owner == STUDENT_MODULE
                                      or owner.split(".")[0] in self._answering)

    def _importer(self):
        """The frame whose code asked for the import being resolved (machinery skipped)."""
        frame = sys._getframe(1)
        while frame is not None and (frame.f_code.co_filename.startswith("<frozen importlib")
                                     or frame.f_code.co_filename in self._machinery):
            frame = frame.f_back
        return frame

    # ------------------------------------------------------------------ which code is forbidden
    def forbidden_file(self, filename: str) -> str | None:
        """The forbidden module that file `filename` is (by where it lies in its package), or
        None. A file outside the read-only installed trees (e.g. in the working directory) may
        be a link the student made: it is followed, and the answer is not kept."""
        if filename in self._names:
            return self._names[filename]
        if not filename or filename.startswith("<"):
            return None
        path = os.path.abspath(filename)
        trusted = path.startswith(self._read_only)
        name = self._module_name(path if trusted else os.path.realpath(path))
        name = name if name and self.policy.hit(name) else None
        if trusted:
            self._names[filename] = name
        return name

    def _module_name(self, path: str) -> str | None:
        for directory, top in self._packages:
            if path == directory:                  # a top-level module that is one file
                return top
            if path.startswith(directory + os.sep):
                parts = path[len(directory) + 1:].split(os.sep)
                if len(parts) > 1 and parts[-2] == "__pycache__":
                    del parts[-2]
                parts[-1] = parts[-1].partition(".")[0]
                if parts[-1] == "__init__":
                    parts.pop()
                ok = all(p.isidentifier() for p in parts)
                return ".".join([top, *parts]) if ok else None
        return None

    def _locate_packages(self) -> None:
        """Where the packages with forbidden parts live (found, not imported)."""
        import importlib.util
        places = set()
        for top in {p.split(".")[0] for p in self.policy.forbidden} - _NEVER_PATCHED:
            try:
                spec = importlib.util.find_spec(top)
            except (ImportError, ValueError):
                continue
            if spec is None:
                continue
            found = list(spec.submodule_search_locations or []) or \
                ([spec.origin] if spec.origin and os.path.isfile(spec.origin) else [])
            for where in found:
                places |= {(os.path.abspath(where), top), (os.path.realpath(where), top)}
        self._packages = sorted(places, key=lambda p: len(p[0]), reverse=True)
        trees = {os.path.abspath(entry) for entry in sys.path
                 if isinstance(entry, str) and os.path.isdir(entry)}
        trees |= {os.path.dirname(directory) for directory, _ in self._packages}
        self._read_only = tuple(tree.rstrip(os.sep) + os.sep for tree in trees
                                if not os.access(tree, os.W_OK))

    # ------------------------------------------------------------------ imports
    def guarded_import(self, name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and self.policy.hit(name) and self.student(sys._getframe(1)):
            raise self._refuse(name, "import")
        module = self.original_import(name, globals, locals, fromlist, level)
        if fromlist and self.student(sys._getframe(1)):
            for item in fromlist:
                value = getattr(module, item, None) if item != "*" else None
                if isinstance(value, types.ModuleType) and self.policy.hit(value.__name__):
                    raise self._refuse(value.__name__, "import")
        return module

    def guarded_import_module(self, name, package=None):
        try:
            absolute = self._resolve_name(name, package) if name.startswith(".") else name
        except (ImportError, ValueError, TypeError, AttributeError):
            absolute = name
        if self.policy.hit(absolute) and self.student(sys._getframe(1)):
            raise self._refuse(absolute, "importlib.import_module")
        return self._original_import_module(name, package)

    def refuse_load(self, fullname: str) -> None:
        """Meta-path hook: a forbidden third-party package loads only for a library's own use."""
        top = fullname.split(".")[0]
        if top in self.partial or top in _OUR_PACKAGES or not self.policy.hit(fullname):
            return
        importer = self._importer()
        if importer is None or self.answerable(importer):
            raise self._refuse(fullname, "import")

    def exec_module(self, loader, module, run) -> None:
        """What a source loader's exec_module does, plus the patching of a forbidden module."""
        code = loader.get_code(module.__name__)
        if code is None:
            raise ImportError(f"cannot load module {module.__name__!r} when get_code() "
                              "returns None")
        name = self.forbidden_file(code.co_filename)
        namespace = module.__dict__
        if name is None:
            run(exec, code, namespace)
            return
        if type(namespace) is not dict:
            raise self._refuse(name, "exec", RuntimeError)
        self._sanctioned = code
        try:
            run(exec, code, namespace)
        finally:
            self._sanctioned = None
            self._patch(namespace, name)
            self._patched.add(module)

    def exec_extension(self, loader, module, original) -> None:
        original(loader, module)
        name = self.forbidden_file(getattr(loader, "path", "") or "")
        if name is not None:
            self._patch(module.__dict__, name)
            self._patched.add(module)

    # ------------------------------------------------------------------ patching
    def patch_reference_modules(self) -> None:
        """Safety net, run after imports, loads and calls: patch forbidden modules that reached
        sys.modules without running through our loader (none, normally)."""
        if len(sys.modules) == self._modules_seen:
            return
        self._modules_seen = len(sys.modules)
        for name, module in list(sys.modules.items()):
            if not isinstance(module, types.ModuleType) or module in self._patched \
                    or not self.policy.hit(name) or name.split(".")[0] in _NEVER_PATCHED:
                continue
            namespace = object.__getattribute__(module, "__dict__")
            if getattr(namespace.get("__spec__"), "_initializing", False):
                self._modules_seen = -1        # still running: look again next time
                continue
            self._patched.add(module)
            self._patch(namespace, name)

    def _patch(self, namespace: dict, name: str) -> None:
        """Disable (course_lib) or wrap (third-party) what forbidden module `name` defines."""
        own = namespace.get("__name__")
        strict = name.split(".")[0] in self.partial
        for attr, value in list(namespace.items()):
            if attr.startswith("__") or isinstance(value, types.ModuleType) \
                    or not callable(value) or getattr(value, "__wrapped_forbidden__", False) \
                    or not self._defined_in_forbidden(value, own):
                continue
            qualname = f"{name}.{attr}"
            if strict:
                self._disable(value, qualname, own)
                if not isinstance(value, types.FunctionType):
                    namespace[attr] = self.tripwire(qualname, value)
            elif not isinstance(value, type):
                namespace[attr] = self.library_only(qualname, value)

    def _defined_in_forbidden(self, value, own) -> bool:
        origin = getattr(value, "__module__", None)
        return isinstance(origin, str) and (origin == own or bool(self.policy.hit(origin)))

    def _disable(self, value, qualname: str, own) -> None:
        """Kill the functions inside a course_lib object: a function (and the one it wraps), a
        class's methods, the Python function behind a Numba dispatcher."""
        if isinstance(value, type):
            inside = [(f"{qualname}.{attr}", inner) for attr, member in list(vars(value).items())
                      for inner in (member, getattr(member, "__func__", None),
                                    *(getattr(member, a, None) for a in ("fget", "fset", "fdel")))]
        else:
            inside = [(qualname, value)] + [(qualname, getattr(value, attr, None))
                                            for attr in ("py_func", "__wrapped__", "__func__")]
        for name, inner in inside:
            if isinstance(inner, types.FunctionType) and self._defined_in_forbidden(inner, own):
                self._kill(inner, name)

    def _kill(self, function: types.FunctionType, qualname: str) -> None:
        """Give `function` a tripwire as its code: every reference to it is dead from now on."""
        if getattr(function, "__wrapped_forbidden__", False):
            return
        code = function.__code__
        template = self._stubs.get(len(code.co_freevars)) or self._stub(len(code.co_freevars))
        consts = tuple(qualname if c == _PLACEHOLDER else c for c in template.co_consts)
        function.__code__ = template.replace(co_consts=consts, co_name=code.co_name,
                                             co_qualname=code.co_qualname)
        function.__wrapped_forbidden__ = True

    def _stub(self, free: int) -> types.CodeType:
        """Code of `def f(*args, **kwargs): raise __autograder_forbidden__(name)` with `free`
        free variables (a function's new code must have as many as its closure)."""
        cells = [f"cell{i}" for i in range(free)]
        source = "\n".join(["def outer():", *(f"    {c} = None" for c in cells),
                            "    def stub(*args, **kwargs):",
                            f"        ({''.join(c + ', ' for c in cells)})",
                            f"        raise {_HANDLER}({_PLACEHOLDER!r})",
                            "    return stub"])
        namespace: dict = {}
        exec(compile(source, "<not allowed here>", "exec"), namespace)  # noqa: S102 - our text
        self._stubs[free] = namespace["outer"]().__code__
        return self._stubs[free]

    def tripwire(self, qualname: str, original):
        guard = self

        def forbidden_call(*args, **kwargs):
            raise guard._refuse(qualname, "call", RuntimeError)

        forbidden_call.__name__ = getattr(original, "__name__", "forbidden")
        forbidden_call.__module__ = getattr(original, "__module__", None)
        forbidden_call.__wrapped_forbidden__ = True
        return forbidden_call

    def library_only(self, qualname: str, original):
        """`original` for library code; refused (and recorded) when student code calls it."""
        guard = self

        def library_only_call(*args, **kwargs):
            if guard.answerable(sys._getframe(1)):
                raise guard._refuse(qualname, "call", RuntimeError)
            return original(*args, **kwargs)

        for attr in ("__name__", "__qualname__", "__doc__", "__module__"):
            try:
                setattr(library_only_call, attr, getattr(original, attr))
            except (AttributeError, TypeError):
                pass
        library_only_call.__wrapped_forbidden__ = True
        return library_only_call

    # ------------------------------------------------------------------ audit hook
    def audit(self, event: str, args: tuple, caller) -> None:
        """Audit hook (for the events in _CODE_EVENTS and _PROBE_EVENTS only)."""
        if event in _PROBE_EVENTS:
            if self.student(caller):
                raise self._refuse(event, "call", RuntimeError)
            return
        if event == "object.__setattr__":
            if args[1] != "__code__":
                return
            code = args[2]
        else:
            code = args[0]
        if code is self._sanctioned:
            self._sanctioned = None
            return
        name = self.forbidden_file(code.co_filename) if isinstance(code, types.CodeType) else None
        if name is not None:
            raise self._refuse(name, "exec", RuntimeError)

    def install(self) -> None:
        import importlib
        import importlib.abc
        import importlib.util
        from importlib import _bootstrap, _bootstrap_external

        self._locate_packages()
        self._machinery = {Guard.install.__code__.co_filename,
                           importlib.import_module.__code__.co_filename,
                           importlib.util.find_spec.__code__.co_filename}
        guard = self
        run = _bootstrap._call_with_frames_removed
        extension_exec = _bootstrap_external.ExtensionFileLoader.exec_module

        def exec_module(loader, module):
            guard.exec_module(loader, module, run)

        def exec_extension(loader, module):
            guard.exec_extension(loader, module, extension_exec)

        class RefuseFinder(importlib.abc.MetaPathFinder):
            """Forbidden third-party packages load only for a library's own use."""

            def find_spec(self, fullname, path=None, target=None):
                guard.refuse_load(fullname)
                return None

        builtins.__import__ = self.guarded_import
        self._original_import_module = importlib.import_module
        self._resolve_name = importlib.util.resolve_name
        importlib.import_module = self.guarded_import_module
        setattr(builtins, _HANDLER, self.forbidden_called)
        _bootstrap_external._LoaderBasics.exec_module = exec_module
        _bootstrap_external.ExtensionFileLoader.exec_module = exec_extension
        sys.meta_path.insert(0, RefuseFinder())
        watched = _CODE_EVENTS | _PROBE_EVENTS

        def hook(event, args):
            if event in watched:            # called for every audit event: keep this cheap
                guard.audit(event, args, sys._getframe(1))

        sys.addaudithook(hook)
