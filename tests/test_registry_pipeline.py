"""`chosen` and `register` end to end, through the real `dvc repro` of one tiny project: the
first sweep's chosen model is version 1 with the alias and the decision's tags, and loads
from `models:/l2-lab@chosen`; nothing changed, nothing registered; a `--temp` experiment
registers its version without moving the alias, and the workspace that chooses the same model
moves the alias to that version while version 1 keeps its number; an unreachable server is one
line with the registry intact; `dvc artifacts get` fetches the folder from a DVC remote; a
tracking server gets the version and serves it by alias.

One project for the module, each later state a module fixture built on the one before, so
every test states which sweeps ran before it."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from ruamel.yaml import YAML

from pipeline.core import contracts
from tests.support.params import write_yaml
from tests.support.project import ALWAYS_RUN, Project, make_project, mlflow_runs, ran_stages

pytestmark = pytest.mark.slow

NAME, ALIAS = "l2-lab", "chosen"
FIVE_EPOCHS = "train.epochs=5"  # retrains both entries: another chosen model


def _client(lab: Project):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=lab.tracking_uri())


def _versions(lab: Project) -> dict[int, object]:
    found = _client(lab).search_model_versions(f"name = '{NAME}'")
    return {int(v.version): _client(lab).get_model_version(NAME, v.version) for v in found}


def _alias(lab: Project) -> int:
    return int(_client(lab).get_model_version_by_alias(NAME, ALIAS).version)


def _chosen(lab: Project) -> dict:
    return json.loads((lab.root / "chosen" / contracts.CHOSEN_FILE).read_text())


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, str]:
    """The tiny project after its first `dvc repro`, and that repro's stderr."""
    lab = make_project(tmp_path_factory.mktemp("registry") / "lab")
    return lab, lab.dvc("repro").stderr


@pytest.fixture(scope="module")
def temp_experiment(first) -> tuple[Project, str]:
    """`first`, then `dvc exp run --temp` with five epochs: its stderr."""
    lab, _ = first
    return lab, lab.dvc("exp", "run", "--temp", "--name", "five", "-S", FIVE_EPOCHS).stderr


@pytest.fixture(scope="module")
def workspace_change(temp_experiment) -> tuple[Project, str]:
    """`temp_experiment`, then five epochs in the workspace's params.yaml and `dvc repro`."""
    lab, _ = temp_experiment
    params = YAML(typ="safe", pure=True).load(lab.params_path.read_text())
    params["train"]["epochs"] = 5
    write_yaml(lab.params_path, params)
    return lab, lab.dvc("repro").stderr


def test_the_first_sweep_is_version_1_with_the_alias_and_the_decision(first):
    lab, stderr = first
    facts = _chosen(lab)
    decision = contracts.read_decision(lab.root / "refit")
    assert facts["entry"] == decision["choice"]["chosen"]["name"]
    assert facts["model"] == f"models/{facts['entry']}/model.keras"
    assert facts["trained_on"] == "training split only" and facts["train_rows"] == 80
    assert facts["figure_value"] == contracts.rounded(decision["choice"]["chosen"]["value"])
    assert facts["figure_se"] == contracts.rounded(decision["choice"]["chosen"]["se"])
    assert (facts["test_value"], facts["test_ci_low"], facts["test_ci_high"]) == tuple(
        contracts.rounded(decision[k]) for k in ("test_value", "test_ci_low", "test_ci_high")
    )
    from pipeline.core.contracts import folder_digest

    assert facts["data_digest"] == folder_digest(lab.root / "data" / "prepared")
    rates = {"plain": [0.0, 0.0, 0.0], "layerwise": [0.01, 0.001, 0.0]}[facts["entry"]]
    assert facts["l2_rates"] == dict(zip(("hidden_1", "hidden_2", "output"), rates, strict=True))

    (version,) = _versions(lab).values()
    assert int(version.version) == 1 and version.aliases == [ALIAS]
    head = lab.run("git", "rev-parse", "HEAD").stdout.strip()
    expected = {k: str(v) for k, v in facts.items() if k not in ("key", "l2_rates")}
    expected |= {"l2_rates": json.dumps(facts["l2_rates"]), "chosen_key": facts["key"]}
    assert {k: v for k, v in version.tags.items() if k != "git_commit"} == expected
    assert re.fullmatch(f"{head}(-dirty)?", version.tags["git_commit"])
    assert "dvc_exp_name" not in version.tags
    # The folder is an artifact of the sweep's parent run that trained the models.
    (parent,) = [r for r in mlflow_runs(lab) if r.data.tags.get("sweep") == "parent"]
    assert version.run_id == parent.info.run_id
    assert f"registered {NAME} version 1: {facts['entry']}, chosen by min" in stderr
    assert f"[register] alias 'chosen' -> version 1: load it as models:/{NAME}@chosen" in stderr


def test_the_registered_model_predicts_the_test_error_the_decision_reports(first):
    """Raw rows in (the digits' pixel counts, recovered exactly from the prepared test split),
    labels out: their error is the test figure the decision reported for this model."""
    import mlflow.pyfunc

    from pipeline.core.preparation import read_preparation
    from pipeline.datasets.prepared import read_split

    lab, _ = first
    prepared = lab.root / "data" / "prepared"
    test, preparation = read_split(prepared, "test"), read_preparation(prepared)
    scaling = preparation.scaling
    flat = test.features.reshape(len(test.features), -1).astype(np.float64)
    raw = np.rint((flat - scaling.offset) / scaling.factor)
    assert np.array_equal(preparation.model_input(raw), test.features)  # the same rows

    mlflow.set_tracking_uri(lab.tracking_uri())
    served = mlflow.pyfunc.load_model(f"models:/{NAME}@{ALIAS}")
    predicted = served.predict(raw)["prediction"].to_numpy()
    error = float(np.mean(predicted != np.asarray(preparation.labels)[test.labels]))
    assert contracts.rounded(error) == _chosen(lab)["test_value"]


def test_with_folds_the_refit_model_is_the_chosen_one(first):
    """The decision with a refit answer (what refit writes with choose.folds): the facts name
    refit/model.keras, trained on the pooled rows, with the refit's test figure."""
    from pipeline.choosing.decision import Decision, Refit
    from pipeline.chosen import chosen_facts
    from pipeline.config import load_config

    lab, _ = first
    decision = Decision.from_json(contracts.read_decision(lab.root / "refit"))
    refit = Refit(train_rows=350, test_rows=450, test_value=0.5, test_ci_low=0.4, test_ci_high=0.6)
    facts = chosen_facts(
        load_config(lab.params_path), decision.with_refit(refit).to_json(), lab.root / "models",
        lab.root / "data" / "prepared", lab.root / "refit",
    )  # fmt: skip
    assert facts["model"] == "refit/model.keras"
    assert (facts["trained_on"], facts["train_rows"]) == ("training and validation rows", 350)
    assert (facts["test_value"], facts["test_ci_low"], facts["test_ci_high"]) == (0.5, 0.4, 0.6)


def test_nothing_changed_registers_nothing(first):
    lab, _ = first
    started = time.monotonic()
    again = lab.dvc("repro")
    seconds = time.monotonic() - started
    assert ran_stages(again.stdout) == ALWAYS_RUN, again.stdout
    assert "version 1 holds this chosen model already: nothing registered" in again.stderr
    assert list(_versions(lab)) == [1] and _alias(lab) == 1
    assert seconds < 60, seconds


def test_a_temp_experiment_registers_its_version_and_leaves_the_alias(temp_experiment):
    lab, stderr = temp_experiment
    versions = _versions(lab)
    assert sorted(versions) == [1, 2]
    assert versions[2].tags["dvc_exp_name"] == "five"
    assert versions[2].tags["git_commit"].endswith("-dirty")  # the -S edit
    assert versions[2].tags["chosen_key"] != versions[1].tags["chosen_key"]
    assert _alias(lab) == 1 and versions[2].aliases == []
    line = "experiment five runs in a temporary copy: alias 'chosen' left at version 1"
    assert line in stderr, stderr[-3000:]
    assert "epochs: 4" in lab.params_path.read_text()  # the workspace as it was


def test_the_workspace_moves_the_alias_and_version_1_keeps_its_number(workspace_change):
    lab, stderr = workspace_change
    versions = _versions(lab)
    # The same chosen model as the experiment's (the same bits): its version, not a third.
    assert sorted(versions) == [1, 2], stderr[-3000:]
    assert _chosen(lab)["key"] == versions[2].tags["chosen_key"]
    assert _alias(lab) == 2 and versions[2].aliases == [ALIAS]
    assert versions[1].aliases == [] and versions[1].tags["chosen_key"] != _chosen(lab)["key"]
    assert "version 2 holds this chosen model already" in stderr
    assert "alias 'chosen' -> version 2" in stderr


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_server_fails_in_one_line_and_loses_nothing(workspace_change):
    lab, _ = workspace_change
    before = {n: (v.tags, v.aliases) for n, v in _versions(lab).items()}
    uri = f"http://127.0.0.1:{_closed_port()}"
    failed = lab.run(
        "env", f"MLFLOW_TRACKING_URI={uri}", str(Path(lab.env["PATH"].split(":")[0]) / "dvc"),
        "repro", "register", check=False,
    )  # fmt: skip
    assert failed.returncode != 0
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error: register")]
    assert errors == [
        f"error: register: MLflow tracking server {uri} is unreachable ([Errno 111] Connection "
        f"refused); start it, or point MLFLOW_TRACKING_URI at a running server (unset it for "
        f"the local store)"
    ], failed.stderr[-3000:]
    assert {n: (v.tags, v.aliases) for n, v in _versions(lab).items()} == before


def test_dvc_artifacts_get_fetches_the_chosen_folder_from_a_remote(workspace_change):
    lab, _ = workspace_change
    remote = lab.root.parent / "remote"
    lab.dvc("remote", "add", "-d", "local", str(remote))
    lab.dvc("push")
    lab.run("git", "add", "-A")
    lab.run("git", "commit", "-qm", "the chosen model")
    # `dvc artifacts get` finds an artifact's revision by its GTO version tag (annotated).
    lab.run("git", "tag", "-a", "chosen@v1.0.0", "-m", "the chosen model")
    clone = Project(lab.root.parent / "clone")
    lab.run("git", "clone", "-q", str(lab.root), str(clone.root))
    assert not (clone.root / "chosen").exists()
    clone.dvc("artifacts", "get", ".", "chosen", "-o", "got")
    got, chosen = clone.root / "got", lab.root / "chosen"
    files = sorted(p.relative_to(chosen) for p in chosen.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(got) for p in got.rglob("*") if p.is_file())
    for name in files:
        assert (got / name).read_bytes() == (chosen / name).read_bytes(), name


@pytest.mark.services  # an `mlflow server`
def test_a_tracking_server_gets_the_version_and_serves_it_by_alias(workspace_change, tmp_path):
    """A server that never saw the sweep (the models came from elsewhere): the folder goes
    to a run of its own there, the version and alias are the server's, and the model loads
    through it; registering again reuses the version."""
    import mlflow.pyfunc

    from tests.support.services import mlflow_server

    lab, _ = workspace_change
    with mlflow_server(f"sqlite:///{tmp_path}/server.db", tmp_path / "artifacts",
                       tmp_path / "server.log") as uri:  # fmt: skip
        lab.env["MLFLOW_TRACKING_URI"] = uri
        try:
            first, again = lab.dvc("repro", "register"), lab.dvc("repro", "register")
        finally:
            del lab.env["MLFLOW_TRACKING_URI"]
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        (version,) = client.search_model_versions(f"name = '{NAME}'")
        assert int(version.version) == 1 and version.tags["chosen_key"] == _chosen(lab)["key"]
        assert int(client.get_model_version_by_alias(NAME, ALIAS).version) == 1
        run = client.get_run(version.run_id)
        assert run.info.run_name == f"chosen {_chosen(lab)['entry']}"
        assert version.source.startswith("mlflow-artifacts:/")  # the server's own store
        mlflow.set_tracking_uri(uri)
        served = mlflow.pyfunc.load_model(f"models:/{NAME}@{ALIAS}")
        assert len(served.predict(np.zeros((3, 64)))) == 3
    assert f"registered {NAME} version 1" in first.stderr
    assert "version 1 holds this chosen model already" in again.stderr
