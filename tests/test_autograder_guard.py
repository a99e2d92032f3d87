"""The import guard on its own (autograder/sandbox/guard.py): what student code may import and
call, whoever else imports what.

The guard runs in a plain subprocess per policy (no sandbox: a few seconds in all), installed as
the sandbox's child installs it; each case is student code compiled as the child compiles it
(file `<student ...>`, module `__student__`) and run as a graded call `call:<case>`. A case
reports whether it ran, its error and the events the guard recorded for it.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from autograder.suites import load_suite

ROOT = Path(__file__).resolve().parent.parent

DRIVER = """
import json, sys, textwrap
import numpy  # noqa: F401 - the child imports numpy before installing the guard
from autograder.forbidden import Policy
from autograder.sandbox.guard import STUDENT_MODULE, Guard
spec = json.loads(sys.stdin.read())
guard = Guard(Policy(spec["forbidden"], spec["allowed"]))
guard.install()
namespace = {"__name__": STUDENT_MODULE, "__builtins__": __builtins__}
outcomes = {}
for case, code in spec["cases"].items():
    guard.context = f"call:{case}"
    try:
        exec(compile(textwrap.dedent(code), f"<student {case}>", "exec"), namespace)
        outcome = {"ok": True, "value": repr(namespace.get("result"))}
    except BaseException as exc:
        outcome = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    guard.patch_reference_modules()
    outcome["events"] = [[e["what"], e["how"], e["context"]] for e in guard.drain()]
    outcomes[case] = outcome
print("@@outcomes@@" + json.dumps(outcomes))
"""


def run_student(assignment: str, cases: dict[str, str]) -> dict[str, dict]:
    suite = load_suite(assignment)
    spec = {"forbidden": suite.forbidden, "allowed": list(suite.allowed), "cases": cases}
    done = subprocess.run([sys.executable, "-c", DRIVER], input=json.dumps(spec), cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "@@outcomes@@" in done.stdout, done.stderr[-3000:]
    return json.loads(done.stdout.split("@@outcomes@@")[1])


def refused(outcome: dict, what: str) -> bool:
    """The case failed, and the guard recorded `what` against it."""
    return not outcome["ok"] and any(e[0] == what for e in outcome["events"])


# ----------------------------------------------------------------------------- course_lib (a2)

SETUP = """
import importlib, importlib.machinery, importlib.util, sys, types
import numpy as np
import course_lib
x, w, b = np.ones((2, 3)), np.ones((3, 4)), np.zeros(4)
AFFINE = importlib.util.find_spec("course_lib.layers.affine").origin
"""
# Ways to reach course_lib.layers.affine.affine_forward again after the guard disabled it.
REACHED_AGAIN = {
    "attribute_chain": "result = course_lib.layers.affine.affine_forward(x, w, b)",
    "module_dict": """
        result = vars(sys.modules["course_lib.layers.affine"])["affine_forward"](x, w, b)
    """,
    "purge_and_import_again": """
        for name in [n for n in sys.modules if n.split(".")[0] == "course_lib"]:
            del sys.modules[name]
        import course_lib
        result = course_lib.affine_forward(x, w, b)
    """,
    "purge_one_module_and_importlib_dunder_import": """
        del sys.modules["course_lib.layers.affine"]
        module = importlib.__import__("course_lib.layers.affine", fromlist=["affine_forward"])
        result = module.affine_forward(x, w, b)
    """,
    "reload": """
        module = importlib.reload(sys.modules["course_lib.layers.affine"])
        result = module.affine_forward(x, w, b)
    """,
    "spec_from_file_location_under_a_new_name": """
        spec = importlib.util.spec_from_file_location("my_affine", AFFINE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        result = module.affine_forward(x, w, b)
    """,
    "source_file_loader_load_module": """
        module = importlib.machinery.SourceFileLoader("my_affine2", AFFINE).load_module()
        result = module.affine_forward(x, w, b)
    """,
    "reexport_in_package": "result = course_lib.affine_forward(x, w, b)",
}
# Ways to run the library's code without importing its module.
RUN_OTHERWISE = {
    "runpy": "import runpy\nresult = runpy.run_path(AFFINE)['affine_forward'](x, w, b)",
    "exec_of_its_compiled_code": """
        namespace = {"__name__": "copy"}
        code = importlib.machinery.SourceFileLoader("c", AFFINE).get_code("c")
        exec(code, namespace)
        result = namespace["affine_forward"](x, w, b)
    """,
    "function_from_its_code": """
        code = importlib.machinery.SourceFileLoader("c", AFFINE).get_code("c")
        inner = next(c for c in code.co_consts if getattr(c, "co_name", "") == "affine_forward")
        f = types.FunctionType(inner, vars(sys.modules["course_lib.layers.affine"]))
        result = f(x, w, b)
    """,
    "code_assigned_to_own_function": """
        code = importlib.machinery.SourceFileLoader("c", AFFINE).get_code("c")
        inner = next(c for c in code.co_consts if getattr(c, "co_name", "") == "affine_forward")
        def mine(x, w, b):
            pass
        mine.__code__ = inner
        result = mine(x, w, b)
    """,
    "own_loader_subclass": """
        class Loader(importlib.machinery.SourceFileLoader):
            def exec_module(self, module):
                exec(self.get_code(self.name), module.__dict__)
        module = types.ModuleType("mine")
        Loader("mine", AFFINE).exec_module(module)
        result = module.affine_forward(x, w, b)
    """,
}
BY_NAME = {
    "import_module": "importlib.import_module('course_lib.layers.affine')",
    "dunder_import": "__import__('course_lib.layers.affine', None, None, ['affine_forward'])",
    "from_package_import_module": "from course_lib.layers import affine",
}
PROBES = {
    "gc_walk": """
        import gc
        result = [o for o in gc.get_objects() if getattr(o, "__name__", "") == "affine_forward"]
    """,
    "trace": "sys.settrace(lambda *args: None)",
}
ALLOWED_A2 = {
    "gradient_check": """
        from course_lib.gradient_check import rel_error
        result = float(rel_error(1.0, 1.0))
    """,
    "solver_with_own_rule": """
        from course_lib import Solver
        class Model:
            def __init__(self):
                self.params = {"W": np.zeros((4, 3))}
            def loss(self, X, y=None):
                scores = X @ self.params["W"]
                if y is None:
                    return scores
                return float((scores ** 2).mean()), {"W": X.T @ scores / len(X)}
        def sgd(w, dw, config=None):
            return w - 0.1 * dw, config or {}
        data = {"X_train": np.ones((8, 4)), "y_train": np.zeros(8, int),
                "X_val": np.ones((4, 4)), "y_val": np.zeros(4, int)}
        Solver(Model(), data, update_rule=sgd, num_epochs=1, batch_size=4, verbose=False).train()
        result = "trained"
    """,
    "solver_with_library_rule": """
        Solver(Model(), data, update_rule="adam", num_epochs=1, batch_size=4,
               verbose=False).train()
    """,
}


@pytest.fixture(scope="module")
def a2(tmp_path_factory):
    link = tmp_path_factory.mktemp("links") / "affine_link.py"
    cases = {"setup": SETUP, **REACHED_AGAIN, **RUN_OTHERWISE, **BY_NAME, **PROBES,
             **ALLOWED_A2, "symlink_to_the_file": f"""
        os_link = {str(link)!r}
        import os
        os.symlink(AFFINE, os_link)
        spec = importlib.util.spec_from_file_location("linked", os_link)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        result = module.affine_forward(x, w, b)
    """}
    return run_student("a2_fully_connected", {k: textwrap.dedent(v) for k, v in cases.items()})


def test_setup_imports_course_lib_without_events(a2):
    assert a2["setup"]["ok"] and a2["setup"]["events"] == []


@pytest.mark.parametrize("case", [*REACHED_AGAIN, "symlink_to_the_file"])
def test_reference_function_reached_again_stays_a_tripwire(a2, case):
    assert refused(a2[case], "course_lib.layers.affine.affine_forward"), a2[case]
    assert a2[case]["events"][0][2] == f"call:{case}"


@pytest.mark.parametrize("case", sorted(RUN_OTHERWISE))
def test_running_the_reference_code_any_other_way_is_refused(a2, case):
    assert refused(a2[case], "course_lib.layers.affine"), a2[case]


@pytest.mark.parametrize("case", sorted(BY_NAME))
def test_importing_a_reference_module_by_name_is_refused(a2, case):
    assert a2[case]["error"].startswith("ImportError"), a2[case]
    assert a2[case]["events"][0][0] in ("course_lib.layers.affine", "course_lib.layers")


@pytest.mark.parametrize("case", sorted(PROBES))
def test_walking_the_heap_or_tracing_is_refused_to_student_code(a2, case):
    assert not a2[case]["ok"] and a2[case]["events"], a2[case]


def test_allowed_helpers_and_the_solver_with_the_students_own_rule_work(a2):
    assert a2["gradient_check"] == {"ok": True, "value": "0.0", "events": []}
    assert a2["solver_with_own_rule"] == {"ok": True, "value": "'trained'", "events": []}


def test_the_solver_with_a_library_update_rule_is_charged_where_optim_is_forbidden(a2):
    assert refused(a2["solver_with_library_rule"], "course_lib.optim.adam")


# ----------------------------------------------------------------------------- scipy (a1)

A1_CASES = {
    "setup": """
        import importlib, sys
        import numpy as np
        a = np.random.default_rng(0).standard_normal((5, 3))
    """,
    "scipy_stats_mode": """
        import scipy.stats
        result = scipy.stats.mode(np.array([[1, 2, 2, 1]]), axis=1, keepdims=False).mode
    """,
    "from_scipy_import_stats": "from scipy import stats\nresult = stats.mode([3, 3, 1]).mode",
    "import_spatial": "import scipy.spatial",
    "from_scipy_import_spatial": "from scipy import spatial",
    "import_module_spatial": "importlib.import_module('scipy.spatial.distance')",
    "dunder_import_spatial": "__import__('scipy.spatial.distance')",
    "cdist_from_sys_modules": "result = sys.modules['scipy.spatial.distance'].cdist(a, a)",
    "cdist_via_importlib_dunder_import": """
        module = importlib.__import__("scipy.spatial.distance", fromlist=["cdist"])
        result = module.cdist(a, a)
    """,
    "compiled_helper_from_sys_modules": """
        result = sys.modules["scipy.spatial._distance_pybind"].cdist_euclidean(a, a)
    """,
    "logsumexp_through_a_stats_module": """
        import scipy.stats._stats_py
        result = scipy.stats._stats_py.special.logsumexp(a)
    """,
    "cdist_in_code_compiled_at_run_time": """
        namespace = {"f": sys.modules["scipy.spatial.distance"].cdist, "a": a}
        exec("result = f(a, a)", namespace)
    """,
    "cdist_through_map": """
        result = list(map(sys.modules["scipy.spatial.distance"].cdist, [a], [a]))
    """,
    "load_digits_imports_forbidden_sklearn": """
        import course_lib
        course_lib.load_digits(num_validation=10, num_test=10)
    """,
    "scipy_stats_still_works": """
        result = (float(scipy.stats.entropy([0.5, 0.5])), float(scipy.stats.norm.cdf(0.0)))
    """,
}


@pytest.fixture(scope="module")
def a1():
    return run_student("a1_linear_classifiers",
                       {k: textwrap.dedent(v) for k, v in A1_CASES.items()})


def test_allowed_scipy_stats_imports_forbidden_modules_on_its_own_behalf(a1):
    assert a1["scipy_stats_mode"] == {"ok": True, "value": "array([1])", "events": []}
    assert a1["from_scipy_import_stats"] == {"ok": True, "value": "np.int64(3)", "events": []}
    assert a1["scipy_stats_still_works"]["ok"] and not a1["scipy_stats_still_works"]["events"]


@pytest.mark.parametrize("case", ["import_spatial", "from_scipy_import_spatial",
                                  "import_module_spatial", "dunder_import_spatial"])
def test_student_code_may_not_import_what_scipy_stats_loaded(a1, case):
    assert a1[case]["error"].startswith("ImportError"), a1[case]
    assert a1[case]["events"][0][0].startswith("scipy.spatial")


@pytest.mark.parametrize("case, function", [
    ("cdist_from_sys_modules", "scipy.spatial.distance.cdist"),
    ("cdist_via_importlib_dunder_import", "scipy.spatial.distance.cdist"),
    ("compiled_helper_from_sys_modules", "scipy.spatial._distance_pybind.cdist_euclidean"),
    ("logsumexp_through_a_stats_module", "scipy.special._logsumexp.logsumexp"),
    ("cdist_in_code_compiled_at_run_time", "scipy.spatial.distance.cdist"),
    ("cdist_through_map", "scipy.spatial.distance.cdist"),
])
def test_student_code_may_not_call_a_function_of_a_forbidden_module(a1, case, function):
    assert refused(a1[case], function), a1[case]
    assert a1[case]["error"].startswith("RuntimeError")


def test_course_lib_may_not_import_a_forbidden_package_for_the_student(a1):
    # course_lib is held to the student's rule: load_digits cannot bring in sklearn in a1.
    assert refused(a1["load_digits_imports_forbidden_sklearn"], "sklearn")


# ----------------------------------------------------------------------------- a3: partly allowed

def test_a3_the_conv_kernels_stay_out_of_reach_beside_the_allowed_kernels():
    # a3 allows course_lib.kernels.threads, .elementwise and .optim (the given layers run on
    # them), which makes the package course_lib.kernels importable; its conv kernel must stay
    # dead however it is reached, including through Numba's own registry of dispatchers.
    setup = """
        import numpy as np
        x, cols = np.ones((1, 1, 3, 3)), np.empty((1, 9, 9))
    """
    outcomes = run_student("a3_convolutional_nets", {
        k: textwrap.dedent(setup) + textwrap.dedent(v) for k, v in {
        "through_the_kernels_package": """
            import course_lib.kernels as kernels
            kernels.conv.im2col(x, 0, 3, 3, 1, 1, 3, 3, cols)
        """,
        "through_the_conv_layer_module": """
            import sys
            sys.modules["course_lib.layers.conv"].kernels.im2col(x, 0, 3, 3, 1, 1, 3, 3, cols)
        """,
        "through_numba_dispatcher_registry": """
            from numba.core.dispatcher import Dispatcher
            found = [d for d in list(Dispatcher._memo.values())
                     if getattr(d.py_func, "__name__", "") == "im2col"]
            found[0](x, 0, 3, 3, 1, 1, 3, 3, cols)
        """,
        "allowed_kernel": """
            from course_lib.kernels.threads import over_batch
            result = sum(over_batch(lambda lo, hi: hi - lo, 4, 10**9))
        """,
    }.items()})
    for case in ("through_the_kernels_package", "through_the_conv_layer_module"):
        assert refused(outcomes[case], "course_lib.kernels.conv.im2col"), outcomes[case]
    registry = outcomes["through_numba_dispatcher_registry"]
    assert not registry["ok"] and registry["error"].startswith("IndexError"), registry
    assert outcomes["allowed_kernel"] == {"ok": True, "value": "4", "events": []}


# The forward conv kernel taken from Numba's on-disk cache: its source, copied from conv.py,
# is compiled under conv.py's file name and line (the decorator made a no-op), so that Numba
# finds the cache entry of the real kernel, whose bytecode hash it matches, and loads the
# compiled machine code instead of compiling the copy (which could not compile: im2col and gemm
# are not defined here). Loading it rebuilds the kernel's globals by importing the module it
# was cached from (course_lib.kernels.conv), whatever the copy's own module name: the guard's cue.
# Through the real `autograder check` the full sandbox refused it as well (0 / 9 points).
CACHED_CONV_KERNEL = """
import os, types
import numpy as np
import numba
import course_lib.kernels as kernels_package  # importable in a3 (threads, elementwise, optim)
conv_py = os.path.join(os.path.dirname(kernels_package.__file__), "conv.py")
lines = open(conv_py).read().splitlines(keepends=True)
start = next(i for i, t in enumerate(lines) if t.startswith("def conv_forward_images"))
end = start + 1
while end < len(lines) and lines[end].startswith((" ", "\\n")):
    end += 1
source = "\\n" * (start - 1) + "".join(lines[start - 1:end])
namespace = {"__name__": "copied_kernel", "np": np, "JIT_OPTIONS": {},
             "numba": types.SimpleNamespace(njit=lambda **options: (lambda f: f))}
exec(compile(source, conv_py, "exec"), namespace)
kernel = numba.njit(cache=True, nogil=True)(namespace["conv_forward_images"])
x, w = np.ones((1, 1, 3, 3)), np.ones((2, 1, 3, 3))
w_rows = np.concatenate([w.reshape(2, 9), np.zeros((2, 1))], axis=1)
cols, out = np.ones((1, 10, 9)), np.empty((1, 2, 9))
kernel(x, 0, 1, 3, 3, 1, 1, 3, 3, w_rows, 9, cols, out)
result = (sum(kernel.stats.cache_hits.values()), float(out[0, 0, 4]))
"""


def test_a3_the_conv_kernel_stays_out_of_reach_through_numbas_disk_cache():
    import course_lib
    # The same argument types as the attack, so that the kernel's cache entry exists.
    course_lib.conv_forward(np.ones((1, 1, 3, 3)), np.ones((2, 1, 3, 3)), np.zeros(2),
                            {"stride": 1, "pad": 1})
    unguarded = subprocess.run([sys.executable, "-c", CACHED_CONV_KERNEL + "print(result)"],
                               cwd=ROOT, capture_output=True, text=True, timeout=300,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    # Without the guard the route works: one cache hit, and the centre pixel is 9 ones.
    assert unguarded.stdout.strip() == "(1, 9.0)", unguarded.stderr[-2000:]
    outcome = run_student("a3_convolutional_nets", {"numba_cache": CACHED_CONV_KERNEL})
    assert refused(outcome["numba_cache"], "course_lib.kernels.conv"), outcome


def test_a3_allows_the_dense_layers_and_optimizers_and_disables_the_conv_layers():
    outcomes = run_student("a3_convolutional_nets", {k: textwrap.dedent(v) for k, v in {
        "dense": """
            import numpy as np
            from course_lib import affine_forward, relu_forward
            out, _ = affine_forward(np.ones((2, 3)), np.ones((3, 4)), np.zeros(4))
            result = float(relu_forward(out)[0].sum())
        """,
        "optimizer": """
            import course_lib
            result = float(course_lib.adam(np.ones(2), np.ones(2))[0].sum())
        """,
        "conv": """
            from course_lib import conv_forward
            conv_forward(np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3)), np.zeros(1),
                         {"stride": 1, "pad": 1})
        """,
        "composite_calling_allowed_layers": "course_lib.affine_relu_forward(np.ones((2, 3)), "
                                            "np.ones((3, 4)), np.zeros(4))",
    }.items()})
    assert outcomes["dense"] == {"ok": True, "value": "24.0", "events": []}
    assert outcomes["optimizer"]["ok"] and not outcomes["optimizer"]["events"]
    assert refused(outcomes["conv"], "course_lib.layers.conv.conv_forward")
    assert refused(outcomes["composite_calling_allowed_layers"],
                   "course_lib.layers.composite.affine_relu_forward")
