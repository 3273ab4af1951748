"""Experiments through the unmodified `mlflow` client: create, get, search (filters, order,
pages), rename, delete/restore and tags. MLflow service.proto: CreateExperiment, GetExperiment,
GetExperimentByName, SearchExperiments, UpdateExperiment, DeleteExperiment, RestoreExperiment,
SetExperimentTag, DeleteExperimentTag."""

from __future__ import annotations

import time

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from mlflow_helpers import assert_client_error, unique


@pytest.fixture(scope="module")
def client(mlflow_tracking) -> MlflowClient:
    return MlflowClient(mlflow_tracking.url)


def test_default_experiment_exists(client):
    default = client.get_experiment("0")
    assert default.experiment_id == "0"
    assert default.name == "Default"
    assert default.lifecycle_stage == "active"
    assert client.get_experiment_by_name("Default").experiment_id == "0"


def test_create_and_get_round_trip(client):
    name = unique("exp")
    before_ms = int(time.time() * 1000) - 5_000
    experiment_id = client.create_experiment(name, tags={"team": "core", "stage": "dev"})
    assert isinstance(experiment_id, str) and experiment_id

    experiment = client.get_experiment(experiment_id)
    assert experiment.experiment_id == experiment_id
    assert experiment.name == name
    assert experiment.lifecycle_stage == "active"
    assert experiment.tags == {"team": "core", "stage": "dev"}
    # No artifact_location given: the server picks one under its proxied artifact root, which
    # the client reaches through /api/2.0/mlflow-artifacts.
    assert experiment.artifact_location.startswith("mlflow-artifacts:"), experiment
    assert experiment.artifact_location.rstrip("/").endswith(experiment_id)
    assert experiment.creation_time >= before_ms
    assert experiment.last_update_time >= experiment.creation_time

    by_name = client.get_experiment_by_name(name)
    assert by_name.experiment_id == experiment_id
    assert by_name.tags == experiment.tags


def test_get_experiment_by_unknown_name_is_none(client):
    assert client.get_experiment_by_name(unique("missing")) is None


def test_set_experiment_creates_when_missing(mlflow_tracking):
    name = unique("set-exp")
    created = mlflow.set_experiment(name)
    assert created.name == name
    again = mlflow.set_experiment(name)
    assert again.experiment_id == created.experiment_id
    by_id = mlflow.set_experiment(experiment_id=created.experiment_id)
    assert by_id.name == name
    assert mlflow.get_experiment_by_name(name).experiment_id == created.experiment_id


def test_search_experiments_filters_by_name_and_tags(client):
    prefix = unique("search")
    ids = {}
    for i, team in enumerate(["red", "red", "blue"]):
        ids[i] = client.create_experiment(f"{prefix}-{i}", tags={"team": team, "n": str(i)})
    client.create_experiment(unique("other"), tags={"team": "red"})

    like = client.search_experiments(filter_string=f"name LIKE '{prefix}-%'")
    assert {e.experiment_id for e in like} == set(ids.values())

    red = client.search_experiments(filter_string=f"name LIKE '{prefix}%' AND tags.team = 'red'")
    assert {e.experiment_id for e in red} == {ids[0], ids[1]}

    ilike = client.search_experiments(filter_string=f"name ILIKE '{prefix.upper()}-%'")
    assert {e.experiment_id for e in ilike} == set(ids.values())

    exact = mlflow.search_experiments(filter_string=f"name = '{prefix}-2'")
    assert [e.experiment_id for e in exact] == [ids[2]]

    not_blue = client.search_experiments(
        filter_string=f"name LIKE '{prefix}%' AND tags.team != 'blue'"
    )
    assert {e.experiment_id for e in not_blue} == {ids[0], ids[1]}


def test_search_experiments_order_by(client):
    prefix = unique("order")
    names = [f"{prefix}-b", f"{prefix}-c", f"{prefix}-a"]
    created = [client.create_experiment(name) for name in names]
    flt = f"name LIKE '{prefix}-%'"

    ascending = client.search_experiments(filter_string=flt, order_by=["name ASC"])
    assert [e.name for e in ascending] == sorted(names)
    descending = client.search_experiments(filter_string=flt, order_by=["name DESC"])
    assert [e.name for e in descending] == sorted(names, reverse=True)

    # The default order is newest first (creation_time DESC, then experiment_id ASC on ties).
    by_time = client.search_experiments(filter_string=flt, order_by=["creation_time ASC"])
    times = [e.creation_time for e in by_time]
    assert times == sorted(times)
    assert set(e.experiment_id for e in by_time) == set(created)

    by_id = client.search_experiments(filter_string=flt, order_by=["experiment_id DESC"])
    assert [e.experiment_id for e in by_id] == sorted(created, key=int, reverse=True)


def test_search_experiments_pages_with_tokens(client):
    prefix = unique("page")
    created = {client.create_experiment(f"{prefix}-{i:02d}") for i in range(7)}
    flt = f"name LIKE '{prefix}-%'"

    seen = []
    token = None
    pages = 0
    while True:
        page = client.search_experiments(
            filter_string=flt, max_results=3, order_by=["name ASC"], page_token=token
        )
        pages += 1
        assert len(page) <= 3
        seen += [e.name for e in page]
        token = page.token
        if not token:
            break
        assert pages < 10, "page tokens do not advance"
    assert pages == 3
    assert seen == [f"{prefix}-{i:02d}" for i in range(7)]
    assert len(created) == 7

    # The fluent API walks the pages itself.
    everything = mlflow.search_experiments(filter_string=flt, max_results=None)
    assert len(everything) == 7


def test_rename_experiment(client):
    old, new = unique("old"), unique("new")
    experiment_id = client.create_experiment(old)
    client.rename_experiment(experiment_id, new)
    assert client.get_experiment(experiment_id).name == new
    assert client.get_experiment_by_name(new).experiment_id == experiment_id
    assert client.get_experiment_by_name(old) is None


def test_delete_and_restore_experiment(client):
    name = unique("doomed")
    experiment_id = client.create_experiment(name)
    flt = f"name = '{name}'"

    client.delete_experiment(experiment_id)
    deleted = client.get_experiment(experiment_id)
    assert deleted.lifecycle_stage == "deleted"
    assert client.search_experiments(filter_string=flt) == []
    assert [
        e.experiment_id
        for e in client.search_experiments(filter_string=flt, view_type=ViewType.DELETED_ONLY)
    ] == [experiment_id]
    assert [
        e.experiment_id
        for e in client.search_experiments(filter_string=flt, view_type=ViewType.ALL)
    ] == [experiment_id]
    active_ids = {
        e.experiment_id for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
    }
    assert experiment_id not in active_ids
    assert "0" in active_ids

    # The name stays taken while the experiment is only soft-deleted.
    with pytest.raises(MlflowException) as excinfo:
        client.create_experiment(name)
    assert_client_error(excinfo, "RESOURCE_ALREADY_EXISTS")

    client.restore_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"
    assert [e.experiment_id for e in client.search_experiments(filter_string=flt)] == [
        experiment_id
    ]


def test_experiment_tags_set_and_delete(client):
    experiment_id = client.create_experiment(unique("tags"), tags={"keep": "1", "drop": "2"})
    client.set_experiment_tag(experiment_id, "added", "three")
    client.set_experiment_tag(experiment_id, "keep", "overwritten")
    client.delete_experiment_tag(experiment_id, "drop")
    assert client.get_experiment(experiment_id).tags == {"keep": "overwritten", "added": "three"}

    mlflow.set_experiment(experiment_id=experiment_id)  # the fluent setter tags the active one
    mlflow.set_experiment_tag("fluent", "yes")
    assert client.get_experiment(experiment_id).tags["fluent"] == "yes"


def test_unknown_experiment_id_is_resource_does_not_exist(client):
    with pytest.raises(MlflowException) as excinfo:
        client.get_experiment("987654321")
    assert_client_error(excinfo, "RESOURCE_DOES_NOT_EXIST")


def test_duplicate_experiment_name_is_resource_already_exists(client):
    name = unique("dup")
    client.create_experiment(name)
    with pytest.raises(MlflowException) as excinfo:
        client.create_experiment(name)
    assert_client_error(excinfo, "RESOURCE_ALREADY_EXISTS")
