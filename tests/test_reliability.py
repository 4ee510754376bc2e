"""Faults: an unreachable tracking server, interrupted and diverging stages, a new store
opened by parallel workers. Each is reported in one line and leaves no run RUNNING."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Project, model_runs, tiny_params, write_yaml
from ruamel.yaml import YAML

from pipeline import cli, tracking
from pipeline.errors import LabError, TrackingError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts connections and never answers: a hung server or a firewall."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def local_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default store, in tmp_path, as a stage sees it."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    return tmp_path


@pytest.fixture
def restore_signals() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


# --- an unreachable tracking server -------------------------------------------------------


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_unreachable_server_fails_fast_naming_the_uri(
    kind: str, silent_server: str, monkeypatch: pytest.MonkeyPatch
):
    uri = f"http://127.0.0.1:{free_port()}" if kind == "refused" else silent_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    started = time.monotonic()
    with pytest.raises(TrackingError) as caught:
        tracking.use_experiment("l2-lab")
    assert time.monotonic() - started < 15  # MLflow's own retries take minutes
    message = str(caught.value)
    assert f"MLflow tracking server {uri} is unreachable" in message
    assert "\n" not in message


def test_http_retries_are_bounded_unless_the_user_set_them(
    local_store: Path, monkeypatch: pytest.MonkeyPatch
):
    for name in tracking.HTTP_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "99")
    tracking.connect()
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "99"


@pytest.mark.slow
def test_train_stage_with_unreachable_server_fails_before_training(tmp_path: Path):
    from pipeline.prepare import prepare

    write_yaml(tmp_path / "params.yaml", tiny_params())
    prepare(tmp_path / "params.yaml", tmp_path / "prepared")
    uri = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "DVC_ROOT": str(tmp_path)}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.train", "--entry", "plain", "--params",
         str(tmp_path / "params.yaml"), "--prepared", str(tmp_path / "prepared"),
         "--out", str(tmp_path / "models" / "plain")],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert time.monotonic() - started < 30
    assert result.returncode == cli.EXIT_BAD_INPUT, result.stderr
    assert f"error: train: MLflow tracking server {uri} is unreachable" in result.stderr
    assert " epoch " not in result.stderr  # stopped before the first epoch
    assert not (tmp_path / "models").exists()


# --- run status: FINISHED, FAILED with the reason, KILLED ---------------------------------


def _only_run(store: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("l2-lab")
    (run,) = client.search_runs([experiment.experiment_id])
    return run


def test_a_failing_stage_ends_its_run_failed_with_the_reason(local_store: Path):
    with pytest.raises(LabError), tracking.entry_run("l2-lab", "plain"):
        raise LabError("entry 'plain': loss became nan at epoch 3; lower train.learning_rate")
    run = _only_run(local_store)
    assert run.info.status == "FAILED"
    assert run.data.tags["failure_reason"].startswith("entry 'plain': loss became nan at epoch 3")


def test_an_interrupted_stage_ends_its_run_killed(local_store: Path):
    with pytest.raises(KeyboardInterrupt), tracking.entry_run("l2-lab", "plain"):
        raise cli.Interrupted(signal.SIGTERM)
    run = _only_run(local_store)
    assert run.info.status == "KILLED"
    assert run.data.tags["failure_reason"] == "interrupted by SIGTERM"


def test_an_interrupted_evaluation_ends_the_reopened_run_killed(local_store: Path):
    with tracking.entry_run("l2-lab", "plain") as run_id:
        pass
    with pytest.raises(KeyboardInterrupt), tracking.resumed_run(run_id):
        raise cli.Interrupted(signal.SIGINT)
    assert _only_run(local_store).info.status == "KILLED"


def test_a_store_failure_during_a_run_is_one_line(local_store: Path):
    from mlflow.exceptions import MlflowException

    with pytest.raises(TrackingError) as caught, tracking.entry_run("l2-lab", "plain"):
        raise MlflowException("API request failed\nwith a long traceback")
    assert "failed during run" in str(caught.value) and "\n" not in str(caught.value)
    assert _only_run(local_store).info.status == "FAILED"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_unwinds_the_stage_and_exits_128_plus_signal(
    sig: int, restore_signals, capsys: pytest.CaptureFixture
):
    unwound = []

    def body():
        try:
            os.kill(os.getpid(), sig)
            time.sleep(5)  # the handler raises before this ends
        finally:
            unwound.append(True)

    with pytest.raises(SystemExit) as caught:
        cli.run_stage("train", body)
    assert caught.value.code == 128 + sig
    assert unwound == [True]
    name = signal.Signals(sig).name
    assert capsys.readouterr().err.strip() == (
        f"error: train: interrupted by {name}; run `dvc repro` again to redo this stage"
    )


# --- a new SQLite store opened by parallel workers -----------------------------------------


def test_parallel_workers_can_create_a_new_local_store_together(tmp_path: Path):
    env = {**os.environ, "DVC_ROOT": str(tmp_path)}
    env.pop("MLFLOW_TRACKING_URI", None)
    code = "from pipeline import tracking; print(tracking.use_experiment('l2-lab'))"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [worker.communicate(timeout=120) for worker in workers]
    assert [w.returncode for w in workers] == [0] * 4, [err[-800:] for _, err in results]
    assert len({out.strip() for out, _ in results}) == 1  # one experiment, the same id


# --- end to end: divergence and an interrupt under `dvc repro` -----------------------------


def _runs(project: Project) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=project.tracking_uri())
    experiment = client.get_experiment_by_name("l2-lab")
    return [] if experiment is None else model_runs(client.search_runs([experiment.experiment_id]))


def _repro_until(project: Project, marker: str, sig: int) -> tuple[int, str]:
    """Start `dvc repro`, wait for `marker` in its stderr, then signal its process group
    as a terminal's Ctrl-C (SIGINT) or a job scheduler (SIGTERM) does."""
    log_path = project.root.parent / "repro.err"
    with log_path.open("w") as err:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "dvc"), "repro"], cwd=project.root,
            env=project.env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 240
        while marker not in log_path.read_text():
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        os.killpg(proc.pid, sig)
        returncode = proc.wait(timeout=120)
        # A SIGTERM'd DVC dies at once; the stage, signalled too, is still unwinding.
        name = signal.Signals(sig).name
        while f"interrupted by {name}" not in log_path.read_text():
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
    return returncode, log_path.read_text()


@pytest.mark.slow
def test_divergence_and_interrupts_leave_runs_ended_and_the_next_repro_completes(
    project: Project,
):
    # 1. Diverging: the stage fails naming the entry; its run is FAILED with the reason.
    params = YAML(typ="safe").load(project.params_path.read_text())
    params["sweep"] = {"plain": {"l2": 0.0}, "blowup": {"l2": 1e38}}
    write_yaml(project.params_path, params)
    failed = project.dvc("repro", "train@blowup", check=False)
    assert failed.returncode != 0
    assert "error: train: entry 'blowup': loss became" in failed.stderr, failed.stderr
    (run,) = _runs(project)
    assert run.info.status == "FAILED"
    assert run.data.tags["failure_reason"].startswith("entry 'blowup': loss became")
    assert not (project.root / "models" / "blowup").exists()

    # 2. Ctrl-C (SIGINT to the process group, which DVC handles), then SIGTERM (which kills
    # DVC at once, as a CI timeout does) while training: the run is KILLED each time, and
    # no model folder looks complete.
    params["sweep"] = {"plain": {"l2": 0.0}}
    params["train"]["epochs"] = 3000
    write_yaml(project.params_path, params)
    for sig in (signal.SIGINT, signal.SIGTERM):
        returncode, stderr = _repro_until(project, "[train] plain epoch", sig)
        assert returncode != 0
        name = signal.Signals(sig).name
        assert f"error: train: interrupted by {name}" in stderr, stderr
        assert not (project.root / "models" / "plain").exists()
    assert sorted(r.info.status for r in _runs(project)) == ["FAILED", "KILLED", "KILLED"]
    lock = project.root / "dvc.lock"
    assert not lock.exists() or "train@plain" not in lock.read_text()

    # 3. The next `dvc repro` completes, and nothing is left RUNNING.
    params["train"]["epochs"] = 4
    write_yaml(project.params_path, params)
    project.dvc("repro")
    statuses = sorted(r.info.status for r in _runs(project))
    assert statuses == ["FAILED", "FINISHED", "KILLED", "KILLED"]
    run_file = json.loads((project.root / "models" / "plain" / "run.json").read_text())
    finished = next(r for r in _runs(project) if r.info.status == "FINISHED")
    assert run_file["run_id"] == finished.info.run_id
