"""The MLflow model registry through the unmodified `mlflow` client, and its error contract on the
wire. MLflow model_registry.proto: CreateRegisteredModel, GetRegisteredModel, RenameRegisteredModel,
UpdateRegisteredModel, DeleteRegisteredModel, SearchRegisteredModels, SetRegisteredModelTag,
DeleteRegisteredModelTag, GetLatestVersions, CreateModelVersion, GetModelVersion,
UpdateModelVersion, DeleteModelVersion, SearchModelVersions, GetModelVersionDownloadUri,
SetModelVersionTag, DeleteModelVersionTag, TransitionModelVersionStage, SetRegisteredModelAlias,
DeleteRegisteredModelAlias, GetModelVersionByAlias.

Covered: registered models (create with tags and description, get, update, rename, delete, tags,
search by name =/LIKE/ILIKE/IN and tags, order_by, pages); model versions from `runs:/` sources,
from run artifacts via `mlflow.register_model`, and from MLflow 3 logged models (`models:/m-...`);
version numbering; get/update/delete; tags; search; download URIs; stages and
`archive_existing_versions`; aliases; loading `models:/NAME@alias` and `models:/NAME/1` with
pyfunc; and, with raw `requests`, the status and `error_code` of each bad input as the reference
`mlflow server` 3.17.2 answers it (KEELSON_TEST_REFERENCE_MLFLOW=1), each followed by a check that
nothing was half-written. Prompts ride on the same tables: see test_mlflow_prompts.py."""

from __future__ import annotations

import json
import time

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression

from mlflow_helpers import API, assert_client_error, assert_rest_error, unique

# The stage API is deprecated since MLflow 2.9 but still served; its warnings are noise here.
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

# Given, so that saving a model does not infer them in a subprocess (seconds of CPU).
PIP_REQUIREMENTS = ["scikit-learn"]
RM = f"{API}/registered-models"
MV = f"{API}/model-versions"


@pytest.fixture(scope="module")
def client(mlflow_tracking) -> MlflowClient:
    return MlflowClient(mlflow_tracking.url)


@pytest.fixture(scope="module")
def experiment_id(client) -> str:
    return client.create_experiment(unique("registry"))


@pytest.fixture
def run_id(client, experiment_id) -> str:
    """A bare run: the server checks that a `runs:/` source names the request's run_id, not that
    the run holds the artifacts."""
    return client.create_run(experiment_id).info.run_id


@pytest.fixture(scope="module")
def data():
    """20 fixed rows; the class is whether the first feature is at least 10."""
    features = np.array([[float(i), float((i * 7) % 5)] for i in range(20)])
    labels = (features[:, 0] >= 10).astype(int)
    return features, labels


@pytest.fixture(scope="module")
def sk_model(data) -> LogisticRegression:
    features, labels = data
    return LogisticRegression(max_iter=200).fit(features, labels)


@pytest.fixture(scope="module")
def run_artifact_model(client, experiment_id, sk_model, tmp_path_factory):
    """The model's files logged as plain run artifacts under `model/` (the MLflow 2 layout):
    `runs:/<run_id>/model` then has an MLmodel file. Returns the finished run."""
    local = tmp_path_factory.mktemp("run-model") / "model"
    mlflow.sklearn.save_model(sk_model, str(local), pip_requirements=PIP_REQUIREMENTS)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_artifacts(str(local), "model")
    return client.get_run(run.info.run_id)


@pytest.fixture(scope="module")
def logged_model(experiment_id, sk_model):
    """An MLflow 3 logged model (`models:/m-...`); its files live under the logged model's own
    artifact location, not the run's. Returns the ModelInfo."""
    with mlflow.start_run(experiment_id=experiment_id):
        return mlflow.sklearn.log_model(sk_model, name="model", pip_requirements=PIP_REQUIREMENTS)


@pytest.fixture(scope="module")
def untouched(client, experiment_id) -> str:
    """A registered model with one version, no tags and no aliases, which the requests that must
    fail are aimed at; each such test checks that it is still exactly that."""
    name = unique("untouched")
    run_id = client.create_run(experiment_id).info.run_id
    client.create_registered_model(name)
    client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    return name


def assert_untouched(client, name: str) -> None:
    model = client.get_registered_model(name)
    assert (model.name, model.description, model.tags, model.aliases) == (name, "", {}, {})
    assert versions_of(client, name) == ["1"]
    version = client.get_model_version(name, "1")
    assert (version.current_stage, version.tags, version.aliases) == ("None", {}, [])


def raw(server, method: str, path: str, body: dict | None = None):
    """A request as the client sends it: GET with query parameters, anything else with a JSON
    body (also DELETE)."""
    if method == "GET":
        return server.request(method, path, params=body)
    return server.request(method, path, json=body)


def versions_of(client, name: str) -> list[str]:
    return sorted(
        (mv.version for mv in client.search_model_versions(f"name = '{name}'")), key=int
    )


# --- registered models --------------------------------------------------------------------------


def test_create_and_get_registered_model(client):
    name = unique("rm")
    before_ms = int(time.time() * 1000) - 5_000
    created = client.create_registered_model(
        name, tags={"team": "core", "task": "clf"}, description="first model"
    )
    assert created.name == name
    assert created.description == "first model"
    assert created.tags == {"team": "core", "task": "clf"}
    assert created.creation_timestamp >= before_ms
    assert created.last_updated_timestamp == created.creation_timestamp

    got = client.get_registered_model(name)
    assert got.name == name
    assert got.description == "first model"
    assert got.tags == {"team": "core", "task": "clf"}
    assert got.creation_timestamp == created.creation_timestamp
    assert got.latest_versions == []
    assert got.aliases == {}


def test_wire_shape_of_registered_model_and_version(mlflow_tracking, client, run_id):
    """Proto3 JSON as MLflow writes it: empty lists and unset fields are left out, but a version
    created over REST carries `description`, `run_id` and `run_link` as "" when not given, and
    `status` READY (the client polls while it is PENDING_REGISTRATION)."""
    name = unique("shape")
    response = raw(mlflow_tracking, "POST", f"{RM}/create", {"name": name})
    assert response.status_code == 200, response.text
    model = response.json()["registered_model"]
    assert set(model) == {"name", "creation_timestamp", "last_updated_timestamp"}, model
    assert model["name"] == name
    assert isinstance(model["creation_timestamp"], int)
    assert model["last_updated_timestamp"] == model["creation_timestamp"]
    got = raw(mlflow_tracking, "GET", f"{RM}/get", {"name": name}).json()["registered_model"]
    assert got == model

    source = "s3://bucket/path/model"  # a remote URI needs no run_id
    response = raw(mlflow_tracking, "POST", f"{MV}/create", {"name": name, "source": source})
    assert response.status_code == 200, response.text
    version = response.json()["model_version"]
    assert set(version) == {
        "name",
        "version",
        "creation_timestamp",
        "last_updated_timestamp",
        "current_stage",
        "description",
        "source",
        "run_id",
        "status",
        "run_link",
    }, version
    assert version["version"] == "1"  # a string on the wire
    assert version["current_stage"] == "None"
    assert version["status"] == "READY"
    assert version["source"] == source
    assert version["description"] == version["run_id"] == version["run_link"] == ""

    client.set_registered_model_alias(name, "prod", "1")
    client.set_model_version_tag(name, "1", "k", "v")
    client.set_registered_model_tag(name, "owner", "me")
    got = raw(mlflow_tracking, "GET", f"{RM}/get", {"name": name}).json()["registered_model"]
    assert got["aliases"] == [{"alias": "prod", "version": "1"}]
    assert got["tags"] == [{"key": "owner", "value": "me"}]
    # latest_versions (one per stage) does not list aliases; get-version does.
    [latest] = got["latest_versions"]
    assert latest["version"] == "1" and latest["tags"] == [{"key": "k", "value": "v"}]
    assert "aliases" not in latest
    mv = raw(mlflow_tracking, "GET", f"{MV}/get", {"name": name, "version": "1"}).json()
    assert mv["model_version"]["aliases"] == ["prod"]

    # A search without hits is an empty object.
    response = raw(mlflow_tracking, "GET", f"{MV}/search", {"filter": f"name = '{unique('no')}'"})
    assert response.status_code == 200 and response.json() == {}, response.text


def test_update_registered_model_description(mlflow_tracking, client):
    name = unique("upd")
    created = client.create_registered_model(name, description="old")
    updated = client.update_registered_model(name, description="new")
    assert updated.description == "new"
    assert updated.last_updated_timestamp >= created.last_updated_timestamp
    assert client.get_registered_model(name).description == "new"

    # An update without a description clears it (the client sends none for description=None).
    response = raw(mlflow_tracking, "PATCH", f"{RM}/update", {"name": name})
    assert response.status_code == 200, response.text
    assert "description" not in response.json()["registered_model"]
    assert client.get_registered_model(name).description in ("", None)


def test_rename_registered_model_moves_versions_tags_and_aliases(client, run_id):
    name, new_name = unique("old"), unique("new")
    client.create_registered_model(name, tags={"t": "1"}, description="d")
    for _ in range(2):
        client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    client.set_model_version_tag(name, "2", "k", "v")
    client.set_registered_model_alias(name, "champion", "2")

    client.rename_registered_model(name, new_name)  # returns None

    with pytest.raises(MlflowException) as excinfo:
        client.get_registered_model(name)
    assert_client_error(excinfo, "RESOURCE_DOES_NOT_EXIST")
    model = client.get_registered_model(new_name)
    assert model.tags == {"t": "1"} and model.description == "d"
    assert model.aliases == {"champion": "2"}
    assert versions_of(client, new_name) == ["1", "2"]
    version = client.get_model_version(new_name, "2")
    assert version.name == new_name
    assert version.tags == {"k": "v"}
    assert version.aliases == ["champion"]
    assert client.get_model_version_by_alias(new_name, "champion").version == "2"
    assert versions_of(client, name) == []


def test_delete_registered_model_deletes_its_versions(client, run_id):
    name = unique("del")
    client.create_registered_model(name)
    client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    client.delete_registered_model(name)

    with pytest.raises(MlflowException) as excinfo:
        client.get_registered_model(name)
    assert_client_error(excinfo, "RESOURCE_DOES_NOT_EXIST")
    with pytest.raises(MlflowException) as excinfo:
        client.get_model_version(name, "1")
    assert_client_error(excinfo, "RESOURCE_DOES_NOT_EXIST")
    assert versions_of(client, name) == []

    # The name is free again and the numbering starts over.
    client.create_registered_model(name)
    again = client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    assert again.version == "1"


def test_registered_model_tags(mlflow_tracking, client):
    name = unique("tags")
    client.create_registered_model(name, tags={"a": "1"})
    client.set_registered_model_tag(name, "b", "2")
    client.set_registered_model_tag(name, "a", "changed")
    assert client.get_registered_model(name).tags == {"a": "changed", "b": "2"}

    client.delete_registered_model_tag(name, "a")
    assert client.get_registered_model(name).tags == {"b": "2"}
    # Deleting a tag that is not there is not an error.
    client.delete_registered_model_tag(name, "a")
    response = raw(mlflow_tracking, "DELETE", f"{RM}/delete-tag", {"name": name, "key": "zzz"})
    assert response.status_code == 200 and response.json() == {}, response.text
    assert client.get_registered_model(name).tags == {"b": "2"}


def test_search_registered_models_filters(client):
    prefix = unique("srch")
    names = {
        "alpha": f"{prefix}-alpha",
        "beta": f"{prefix}-beta",
        "Gamma": f"{prefix}-Gamma",
    }
    client.create_registered_model(names["alpha"], tags={"team": "red", "tier": "1"})
    client.create_registered_model(names["beta"], tags={"team": "blue", "tier": "1"})
    client.create_registered_model(names["Gamma"], tags={"team": "red"})
    client.create_registered_model(unique("other"), tags={"team": "red"})

    def found(filter_string: str) -> set[str]:
        return {m.name for m in client.search_registered_models(filter_string)}

    assert found(f"name = '{names['beta']}'") == {names["beta"]}
    assert found(f"name LIKE '{prefix}-%'") == set(names.values())
    # LIKE is case-sensitive, ILIKE is not.
    assert found(f"name LIKE '{prefix}-g%'") == set()
    assert found(f"name ILIKE '{prefix}-g%'") == {names["Gamma"]}
    assert found(f"name LIKE '{prefix}%' AND tags.team = 'red'") == {
        names["alpha"],
        names["Gamma"],
    }
    assert found(f"name LIKE '{prefix}%' AND tags.team = 'red' AND tags.tier = '1'") == {
        names["alpha"]
    }
    assert found(f"name LIKE '{prefix}%' AND tags.`team` != 'red'") == {names["beta"]}
    assert found(f"name LIKE '{prefix}%' AND tags.team LIKE 'b%'") == {names["beta"]}
    assert found(f"name LIKE '{prefix}%' AND name != '{names['alpha']}'") == {
        names["beta"],
        names["Gamma"],
    }
    assert found(f"name IN ('{names['alpha']}', '{names['beta']}')") == {
        names["alpha"],
        names["beta"],
    }
    assert found(f"name = '{prefix}-nothing'") == set()

    fluent = mlflow.search_registered_models(filter_string=f"name LIKE '{prefix}-%'")
    assert {m.name for m in fluent} == set(names.values())


def test_search_registered_models_order_by(client):
    prefix = unique("order")
    names = [f"{prefix}-{letter}" for letter in "abc"]
    for name in names:
        client.create_registered_model(name)
    client.update_registered_model(names[0], description="touched last")
    filter_string = f"name LIKE '{prefix}-%'"

    ascending = client.search_registered_models(filter_string, order_by=["name ASC"])
    assert [m.name for m in ascending] == names
    descending = client.search_registered_models(filter_string, order_by=["name DESC"])
    assert [m.name for m in descending] == names[::-1]
    default = client.search_registered_models(filter_string)
    assert [m.name for m in default] == names  # name ASC

    # last_updated_timestamp (also spelled `timestamp`) with name ASC breaking ties.
    for key in ("last_updated_timestamp", "timestamp"):
        newest = client.search_registered_models(filter_string, order_by=[f"{key} DESC"])
        expected = sorted(newest, key=lambda m: (-m.last_updated_timestamp, m.name))
        assert [m.name for m in newest] == [m.name for m in expected]
        assert newest[0].name == names[0]
        oldest = client.search_registered_models(filter_string, order_by=[f"{key} ASC"])
        expected = sorted(oldest, key=lambda m: (m.last_updated_timestamp, m.name))
        assert [m.name for m in oldest] == [m.name for m in expected]


def test_search_registered_models_pages(client):
    prefix = unique("page")
    names = [f"{prefix}-{i:02d}" for i in range(25)]
    for name in names:
        client.create_registered_model(name)
    filter_string = f"name LIKE '{prefix}-%'"

    seen, token, sizes = [], None, []
    while True:
        page = client.search_registered_models(
            filter_string, max_results=10, order_by=["name ASC"], page_token=token
        )
        sizes.append(len(page))
        seen += [m.name for m in page]
        token = page.token
        if not token:
            break
    assert sizes == [10, 10, 5]
    assert seen == names

    # The fluent API walks the pages itself.
    every = mlflow.search_registered_models(filter_string=filter_string, order_by=["name DESC"])
    assert [m.name for m in every] == names[::-1]
    first_seven = mlflow.search_registered_models(filter_string=filter_string, max_results=7)
    assert [m.name for m in first_seven] == names[:7]


# --- model versions -----------------------------------------------------------------------------


def test_create_model_version_from_a_runs_uri(client, run_id):
    name = unique("mv")
    client.create_registered_model(name)
    source = f"runs:/{run_id}/model"
    before_ms = int(time.time() * 1000) - 5_000
    mv = client.create_model_version(
        name, source, run_id=run_id, tags={"k": "v"}, description="from a run"
    )
    assert mv.name == name
    assert mv.version == "1"
    assert mv.source == source  # kept as given, not resolved
    assert mv.run_id == run_id
    assert mv.status == "READY"
    assert mv.current_stage == "None"
    assert mv.description == "from a run"
    assert mv.tags == {"k": "v"}
    assert mv.aliases == []
    assert mv.creation_timestamp >= before_ms
    assert mv.last_updated_timestamp == mv.creation_timestamp

    got = client.get_model_version(name, "1")
    assert (got.version, got.source, got.run_id, got.description, got.tags) == (
        "1",
        source,
        run_id,
        "from a run",
        {"k": "v"},
    )
    assert client.get_model_version_download_uri(name, "1") == source
    # Creating a version bumps the registered model's last_updated_timestamp.
    assert client.get_registered_model(name).last_updated_timestamp >= mv.creation_timestamp


def test_version_numbers_count_up_and_are_never_reused(client, run_id):
    name = unique("num")
    client.create_registered_model(name)
    source = f"runs:/{run_id}/model"
    numbers = [client.create_model_version(name, source, run_id=run_id).version for _ in range(3)]
    assert numbers == ["1", "2", "3"]

    client.delete_model_version(name, "3")
    with pytest.raises(MlflowException) as excinfo:
        client.get_model_version(name, "3")
    assert_client_error(excinfo, "RESOURCE_DOES_NOT_EXIST")
    assert versions_of(client, name) == ["1", "2"]
    # The highest number ever given (deleted versions included) plus one.
    assert client.create_model_version(name, source, run_id=run_id).version == "4"
    client.delete_model_version(name, "1")
    assert client.create_model_version(name, source, run_id=run_id).version == "5"
    assert versions_of(client, name) == ["2", "4", "5"]
    # Each registered model counts on its own.
    other = unique("num-other")
    client.create_registered_model(other)
    assert client.create_model_version(other, source, run_id=run_id).version == "1"


def test_register_model_from_run_artifacts(client, run_artifact_model):
    run = run_artifact_model
    name = unique("reg-run")
    mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    assert mv.name == name
    assert mv.version == "1"
    assert mv.run_id == run.info.run_id
    # The client resolves runs:/ to the run's artifact URI when the MLmodel file is there.
    expected_source = f"{run.info.artifact_uri}/model"
    assert mv.source == expected_source
    assert client.get_model_version_download_uri(name, "1") == expected_source
    # register_model created the registered model; a second call adds a version.
    assert client.get_registered_model(name).name == name
    assert mlflow.register_model(f"runs:/{run.info.run_id}/model", name).version == "2"


def test_register_logged_model(client, logged_model, sk_model, data):
    info = logged_model
    assert info.model_uri == f"models:/{info.model_id}"
    name = unique("reg-logged")
    mv = mlflow.register_model(info.model_uri, name)
    assert mv.version == "1"
    assert mv.source == info.model_uri  # models:/m-... is kept as the source
    assert mv.run_id == info.run_id  # the server fills it from the logged model
    # The download URI is the logged model's own artifact location.
    artifact_location = client.get_logged_model(info.model_id).artifact_location
    assert artifact_location.startswith("mlflow-artifacts:"), artifact_location
    assert client.get_model_version_download_uri(name, "1") == artifact_location

    # The logged model lists the versions registered from it.
    tag = client.get_logged_model(info.model_id).tags["mlflow.modelVersions"]
    assert any(
        entry["name"] == name and str(entry["version"]) == "1" for entry in json.loads(tag)
    ), tag

    # runs:/<run>/<name> of an MLflow 3 run has no MLmodel under the run's artifacts: the client
    # looks the logged model up and registers models:/m-... instead.
    via_run = mlflow.register_model(f"runs:/{info.run_id}/model", name)
    assert via_run.version == "2"
    assert via_run.source == info.model_uri
    assert via_run.run_id == info.run_id

    features, _ = data
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/1")
    np.testing.assert_array_equal(np.asarray(loaded.predict(features)), sk_model.predict(features))


def test_update_and_delete_model_version(mlflow_tracking, client, run_id):
    name = unique("upd-mv")
    client.create_registered_model(name)
    created = client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    updated = client.update_model_version(name, "1", description="better")
    assert updated.description == "better"
    assert updated.last_updated_timestamp >= created.last_updated_timestamp
    assert client.get_model_version(name, "1").description == "better"

    # Without a description the version's description is unset (no key on the wire).
    response = raw(mlflow_tracking, "PATCH", f"{MV}/update", {"name": name, "version": "1"})
    assert response.status_code == 200, response.text
    assert "description" not in response.json()["model_version"]

    client.delete_model_version(name, "1")
    with pytest.raises(MlflowException) as excinfo:
        client.get_model_version(name, "1")
    assert_client_error(excinfo, "RESOURCE_DOES_NOT_EXIST")
    assert client.get_registered_model(name).latest_versions == []


def test_model_version_tags(mlflow_tracking, client, run_id):
    name = unique("mv-tags")
    client.create_registered_model(name)
    client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id, tags={"a": "1"})
    client.set_model_version_tag(name, "1", "b", "2")
    client.set_model_version_tag(name, "1", "a", "changed")
    assert client.get_model_version(name, "1").tags == {"a": "changed", "b": "2"}
    client.delete_model_version_tag(name, "1", "a")
    assert client.get_model_version(name, "1").tags == {"b": "2"}
    response = raw(
        mlflow_tracking,
        "DELETE",
        f"{MV}/delete-tag",
        {"name": name, "version": "1", "key": "not-there"},
    )
    assert response.status_code == 200 and response.json() == {}, response.text
    assert client.get_model_version(name, "1").tags == {"b": "2"}


def test_search_model_versions(client, experiment_id):
    name = unique("smv")
    other = unique("smv-other")
    run_a = client.create_run(experiment_id).info.run_id
    run_b = client.create_run(experiment_id).info.run_id
    client.create_registered_model(name)
    client.create_registered_model(other)
    for i, run in enumerate([run_a, run_a, run_b, run_b, run_b], start=1):
        client.create_model_version(
            name, f"runs:/{run}/model", run_id=run, tags={"parity": "odd" if i % 2 else "even"}
        )
    client.create_model_version(other, f"runs:/{run_a}/model", run_id=run_a)

    def found(filter_string: str, **kwargs) -> list[tuple[str, str]]:
        versions = client.search_model_versions(filter_string, **kwargs)
        return [(mv.name, mv.version) for mv in versions]

    # Default order: last_updated_timestamp DESC, then name ASC, then version DESC.
    assert found(f"name = '{name}'") == [(name, v) for v in "54321"]
    assert found(f"name = '{name}'", order_by=["version_number ASC"]) == [
        (name, v) for v in "12345"
    ]
    assert found(f"run_id = '{run_a}'", order_by=["name ASC", "version_number ASC"]) == sorted(
        [(name, "1"), (name, "2"), (other, "1")]
    )
    assert found(
        f"name = '{name}' AND tags.parity = 'even'", order_by=["version_number ASC"]
    ) == [(name, "2"), (name, "4")]
    assert found(f"name = '{name}' AND version_number > 3", order_by=["version_number DESC"]) == [
        (name, "5"),
        (name, "4"),
    ]
    assert found(
        f"name IN ('{name}', '{other}') AND run_id = '{run_b}'", order_by=["version_number ASC"]
    ) == [(name, "3"), (name, "4"), (name, "5")]
    assert found(f"name = '{unique('none')}'") == []

    # Pages.
    seen, token, sizes = [], None, []
    while True:
        page = client.search_model_versions(
            f"name = '{name}'", max_results=2, order_by=["version_number ASC"], page_token=token
        )
        sizes.append(len(page))
        seen += [mv.version for mv in page]
        token = page.token
        if not token:
            break
    assert sizes == [2, 2, 1]
    assert seen == ["1", "2", "3", "4", "5"]

    fluent = mlflow.search_model_versions(filter_string=f"name = '{name}'", max_results=3)
    assert [mv.version for mv in fluent] == ["5", "4", "3"]


def test_stages_and_latest_versions(client, run_id):
    name = unique("stages")
    client.create_registered_model(name)
    for _ in range(3):
        client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)

    staged = client.transition_model_version_stage(name, "1", "staging")
    assert staged.current_stage == "Staging"  # the stage name is case-insensitive
    client.transition_model_version_stage(name, "2", "Production")

    latest = {mv.current_stage: mv.version for mv in client.get_latest_versions(name)}
    assert latest == {"Staging": "1", "Production": "2", "None": "3"}
    [production] = client.get_latest_versions(name, stages=["Production"])
    assert production.version == "2"
    registered = client.get_registered_model(name)
    assert {mv.current_stage: mv.version for mv in registered.latest_versions} == latest

    promoted = client.transition_model_version_stage(
        name, "3", "Production", archive_existing_versions=True
    )
    assert promoted.current_stage == "Production"
    assert client.get_model_version(name, "2").current_stage == "Archived"
    assert client.get_model_version(name, "1").current_stage == "Staging"  # another stage
    assert [mv.version for mv in client.get_latest_versions(name, stages=["production"])] == ["3"]
    latest = {mv.current_stage: mv.version for mv in client.get_latest_versions(name)}
    assert latest == {"Staging": "1", "Production": "3", "Archived": "2"}

    # Without archive_existing_versions the other versions keep their stage.
    client.transition_model_version_stage(name, "1", "Production")
    assert client.get_model_version(name, "3").current_stage == "Production"


# --- aliases ------------------------------------------------------------------------------------


def test_aliases(mlflow_tracking, client, run_id):
    name = unique("alias")
    client.create_registered_model(name)
    for _ in range(2):
        client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)

    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "v1-candidate", "1")  # only ^[vV]\d+$ is reserved
    by_alias = client.get_model_version_by_alias(name, "champion")
    assert by_alias.version == "1"
    assert sorted(by_alias.aliases) == ["champion", "v1-candidate"]
    assert client.get_registered_model(name).aliases == {"champion": "1", "v1-candidate": "1"}
    assert sorted(client.get_model_version(name, "1").aliases) == ["champion", "v1-candidate"]
    assert client.get_model_version(name, "2").aliases == []

    # Setting an existing alias moves it.
    client.set_registered_model_alias(name, "champion", "2")
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    assert client.get_model_version(name, "1").aliases == ["v1-candidate"]
    assert client.get_model_version(name, "2").aliases == ["champion"]
    assert client.get_registered_model(name).aliases == {"champion": "2", "v1-candidate": "1"}

    # "latest" is not stored but answered: the highest live version.
    assert client.get_model_version_by_alias(name, "latest").version == "2"

    client.delete_registered_model_alias(name, "champion")
    assert client.get_registered_model(name).aliases == {"v1-candidate": "1"}
    assert client.get_model_version(name, "2").aliases == []
    with pytest.raises(MlflowException) as excinfo:
        client.get_model_version_by_alias(name, "champion")
    assert_client_error(excinfo, "INVALID_PARAMETER_VALUE")  # not RESOURCE_DOES_NOT_EXIST
    client.delete_registered_model_alias(name, "champion")  # deleting again is fine

    if mlflow_tracking.reference:
        # MLflow deletes a version an alias points at and drops the alias with it.
        client.delete_model_version(name, "1")
        assert client.get_registered_model(name).aliases == {}
        return
    # Keelson refuses instead (a deliberate difference): moving an alias away must be an audited
    # step, never the side effect of a deletion. Nothing changes.
    with pytest.raises(MlflowException) as excinfo:
        client.delete_model_version(name, "1")
    assert_client_error(excinfo, "INVALID_PARAMETER_VALUE")
    assert "v1-candidate" in excinfo.value.message
    assert client.get_registered_model(name).aliases == {"v1-candidate": "1"}
    assert client.get_model_version(name, "1").version == "1"
    client.delete_registered_model_alias(name, "v1-candidate")
    client.delete_model_version(name, "1")
    assert client.get_registered_model(name).aliases == {}


def test_load_registered_model_by_alias_and_version(client, run_artifact_model, sk_model, data):
    run = run_artifact_model
    features, _ = data
    expected = sk_model.predict(features)
    name = unique("load")
    mlflow.register_model(f"runs:/{run.info.run_id}/model", name)  # mlflow-artifacts: source
    client.create_model_version(  # runs:/ source
        name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
    )
    client.set_registered_model_alias(name, "champion", "2")

    by_alias = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    np.testing.assert_array_equal(np.asarray(by_alias.predict(features)), expected)
    by_version = mlflow.pyfunc.load_model(f"models:/{name}/1")
    np.testing.assert_array_equal(np.asarray(by_version.predict(features)), expected)
    as_sklearn = mlflow.sklearn.load_model(f"models:/{name}@champion")
    np.testing.assert_allclose(
        as_sklearn.predict_proba(features), sk_model.predict_proba(features)
    )


# --- errors on the wire -------------------------------------------------------------------------


def test_unknown_registered_model_is_404(mlflow_tracking, client):
    missing = unique("missing")
    for method, path, body in [
        ("GET", f"{RM}/get", {"name": missing}),
        ("PATCH", f"{RM}/update", {"name": missing, "description": "x"}),
        ("DELETE", f"{RM}/delete", {"name": missing}),
        ("POST", f"{RM}/rename", {"name": missing, "new_name": unique("to")}),
        ("POST", f"{RM}/set-tag", {"name": missing, "key": "k", "value": "v"}),
        ("DELETE", f"{RM}/delete-tag", {"name": missing, "key": "k"}),
        ("POST", f"{RM}/get-latest-versions", {"name": missing}),
        ("GET", f"{RM}/alias", {"name": missing, "alias": "champion"}),
        ("DELETE", f"{RM}/alias", {"name": missing, "alias": "champion"}),
        ("POST", f"{MV}/create", {"name": missing, "source": "s3://bucket/model"}),
    ]:
        response = raw(mlflow_tracking, method, path, body)
        assert_rest_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
    with pytest.raises(MlflowException) as excinfo:
        client.get_registered_model(missing)
    assert_client_error(excinfo, "RESOURCE_DOES_NOT_EXIST")
    # Nothing was created on the way (create-version did not create the registered model).
    assert_rest_error(
        raw(mlflow_tracking, "GET", f"{RM}/get", {"name": missing}), 404, "RESOURCE_DOES_NOT_EXIST"
    )


def test_unknown_model_version_is_404(mlflow_tracking, client, run_id):
    name = unique("mv404")
    client.create_registered_model(name)
    client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    for method, path, body in [
        ("GET", f"{MV}/get", {"name": name, "version": "7"}),
        ("PATCH", f"{MV}/update", {"name": name, "version": "7", "description": "x"}),
        ("DELETE", f"{MV}/delete", {"name": name, "version": "7"}),
        ("GET", f"{MV}/get-download-uri", {"name": name, "version": "7"}),
        ("POST", f"{MV}/set-tag", {"name": name, "version": "7", "key": "k", "value": "v"}),
        ("DELETE", f"{MV}/delete-tag", {"name": name, "version": "7", "key": "k"}),
        (
            "POST",
            f"{MV}/transition-stage",
            {"name": name, "version": "7", "stage": "Staging", "archive_existing_versions": False},
        ),
        ("POST", f"{RM}/alias", {"name": name, "alias": "champion", "version": "7"}),
        # A version of a model that does not exist reads the same.
        ("GET", f"{MV}/get", {"name": unique("missing"), "version": "1"}),
        ("POST", f"{RM}/alias", {"name": unique("missing"), "alias": "a", "version": "1"}),
    ]:
        response = raw(mlflow_tracking, method, path, body)
        assert_rest_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
    with pytest.raises(MlflowException) as excinfo:
        client.get_model_version(name, "7")
    assert_client_error(excinfo, "RESOURCE_DOES_NOT_EXIST")
    # A deleted version is gone for every call, a second delete included.
    client.delete_model_version(name, "1")
    assert_rest_error(
        raw(mlflow_tracking, "DELETE", f"{MV}/delete", {"name": name, "version": "1"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert client.get_registered_model(name).aliases == {}


@pytest.mark.parametrize("version", ["abc", "1.5", ""])
def test_non_integer_version_is_invalid_parameter_value(
    mlflow_tracking, client, untouched, version
):
    name = untouched
    response = raw(mlflow_tracking, "GET", f"{MV}/get", {"name": name, "version": version})
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")
    response = raw(
        mlflow_tracking, "POST", f"{RM}/alias", {"name": name, "alias": "a", "version": version}
    )
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert_untouched(client, name)


def test_version_must_be_a_json_string(mlflow_tracking, client, run_id):
    """`version` is a proto string: a JSON number is refused, "1" is accepted."""
    name = unique("intver")
    client.create_registered_model(name)
    client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    body = {"name": name, "alias": "a", "version": 1}
    response = raw(mlflow_tracking, "POST", f"{RM}/alias", body)
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert client.get_registered_model(name).aliases == {}
    response = raw(
        mlflow_tracking, "POST", f"{RM}/alias", {"name": name, "alias": "a", "version": "1"}
    )
    assert response.status_code == 200 and response.json() == {}, response.text


def test_duplicate_registered_model_is_resource_already_exists(mlflow_tracking, client):
    name = unique("dup")
    client.create_registered_model(name, tags={"keep": "me"}, description="original")
    response = raw(
        mlflow_tracking,
        "POST",
        f"{RM}/create",
        {"name": name, "description": "impostor", "tags": [{"key": "new", "value": "x"}]},
    )
    body = assert_rest_error(response, 400, "RESOURCE_ALREADY_EXISTS")
    assert name in body["message"]
    with pytest.raises(MlflowException) as excinfo:
        client.create_registered_model(name)
    assert_client_error(excinfo, "RESOURCE_ALREADY_EXISTS")
    model = client.get_registered_model(name)
    assert model.description == "original"
    assert model.tags == {"keep": "me"}


def test_rename_onto_a_taken_name_is_resource_already_exists(mlflow_tracking, client, run_id):
    name, taken = unique("ren-src"), unique("ren-taken")
    client.create_registered_model(name, description="source")
    client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    client.create_registered_model(taken, description="target")
    response = raw(mlflow_tracking, "POST", f"{RM}/rename", {"name": name, "new_name": taken})
    assert_rest_error(response, 400, "RESOURCE_ALREADY_EXISTS")
    with pytest.raises(MlflowException) as excinfo:
        client.rename_registered_model(name, taken)
    assert_client_error(excinfo, "RESOURCE_ALREADY_EXISTS")
    # Both are untouched: the source keeps its name and its version.
    assert client.get_registered_model(name).description == "source"
    assert versions_of(client, name) == ["1"]
    assert client.get_model_version(name, "1").name == name
    assert client.get_registered_model(taken).description == "target"
    assert versions_of(client, taken) == []


@pytest.mark.parametrize(
    "alias",
    ["latest", "LATEST", "Latest", "v1", "V12", "a b", "a.b", "a/b", "x" * 256],
    ids=["latest", "LATEST", "Latest", "v1", "V12", "space", "dot", "slash", "256-chars"],
)
def test_invalid_alias_name_is_refused(mlflow_tracking, client, untouched, alias):
    name = untouched
    response = raw(
        mlflow_tracking, "POST", f"{RM}/alias", {"name": name, "alias": alias, "version": "1"}
    )
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")
    with pytest.raises(MlflowException) as excinfo:
        client.set_registered_model_alias(name, alias, "1")
    assert_client_error(excinfo, "INVALID_PARAMETER_VALUE")
    assert_untouched(client, name)


def test_alias_name_rules_that_pass(client, run_id):
    name = unique("okalias")
    client.create_registered_model(name)
    client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    accepted = ["v1a", "V", "version1", "prod-2", "under_score", "0", "x" * 255, "Champion"]
    for alias in accepted:
        client.set_registered_model_alias(name, alias, "1")
    assert client.get_registered_model(name).aliases == {alias: "1" for alias in accepted}
    # Aliases are case-sensitive.
    with pytest.raises(MlflowException) as excinfo:
        client.get_model_version_by_alias(name, "champion")
    assert_client_error(excinfo, "INVALID_PARAMETER_VALUE")


def test_alias_errors_on_the_wire(mlflow_tracking, client, run_id):
    name = unique("alias-wire")
    client.create_registered_model(name)
    client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    # Empty alias: a missing required parameter.
    body = {"name": name, "alias": "", "version": "1"}
    response = raw(mlflow_tracking, "POST", f"{RM}/alias", body)
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")
    # An alias nobody set: 400, not 404.
    response = raw(mlflow_tracking, "GET", f"{RM}/alias", {"name": name, "alias": "nobody"})
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")
    # Deleting one is a no-op.
    response = raw(mlflow_tracking, "DELETE", f"{RM}/alias", {"name": name, "alias": "nobody"})
    assert response.status_code == 200 and response.json() == {}, response.text
    # An alias on a version that does not exist.
    response = raw(
        mlflow_tracking, "POST", f"{RM}/alias", {"name": name, "alias": "champion", "version": "2"}
    )
    assert_rest_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
    assert client.get_registered_model(name).aliases == {}
    # "latest" on a model with no live version.
    empty = unique("alias-empty")
    client.create_registered_model(empty)
    response = raw(mlflow_tracking, "GET", f"{RM}/alias", {"name": empty, "alias": "latest"})
    assert_rest_error(response, 404, "RESOURCE_DOES_NOT_EXIST")


def test_invalid_stage_is_refused(mlflow_tracking, client, run_id):
    name = unique("badstage")
    client.create_registered_model(name)
    client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    client.transition_model_version_stage(name, "2", "Staging")
    body = {"name": name, "version": "1", "stage": "Bogus", "archive_existing_versions": False}
    response = raw(mlflow_tracking, "POST", f"{MV}/transition-stage", body)
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")
    with pytest.raises(MlflowException) as excinfo:
        client.transition_model_version_stage(name, "1", "Bogus")
    assert_client_error(excinfo, "INVALID_PARAMETER_VALUE")
    body = {"name": name, "stages": ["Bogus"]}
    response = raw(mlflow_tracking, "GET", f"{RM}/get-latest-versions", body)
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")

    # archive_existing_versions is only for Staging and Production.
    body = {"name": name, "version": "1", "stage": "Archived", "archive_existing_versions": True}
    response = raw(mlflow_tracking, "POST", f"{MV}/transition-stage", body)
    if mlflow_tracking.reference:
        # MLflow raises it without an error code: 500 INTERNAL_ERROR.
        assert_rest_error(response, 500, "INTERNAL_ERROR")
    else:
        assert response.status_code in (400, 500), response.text
        assert response.json()["error_code"] in ("INVALID_PARAMETER_VALUE", "INTERNAL_ERROR")
    # archive_existing_versions must be a JSON boolean.
    body = {"name": name, "version": "1", "stage": "Staging", "archive_existing_versions": "yes"}
    response = raw(mlflow_tracking, "POST", f"{MV}/transition-stage", body)
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")

    assert client.get_model_version(name, "1").current_stage == "None"
    assert client.get_model_version(name, "2").current_stage == "Staging"


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("POST", f"{RM}/create", {}),
        ("POST", f"{RM}/create", {"name": ""}),
        ("POST", f"{RM}/create", {"name": "   "}),
        ("GET", f"{RM}/get", {}),
        ("POST", f"{RM}/rename", {"name": "{name}"}),
        ("POST", f"{RM}/rename", {"name": "{name}", "new_name": ""}),
        ("POST", f"{RM}/set-tag", {"name": "{name}", "value": "v"}),
        ("POST", f"{MV}/create", {"name": "{name}"}),
        ("GET", f"{MV}/get", {"name": "{name}"}),
        ("POST", f"{RM}/alias", {"name": "{name}", "alias": "a"}),
        ("POST", f"{MV}/transition-stage", {"name": "{name}", "version": "1"}),
    ],
    ids=[
        "create-no-name",
        "create-empty-name",
        "create-blank-name",
        "get-no-name",
        "rename-no-new-name",
        "rename-empty-new-name",
        "set-tag-no-key",
        "create-version-no-source",
        "get-version-no-version",
        "alias-no-version",
        "transition-no-stage",
    ],
)
def test_missing_required_field_is_invalid_parameter_value(
    mlflow_tracking, client, untouched, method, path, body
):
    body = {key: value.replace("{name}", untouched) for key, value in body.items()}
    assert_rest_error(raw(mlflow_tracking, method, path, body), 400, "INVALID_PARAMETER_VALUE")
    # Nothing changed: same name, one version, no new tag or alias, stage untouched.
    assert_untouched(client, untouched)


@pytest.mark.parametrize(
    "body",
    [
        {"name": 5},
        {"name": "{name}", "tags": "nope"},
        {"name": "{name}", "tags": [{"key": "../up", "value": "1"}]},
        {"name": "a/b-{name}"},
        {"name": "a:b-{name}"},
    ],
    ids=["name-not-string", "tags-not-list", "tag-key-escapes", "name-slash", "name-colon"],
)
def test_invalid_registered_model_fields(mlflow_tracking, body):
    name = unique("badfield")
    body = {k: (v.replace("{name}", name) if isinstance(v, str) else v) for k, v in body.items()}
    response = raw(mlflow_tracking, "POST", f"{RM}/create", body)
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")
    if isinstance(body["name"], str):
        response = raw(mlflow_tracking, "GET", f"{RM}/get", {"name": body["name"]})
        assert response.status_code in (400, 404), response.text  # not created


@pytest.mark.parametrize(
    "template",
    ["{not json", "", '{"name": "NAME"', '{"name": "NAME",}', "name=NAME"],
    ids=["garbage", "empty", "truncated", "trailing-comma", "form-encoded"],
)
def test_malformed_json_body_is_invalid_parameter_value(mlflow_tracking, template):
    """MLflow reads a body that is not JSON as an empty object: the required name is missing."""
    name = unique("malformed")
    response = mlflow_tracking.post(
        f"{RM}/create",
        data=template.replace("NAME", name).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")
    response = raw(mlflow_tracking, "GET", f"{RM}/get", {"name": name})
    assert_rest_error(response, 404, "RESOURCE_DOES_NOT_EXIST")


def test_json_array_body(mlflow_tracking):
    response = mlflow_tracking.post(
        f"{RM}/create", data=b"[]", headers={"Content-Type": "application/json"}
    )
    if mlflow_tracking.reference:
        # MLflow 3.17.2 answers Flask's HTML 500 page (an AttributeError in its request parsing).
        assert response.status_code == 500, response.text[:500]
        return
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_post_without_json_content_type_is_refused(mlflow_tracking):
    name = unique("ctype")
    response = mlflow_tracking.post(f"{RM}/create", data=json.dumps({"name": name}).encode())
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")
    response = mlflow_tracking.post(
        f"{RM}/create", data=json.dumps({"name": name}), headers={"Content-Type": "text/plain"}
    )
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert_rest_error(
        raw(mlflow_tracking, "GET", f"{RM}/get", {"name": name}), 404, "RESOURCE_DOES_NOT_EXIST"
    )


@pytest.mark.parametrize(
    "path, params",
    [
        (f"{RM}/search", {"filter": "name = 'a' OR name = 'b'"}),
        (f"{RM}/search", {"filter": "description = 'x'"}),
        (f"{RM}/search", {"filter": "name >< 'x'"}),
        (f"{RM}/search", {"order_by": "creation_timestamp DESC"}),
        (f"{RM}/search", {"order_by": "nonsense ASC"}),
        (f"{RM}/search", {"page_token": "garbage"}),
        (f"{RM}/search", {"max_results": 1001}),
        (f"{RM}/search", {"max_results": "abc"}),
        (f"{MV}/search", {"filter": "bogus = 'x'"}),
        (f"{MV}/search", {"order_by": "bogus ASC"}),
        (f"{MV}/search", {"page_token": "garbage"}),
        (f"{MV}/search", {"max_results": 0}),
        (f"{MV}/search", {"max_results": 200001}),
    ],
    ids=[
        "rm-or",
        "rm-unknown-attribute",
        "rm-syntax",
        "rm-order-by-creation-timestamp",
        "rm-order-by-unknown",
        "rm-page-token",
        "rm-max-results-1001",
        "rm-max-results-not-int",
        "mv-unknown-attribute",
        "mv-order-by-unknown",
        "mv-page-token",
        "mv-max-results-0",
        "mv-max-results-200001",
    ],
)
def test_bad_search_is_invalid_parameter_value(mlflow_tracking, path, params):
    assert_rest_error(mlflow_tracking.get(path, params=params), 400, "INVALID_PARAMETER_VALUE")


def test_bad_search_through_the_client(client):
    with pytest.raises(MlflowException) as excinfo:
        client.search_registered_models("name = 'a' OR name = 'b'")
    assert_client_error(excinfo, "INVALID_PARAMETER_VALUE")
    with pytest.raises(MlflowException) as excinfo:
        client.search_model_versions("nonsense = 'x'")
    assert_client_error(excinfo, "INVALID_PARAMETER_VALUE")


def test_model_version_source_must_match_its_run_or_model(
    mlflow_tracking, client, experiment_id, run_id, logged_model
):
    """The server checks a version's source against the run_id / model_id it comes with."""
    name = unique("source")
    client.create_registered_model(name)
    other_run = client.create_run(experiment_id).info.run_id
    model_id = logged_model.model_id
    for body in [
        {"source": f"runs:/{run_id}/model"},  # no run_id
        {"source": f"runs:/{run_id}/model", "run_id": other_run},  # another run
        {"source": f"models:/{model_id}"},  # no model_id
        {"source": f"models:/{model_id}", "model_id": "m-0123456789abcdef0123456789abcdef"},
        {"source": "/tmp/some/local/model"},  # a local path outside any run
        {"source": f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts/model"},  # no run_id
        {"source": "s3://bucket/../escape"},  # relative path segments
    ]:
        response = raw(mlflow_tracking, "POST", f"{MV}/create", {"name": name, **body})
        assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert versions_of(client, name) == []

    # What is accepted, and what source and run_id the version then shows.
    accepted = [
        ({"source": f"runs:/{run_id}/model", "run_id": run_id}, f"runs:/{run_id}/model", run_id),
        (
            {
                "source": f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts/model",
                "run_id": run_id,
            },
            f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts/model",
            run_id,
        ),
        (
            {"source": f"models:/{model_id}", "model_id": model_id},
            f"models:/{model_id}",
            logged_model.run_id,
        ),
        # Another registered version as the source: its run_id comes along.
        ({"source": f"models:/{name}/1"}, f"models:/{name}/1", run_id),
    ]
    for number, (body, source, expected_run_id) in enumerate(accepted, start=1):
        response = raw(mlflow_tracking, "POST", f"{MV}/create", {"name": name, **body})
        assert response.status_code == 200, response.text
        version = response.json()["model_version"]
        assert version["version"] == str(number)
        assert version["source"] == source
        assert version["run_id"] == expected_run_id
    # The download URI of a models:/<name>/<version> source is that version's download URI.
    assert client.get_model_version_download_uri(name, "4") == f"runs:/{run_id}/model"
    assert client.get_model_version_download_uri(name, "3") == (
        client.get_logged_model(model_id).artifact_location
    )


def test_model_version_source_escaping_its_root_is_refused(mlflow_tracking, client, run_id):
    name = unique("escape")
    client.create_registered_model(name)
    for source in [
        f"runs:/{run_id}/../other",
        "mlflow-artifacts:/0/../../etc",
        "mlflow-artifacts:/0/%2E%2E/%2E%2E/etc",
    ]:
        body = {"name": name, "source": source, "run_id": run_id}
        response = raw(mlflow_tracking, "POST", f"{MV}/create", body)
        assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert versions_of(client, name) == []


def test_prompt_tags_are_refused_by_the_model_api(client):
    """The client itself keeps models and prompts apart (no request is sent)."""
    with pytest.raises(MlflowException) as excinfo:
        client.create_registered_model(unique("p"), tags={"mlflow.prompt.is_prompt": "true"})
    assert_client_error(excinfo, "INVALID_PARAMETER_VALUE")

