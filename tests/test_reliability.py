"""Faults: an unreachable tracking server, a failing, diverging or interrupted sweep, a new
store opened by parallel workers. Each is reported in one line and leaves no run RUNNING.
(A diverging entry under `dvc repro` is in test_pipeline.py.)"""

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
from ruamel.yaml import YAML

from pipeline.core import runner
from pipeline.core.errors import LabError, TrackingError
from pipeline.tracking import runs, store
from tests.support.params import tiny_params, write_yaml
from tests.support.project import (
    UP_TO_DATE,
    Project,
    mlflow_runs,
    model_runs,
    parent_of_models,
    parent_runs,
    ran_stages,
)
from tests.support.services import free_port


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
        store.use_experiment("l2-lab")
    assert time.monotonic() - started < 15  # MLflow's own retries take minutes
    message = str(caught.value)
    assert f"MLflow tracking server {uri} is unreachable" in message
    assert "\n" not in message


def test_http_retries_are_bounded_unless_the_user_set_them(
    local_store: Path, monkeypatch: pytest.MonkeyPatch
):
    for name in store.HTTP_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "99")
    store.connect()
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
        [sys.executable, "-m", "pipeline.train", "--params", str(tmp_path / "params.yaml"),
         "--prepared", str(tmp_path / "prepared"), "--out", str(tmp_path / "models")],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert time.monotonic() - started < 30
    assert result.returncode == runner.EXIT_BAD_INPUT, result.stderr
    # One line, and nothing before it: no model was built, no run made, no folder written.
    assert result.stderr.strip().splitlines() == [
        line for line in result.stderr.splitlines() if line.startswith("error: ")
    ], result.stderr
    assert f"error: train: MLflow tracking server {uri} is unreachable" in result.stderr
    assert not (tmp_path / "models").exists()
    assert not (tmp_path / "models.partial").exists()


# --- run status: FINISHED, FAILED with the reason, KILLED ---------------------------------


def _sweep_runs(local: Path) -> dict[str, object]:
    """run name -> run, in the default store at `local`."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{local / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("l2-lab")
    return {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}


TOWERS = ["plain", "layerwise"]


def test_a_diverged_model_fails_alone_and_the_others_finish(local_store: Path):
    with runs.sweep_runs(store.use_experiment("l2-lab"), TOWERS, {}) as sweep:
        sweep.fail("layerwise", "diverged at epoch 3: the loss became NaN or infinite")
        sweep.finish("plain")
    found = _sweep_runs(local_store)
    assert {name: run.info.status for name, run in found.items()} == {
        "sweep": "FINISHED",
        "plain": "FINISHED",
        "layerwise": "FAILED",
    }
    assert found["layerwise"].data.tags["failure_reason"].startswith("diverged at epoch 3")


def test_a_failing_sweep_ends_every_run_failed_with_the_reason(local_store: Path):
    with pytest.raises(LabError), runs.sweep_runs(store.use_experiment("l2-lab"), TOWERS, {}):
        raise LabError("models.partial: no space left on device")
    found = _sweep_runs(local_store)
    assert len(found) == 1 + len(TOWERS)
    for run in found.values():
        assert run.info.status == "FAILED"
        assert run.data.tags["failure_reason"] == "models.partial: no space left on device"


def test_an_interrupted_sweep_ends_its_runs_killed(local_store: Path):
    with (
        pytest.raises(KeyboardInterrupt),
        runs.sweep_runs(store.use_experiment("l2-lab"), TOWERS, {}) as sweep,
    ):
        sweep.finish("plain")  # saved before the signal came: stays FINISHED
        raise runner.Interrupted(signal.SIGTERM)
    found = _sweep_runs(local_store)
    assert found["plain"].info.status == "FINISHED"
    for name in ("sweep", "layerwise"):
        assert found[name].info.status == "KILLED"
        assert found[name].data.tags["failure_reason"] == "interrupted by SIGTERM"


def test_a_store_failure_during_a_sweep_is_one_line(local_store: Path):
    from mlflow.exceptions import MlflowException

    with (
        pytest.raises(TrackingError) as caught,
        runs.sweep_runs(store.use_experiment("l2-lab"), TOWERS, {}),
    ):
        raise MlflowException("API request failed\nwith a long traceback")
    assert "failed during the sweep" in str(caught.value) and "\n" not in str(caught.value)
    assert {run.info.status for run in _sweep_runs(local_store).values()} == {"FAILED"}


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
        runner.run_stage("train", body)
    assert caught.value.code == 128 + sig
    assert unwound == [True]
    name = signal.Signals(sig).name
    assert capsys.readouterr().err.strip() == (
        f"error: train: interrupted by {name}; run `dvc repro` again to redo this stage"
    )


def test_a_ctrl_c_that_a_library_swallows_still_stops_the_stage_at_its_next_epoch(
    restore_signals, capsys: pytest.CaptureFixture
):
    """The handler raises wherever the main thread is; a bare `except:` there (TensorFlow has
    some) swallows it, and further signals are ignored by then. The stage's next checkpoint
    (every epoch, and before publishing) stops it all the same."""
    epochs_run, published = [], []

    def body():
        try:  # a library's code, where the signal happens to land
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except:  # noqa: E722
            pass
        for epoch in range(1, 4):
            runner.stop_if_interrupted()
            epochs_run.append(epoch)
        published.append(True)

    with pytest.raises(SystemExit) as caught:
        runner.run_stage("train", body)
    assert caught.value.code == 128 + signal.SIGINT
    assert epochs_run == [] and published == []
    assert "error: train: interrupted by SIGINT" in capsys.readouterr().err

    # The next stage in this process starts with no signal on record.
    runner.run_stage("evaluate", lambda: [runner.stop_if_interrupted() for _ in range(3)])


@pytest.mark.parametrize("cut_while", ["staging", "publishing"])
def test_an_interrupted_stage_leaves_its_last_complete_output_and_no_leftovers(
    tmp_path: Path, restore_signals, cut_while: str
):
    from pipeline.core.files import staging_dir

    out = tmp_path / "models"
    out.mkdir()
    (out / "model.keras").write_text("the last complete sweep")

    def body():
        staging = staging_dir(out)
        (staging / "model.keras").write_text("half a sweep")
        if cut_while == "publishing":  # between publish_dir's two renames
            out.rename(out.with_name("models.old"))
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)

    with pytest.raises(SystemExit):
        runner.run_stage("train", body, outputs=[out])
    assert (out / "model.keras").read_text() == "the last complete sweep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]


# --- a new SQLite store opened by parallel workers -----------------------------------------


def test_parallel_workers_can_create_a_new_local_store_together(tmp_path: Path):
    env = {**os.environ, "DVC_ROOT": str(tmp_path)}
    env.pop("MLFLOW_TRACKING_URI", None)
    code = "from pipeline.tracking import store; print(store.use_experiment('l2-lab'))"
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


# --- end to end: interrupts under `dvc repro` -------------------------------------------


def _repro_until(project: Project, marker: str, sig: int) -> tuple[int, str]:
    """Start `dvc repro`, wait for `marker` in its stderr, then signal its process group
    as a terminal's Ctrl-C (SIGINT) or a job scheduler (SIGTERM) does."""
    log_path = project.root.parent / "repro.err"
    with log_path.open("w") as err:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "dvc"), "repro"], cwd=project.root,
            env=project.env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
        )  # fmt: skip
        started = time.monotonic()
        deadline = started + 240
        while marker not in log_path.read_text():
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        os.killpg(proc.pid, sig)
        # Should the stage not stop, the failure tells when the signal went and what it
        # followed.
        sent = f"{sig!r} sent {time.monotonic() - started:.1f}s after the start, after:\n"
        sent += log_path.read_text()[-300:]
        returncode = proc.wait(timeout=120)
        # A SIGTERM'd DVC dies at once; the stage, signalled too, is still unwinding.
        name = signal.Signals(sig).name
        while f"interrupted by {name}" not in log_path.read_text():
            assert time.monotonic() < deadline, f"{sent}\n--- then:\n{log_path.read_text()}"
            time.sleep(0.2)
    return returncode, log_path.read_text()


@pytest.mark.slow
def test_interrupts_leave_runs_killed_and_the_workspace_as_it_was(reproduced: Project):
    project = reproduced
    lock = project.root / "dvc.lock"
    trained_lock = YAML(typ="safe").load(lock.read_text())["stages"]["train"]
    runs_before = {run.info.run_id for run in mlflow_runs(project)}
    trained_by = parent_of_models(project, mlflow_runs(project)).info.run_id

    # Ctrl-C (SIGINT to the process group, which DVC handles), then SIGTERM (which kills
    # DVC at once, as a CI timeout does) while training: every run of the interrupted sweep
    # ends KILLED, and no model folder looks complete.
    params = YAML(typ="safe").load(project.params_path.read_text())
    epochs = params["train"]["epochs"]
    params["train"]["epochs"] = 5000
    write_yaml(project.params_path, params)
    codes = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        returncode, stderr = _repro_until(project, "[train] epoch ", sig)
        codes[signal.Signals(sig).name] = returncode
        name = signal.Signals(sig).name
        assert f"error: train: interrupted by {name}" in stderr, stderr
        assert not (project.root / "models" / "plain" / "model.keras").exists()
        # The stage removed its unfinished folder: a later restore from the run cache
        # (which starts no stage) leaves nothing behind.
        assert not (project.root / "models.partial").exists()
    # What a user sees (README: Interruptions): DVC turns its stage's failure into 255; a
    # SIGTERM'd DVC dies of the signal (a shell shows 143).
    print(f"dvc exit codes: {codes}")
    assert codes == {"SIGINT": 255, "SIGTERM": -signal.SIGTERM}
    new = [run for run in mlflow_runs(project) if run.info.run_id not in runs_before]
    assert len(parent_runs(new)) == 2 and len(model_runs(new)) == 2 * 2
    assert {run.info.status for run in new} == {"KILLED"}
    # `prepare` (which validates all params) ran; `train` still records the first sweep.
    assert YAML(typ="safe").load(lock.read_text())["stages"]["train"] == trained_lock

    # Back to the params DVC has seen: the next `dvc repro` completes from the run cache,
    # the models are those of the first sweep, and nothing is left RUNNING.
    params["train"]["epochs"] = epochs
    write_yaml(project.params_path, params)
    result = project.dvc("repro")
    assert ran_stages(result.stdout).get("train") == "restored", result.stdout
    runs_after = mlflow_runs(project)
    assert "RUNNING" not in {run.info.status for run in runs_after}
    assert len(runs_after) == len(runs_before) + len(new)
    assert parent_of_models(project, runs_after).info.run_id == trained_by
    # The workspace holds what a completed run holds: the models, no leftovers beside any
    # output, and nothing for DVC to redo.
    assert (project.root / "models" / "plain" / "model.keras").is_file()
    leftovers = [p for p in project.root.rglob("*") if p.name.endswith((".partial", ".old"))]
    assert leftovers == []
    assert json.loads(project.dvc("status", "--json").stdout) == UP_TO_DATE
