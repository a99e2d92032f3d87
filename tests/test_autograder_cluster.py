"""Grading on Dask distributed, on loopback only: a real LocalCluster of 2 worker processes on
127.0.0.1 without a dashboard.

* `autograder grade --scheduler local:2` gives the mutant and attack fixtures the same graded
  results as `--jobs 2` (fixture a2 suite, 24 points);
* a Dask worker killed (SIGKILL) while it grades loses no grade and grades nothing twice: its
  task is rescheduled, every other task completes exactly once; a submission that kills
  every worker that takes it gets an internal-error result with Dask's reason, alone;
* the client killed (SIGKILL) mid-batch: the re-run skips what was written and grades the
  rest, and no worker process outlives the killed client.

The worker deaths are real: a test worker plugin SIGKILLs its own Dask worker process when
the task of a marked submission starts executing (a lost node or the OOM killer looks the
same to the scheduler). Everything has timeouts and the clusters are closed in `finally`.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import pytest

from autograder import results
from autograder.runner import GradeOptions
from autograder.sandbox import Limits

distributed = pytest.importorskip("distributed", reason="the 'cluster' extra is not installed")

sys.path.insert(0, str(Path(__file__).parent))
from fixtures.autograder.support import (  # noqa: E402
    FIXTURE_SUITES,
    SOURCE_DIR,
    SUBMISSIONS,
    compose_attack,
)
from mutants import build_mutants, load_mutants  # noqa: E402

pytestmark = pytest.mark.slow
cloudpickle.register_pickle_by_value(sys.modules[__name__])   # the test plugin, on workers

KIT = Path(__file__).resolve().parents[1]
A2 = "a2_fully_connected"
POOL_SUITES = Path(__file__).parent / "fixtures" / "autograder" / "pool_suites"
A2_MUTANTS = Path(__file__).parent / "fixtures" / "assignments" / A2
MUTANTS = {"affine_forward_drops_bias", "relu_forward_modifies_x_in_place",
           "svm_loss_counts_the_true_class"}
ATTACKS = ["forbidden_imports.py", "exit_in_function.py", "patch_numpy_and_builtins.py",
           "evil_pickle.py"]
HONEST = "def answer():\n    return 42\n"


def cli(*args, env=None, timeout=400):
    env = dict(os.environ, **(env or {}))
    done = subprocess.run([sys.executable, "-m", "autograder", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=timeout, cwd=KIT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


# ----------------------------------------------------------------------------- same scores

def test_local_cluster_gives_the_mutants_and_attacks_the_same_results_as_jobs(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    for name in ("reference.py", "blank.py", "buggy.py"):
        (folder / name).write_text((SUBMISSIONS / name).read_text())
    for attack in ATTACKS:
        (folder / f"attack_{attack}").write_text(compose_attack(attack))
    chosen = [m for m in load_mutants(A2_MUTANTS) if m.name in MUTANTS]
    build_mutants(A2_MUTANTS / "solution.py", chosen, folder)
    env = {"AUTOGRADER_SUITES_PATH": str(FIXTURE_SUITES)}
    common = ["grade", "--assignment", A2, "--no-progress", "--call-timeout", "3",
              "--source", SOURCE_DIR, folder]
    cli(*common, "--jobs", "2", "--out", tmp_path / "jobs", env=env)
    done = cli(*common, "--scheduler", "local:2", "--out", tmp_path / "dask", env=env)
    names = sorted(p.stem for p in (tmp_path / "jobs").glob("*.json"))
    assert len(names) == 3 + len(ATTACKS) + len(MUTANTS)
    hosts = set()
    for name in names:
        local = results.read_result(tmp_path / "jobs" / f"{name}.json")
        dask = results.read_result(tmp_path / "dask" / f"{name}.json")
        assert results.graded_part(dask) == results.graded_part(local), name
        hosts.add(dask["run"]["dask_worker"])
    assert all(h.startswith("tcp://127.0.0.1:") for h in hosts) and len(hosts) == 2
    scores = {n: results.read_result(tmp_path / "dask" / f"{n}.json")["score"] for n in names}
    assert scores["reference"] == 24 and scores["blank"] == 0 and scores["buggy"] == 13
    assert all(0 < scores[m] < 24 for m in MUTANTS), scores
    assert f"{len(names)} graded" in done.stdout


# ----------------------------------------------------------------------------- worker deaths

class KillOnStart(distributed.WorkerPlugin):
    """SIGKILL this Dask worker when a marked task starts executing: `victim` the first time
    only, `poison` every time. Logs every task that finishes (reaches memory)."""

    def __init__(self, folder: str):
        self.folder = folder

    def transition(self, key, start, finish, **kwargs):
        name = str(key)
        if finish == "memory":
            self._log(f"finished {name} {os.getpid()}")
        if finish != "executing":
            return
        marker = os.path.join(self.folder, "victim-killed")
        if "-poison-" in name or ("-victim-" in name and not os.path.exists(marker)):
            open(marker if "-victim-" in name else os.devnull, "w").close()
            self._log(f"killed {name} {os.getpid()}")
            os.kill(os.getpid(), signal.SIGKILL)

    def _log(self, line: str) -> None:
        with open(os.path.join(self.folder, "events.log"), "a") as log:
            log.write(line + "\n")


def test_killed_workers_lose_no_grade_and_grade_nothing_twice(tmp_path, monkeypatch):
    import dask
    from distributed import Client, LocalCluster

    from autograder.cluster import ATTEMPTS, CLUSTER_CONFIG, grade_batch_on_cluster
    monkeypatch.setenv("AUTOGRADER_SUITES_PATH", str(POOL_SUITES))
    folder = tmp_path / "subs"
    folder.mkdir()
    names = [f"honest{i}" for i in range(6)] + ["victim", "poison"]
    for name in names:
        (folder / f"{name}.py").write_text(HONEST)
    logs = tmp_path / "logs"
    logs.mkdir()
    options = GradeOptions(assignment="pool_probe", out_dir=tmp_path / "out",
                           limits=Limits(call_timeout=10, load_timeout=10, submission_timeout=60),
                           worker_margin=30.0)
    with dask.config.set(CLUSTER_CONFIG):       # also while the Nanny restarts workers
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None, silence_logs=40)
        try:
            with Client(cluster, timeout=60) as client:
                client.register_plugin(KillOnStart(str(logs)), name="kill-on-start")
                summary = grade_batch_on_cluster(sorted(folder.iterdir()), options,
                                                 scheduler=cluster.scheduler_address,
                                                 progress=False, batch_timeout=300)
        finally:
            cluster.close(timeout=30)
    assert (logs / "victim-killed").exists()             # a worker really died mid-batch
    assert sorted(summary.graded) == sorted(n for n in names if n != "poison"), (
        summary.failed, (logs / "events.log").read_text())
    for name in names[:-1]:
        result = results.read_result(tmp_path / "out" / f"{name}.json")
        assert result["score"] == result["max_score"] == 1, (result["errors"], summary.failed)
    poison = results.read_result(tmp_path / "out" / "poison.json")
    assert poison["score"] == 0 and poison["key"]
    assert "killed" in poison["errors"][0]["message"].lower()
    assert "Dask workers" in poison["errors"][0]["message"]
    assert list(summary.failed) == ["poison"]
    events = [line.split() for line in (logs / "events.log").read_text().splitlines()]
    killed = {pid for kind, _, pid in events if kind == "killed"}
    finishes: dict[str, list[str]] = {}
    for kind, key, pid in events:
        if kind == "finished":
            finishes.setdefault(key, []).append(pid)
    assert len(finishes) == len(names) - 1
    for key, pids in finishes.items():
        # Graded again only if its first result died with its worker before the client
        # fetched it (Dask recomputes lost results); never once the client had it.
        assert all(pid in killed for pid in pids[:-1]), (key, pids, killed)
    assert len(killed) == 1 + ATTEMPTS          # the victim once, the poison on each attempt


def test_a_killed_client_loses_nothing_and_the_rerun_resumes(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    for i in range(16):
        (folder / f"student{i:02d}.py").write_text(HONEST)
    out = tmp_path / "out"
    env = dict(os.environ, AUTOGRADER_SUITES_PATH=str(POOL_SUITES))
    command = [sys.executable, "-m", "autograder", "grade", "--assignment", "pool_probe",
               "--scheduler", "local:2", "--no-progress", "--out", str(out), str(folder)]
    client = subprocess.Popen(command, env=env, cwd=KIT, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while len(list(out.glob("*.json"))) < 2 and time.monotonic() < deadline:
            assert client.poll() is None, "the batch ended before it could be killed"
            time.sleep(0.05)
        client.send_signal(signal.SIGKILL)
        client.wait(timeout=30)
        written = sorted(p.stem for p in out.glob("*.json"))
        assert 2 <= len(written) < 16
        # The client's workers notice it is gone and exit by themselves.
        deadline = time.monotonic() + 60
        while _group_alive(client.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _group_alive(client.pid), "Dask workers outlived the killed client"
    finally:
        if _group_alive(client.pid):
            os.killpg(client.pid, signal.SIGKILL)
    done = subprocess.run(command, env=env, cwd=KIT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{16 - len(written)} graded, {len(written)} up to date" in done.stdout
    for path in out.glob("*.json"):
        if path.stem.startswith("student"):
            assert results.read_result(path)["score"] == 1


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_scheduler_usage_errors_name_the_option_and_what_was_expected():
    blank = SUBMISSIONS / "blank.py"
    for extra, message in ((["--scheduler", "local:x"], "must be local:N"),
                           (["--scheduler", "local:2", "--jobs", "2"], "exclude each other")):
        done = subprocess.run([sys.executable, "-m", "autograder", "grade", "--assignment", A2,
                               *extra, str(blank)], capture_output=True, text=True, timeout=120,
                              cwd=KIT, env=dict(os.environ,
                                                AUTOGRADER_SUITES_PATH=str(FIXTURE_SUITES)))
        assert done.returncode == 2 and message in done.stderr, done.stderr
