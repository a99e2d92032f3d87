"""Reference layers lent to a model's checks (autograder.sandbox.references), and attacks on them.

While the hidden tests call a3's ThreeLayerConvNet, the grader lends it its reference
convolution and pooling, so a bug in a layer costs points once, in that layer's own tests. The
lent functions run in the trusted parent on arrays the untrusted child sends, so each guarantee
has a hostile submission here, graded by the real runner (and one by the real CLI) in a real
sandbox, with only the functions concerned selected (the training task is not run):

* a correct model on top of broken layers keeps its full marks, the layers lose theirs;
* a lent function kept for later (to get the reference's answers in the layers' own checks)
  is refused, and that costs the layers, not the grader;
* oversized or forged requests (a huge convolution, a forged cache, a function that was not
  lent, a token for a value the parent never kept) are refused quickly and cost the model.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.runner import GradeOptions, grade_batch
from autograder.sandbox import Limits

pytestmark = pytest.mark.slow

KIT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "a3_convolutional_nets"
SOLUTION = KIT / "tests" / "fixtures" / "assignments" / ASSIGNMENT / "solution.py"
SOURCE_DIR = KIT / "assignments" / "source"
LAYERS = ("conv_forward_naive", "conv_backward_naive", "max_pool_forward_naive",
          "max_pool_backward_naive")
SELECTED = (*LAYERS, "ThreeLayerConvNet")
LIMITS = Limits(call_timeout=20, load_timeout=10, submission_timeout=180)

BROKEN_LAYERS = '''
def conv_forward_naive(x, w, b, conv_param):
    raise RuntimeError("my convolution is not finished")

def max_pool_forward_naive(x, pool_param):
    out, cache = _pool_forward(x, pool_param)
    return 2 * out, cache          # wrong by a factor of 2
'''

STEAL_LENT_POOL = '''
_STOLEN = {}

class ThreeLayerConvNet(ThreeLayerConvNet):
    def loss(self, X, y=None):
        # During the model's check these names are the grader's reference layers: keep them.
        _STOLEN["forward"] = globals()["max_pool_forward_naive"]
        _STOLEN["backward"] = globals()["max_pool_backward_naive"]
        return super().loss(X, y)

def max_pool_forward_naive(x, pool_param):
    return _STOLEN["forward"](x, pool_param)    # the reference's answer, asked for later

def max_pool_backward_naive(dout, cache):
    return _STOLEN["backward"](dout, cache)
'''

OVERSIZED_REQUESTS = '''
class ThreeLayerConvNet(ThreeLayerConvNet):
    def loss(self, X, y=None):
        # A 4x4 image padded by 10,000 pixels: a 20,004 x 20,004 output, 3.2 GB in the parent.
        conv_forward_naive(np.ones((1, 1, 4, 4)), np.ones((1, 1, 1, 1)), np.zeros(1),
                           {"stride": 1, "pad": 10_000})
        return super().loss(X, y)
'''

FORGED_CACHE = '''
class ThreeLayerConvNet(ThreeLayerConvNet):
    def loss(self, X, y=None):
        # A cache made up here: 8 images of 64 channels against 64 filters of 9x9, 1.4e10
        # multiply-adds for the parent's backward pass.
        cache = ("conv_forward", np.ones((8, 64, 64, 64)), np.ones((64, 64, 9, 9)), 1, 4)
        conv_backward_naive(np.ones((8, 64, 64, 64)), cache)
        return super().loss(X, y)
'''


FLOOD_OF_CACHES = '''
class ThreeLayerConvNet(ThreeLayerConvNet):
    def loss(self, X, y=None):
        # Each lent forward keeps its cache in the grader: ask for more than it will keep.
        x, w = np.ones((1, 1, 2, 2)), np.ones((1, 1, 1, 1))
        for _ in range(10_001):
            conv_forward_naive(x, w, np.zeros(1), {"stride": 1, "pad": 0})
        return super().loss(X, y)
'''


def raw_request(header: str) -> str:
    """Student code that writes one request straight to the pipe the child answers on."""
    return f'''
import json
import struct
import sys

class ThreeLayerConvNet(ThreeLayerConvNet):
    def loss(self, X, y=None):
        reply_fd = json.loads(sys.argv[1])["fds"][1]
        text = json.dumps({header}).encode()
        os.write(reply_fd, struct.pack(">I", len(text)) + text)
        return super().loss(X, y)

import os
'''


# A function the parent did not lend to this call; a token for a value it never kept.
NOT_LENT = raw_request('{"op": "reference", "name": "spatial_batchnorm_forward", "args": [], '
                       '"kwargs": [], "buffers": []}')
UNKNOWN_TOKEN = raw_request('{"op": "reference", "name": "conv_backward_naive", "args": '
                            '[{"t": "none"}, {"t": "ref", "id": 1000000}], "kwargs": [], '
                            '"buffers": []}')


def submission(folder: Path, name: str, attack: str) -> Path:
    """The a3 solution with `attack` appended (later definitions win)."""
    path = folder / f"{name}.py"
    code = SOLUTION.read_text()
    code = code.replace("def max_pool_forward_naive(", "def _pool_forward(", 1) + \
        "\n\nmax_pool_forward_naive = _pool_forward\n"
    path.write_text(code + "\n" + attack)
    return path


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("lending")
    attacks = {"solution": "", "broken_layers": BROKEN_LAYERS, "steal_lent_pool": STEAL_LENT_POOL,
               "oversized_requests": OVERSIZED_REQUESTS, "forged_cache": FORGED_CACHE,
               "not_lent": NOT_LENT, "unknown_token": UNKNOWN_TOKEN,
               "flood_of_caches": FLOOD_OF_CACHES}
    paths = [submission(folder, name, code) for name, code in attacks.items()]
    options = GradeOptions(assignment=ASSIGNMENT, source_dir=SOURCE_DIR,
                           out_dir=folder / "results", limits=LIMITS, functions=SELECTED)
    clock = time.monotonic()
    summary = grade_batch(paths, options, jobs=2, progress=False, gradebook=False)
    assert not summary.failed, summary.failed
    results = {Path(r["submission"]["path"]).stem: r for r in summary.results}
    results["_seconds"] = time.monotonic() - clock
    return results


def scores(result: dict) -> dict[str, float]:
    return {f: s["score"] for f, s in result["functions"].items()}


def full(result: dict) -> dict[str, float]:
    return {f: s["max_score"] for f, s in result["functions"].items()}


def messages(result: dict, function: str) -> str:
    return "\n".join(t["message"] for t in result["tests"] if t["function"] == function)


def test_the_solution_scores_full_marks_with_lent_layers(graded):
    result = graded["solution"]
    assert list(result["functions"]) == list(SELECTED)
    assert scores(result) == full(result) and result["max_score"] > 0


def test_a_correct_model_on_broken_layers_keeps_its_marks(graded):
    got, want = scores(graded["broken_layers"]), full(graded["broken_layers"])
    assert got["ThreeLayerConvNet"] == want["ThreeLayerConvNet"]
    assert got["conv_forward_naive"] == 0
    assert got["max_pool_forward_naive"] < want["max_pool_forward_naive"]
    assert "my convolution is not finished" in messages(graded["broken_layers"],
                                                        "conv_forward_naive")


def test_a_lent_function_kept_for_later_is_refused_and_costs_the_layers(graded):
    result = graded["steal_lent_pool"]
    got, want = scores(result), full(result)
    assert got["ThreeLayerConvNet"] == want["ThreeLayerConvNet"]
    assert got["max_pool_forward_naive"] == 0 and got["max_pool_backward_naive"] == 0
    assert "malformed reply" in messages(result, "max_pool_forward_naive")
    assert got["conv_forward_naive"] == want["conv_forward_naive"]


@pytest.mark.parametrize("attack", ["oversized_requests", "forged_cache"])
def test_oversized_requests_are_refused_quickly_and_cost_the_model(graded, attack):
    result = graded[attack]
    got, want = scores(result), full(result)
    assert got["ThreeLayerConvNet"] < want["ThreeLayerConvNet"]
    assert "refuses inputs this large" in messages(result, "ThreeLayerConvNet")
    assert all(got[f] == want[f] for f in LAYERS)
    # Five hundred billion multiply-adds would take the parent many minutes.
    assert result["run"]["seconds"] < 90


@pytest.mark.parametrize("attack", ["not_lent", "unknown_token"])
def test_forged_requests_are_the_students_failure_not_the_graders(graded, attack):
    result = graded[attack]
    got, want = scores(result), full(result)
    assert got["ThreeLayerConvNet"] == 0
    assert "malformed reply" in messages(result, "ThreeLayerConvNet")
    assert all(got[f] == want[f] for f in LAYERS)
    assert not [e for e in result["errors"] if "internal error" in e["message"]]


def test_the_cli_check_reports_a_stolen_reference_as_the_layers_failure(tmp_path):
    path = submission(tmp_path, "steal", STEAL_LENT_POOL)
    done = subprocess.run(
        [sys.executable, "-m", "autograder", "check", str(path), "--assignment", ASSIGNMENT,
         "--source", str(SOURCE_DIR), "--json", str(tmp_path / "r.json"),
         *[arg for f in ("max_pool_forward_naive", "ThreeLayerConvNet")
           for arg in ("--function", f)]],
        capture_output=True, text=True, timeout=300, cwd=KIT, env=dict(os.environ))
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "r.json").read_text())
    assert scores(result)["max_pool_forward_naive"] == 0
    assert scores(result)["ThreeLayerConvNet"] == full(result)["ThreeLayerConvNet"]
    assert "[FAIL] max_pool_forward_naive" in done.stdout


def test_a_flood_of_kept_caches_is_refused_and_costs_the_model(graded):
    result = graded["flood_of_caches"]
    got, want = scores(result), full(result)
    assert got["ThreeLayerConvNet"] < want["ThreeLayerConvNet"]
    assert "more than 10,000 values kept" in messages(result, "ThreeLayerConvNet")
    assert all(got[f] == want[f] for f in LAYERS)
    assert not [e for e in result["errors"] if "internal error" in e["message"]]
