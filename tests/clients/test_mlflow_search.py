"""SearchRuns through the unmodified `mlflow` client: the filter grammar on metrics, params, tags,
attributes and datasets, order_by, run_view_type, and page tokens across 1,000 runs.
MLflow service.proto: SearchRuns; grammar in mlflow/utils/search_utils.py (SearchUtils)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException

from mlflow_helpers import assert_client_error, unique

BULK_RUNS = 1000
BASE_TIME = 1_700_000_000_000


@pytest.fixture(scope="module")
def client(mlflow_tracking) -> MlflowClient:
    return MlflowClient(mlflow_tracking.url)


@pytest.fixture(scope="module")
def small(client):
    """Five runs with known values; `ids` maps run name to run id."""
    experiment_id = client.create_experiment(unique("search-small"))
    specs = [
        # name, start offset, status, acc, loss, model, team
        ("alpha", 1, "FINISHED", 0.10, 5.0, "linear", "data-eng"),
        ("beta", 2, "FINISHED", 0.20, 4.0, "tree", "Data-Science"),
        ("gamma", 3, "FAILED", 0.30, None, "tree", "platform"),
        ("delta", 4, "RUNNING", 0.40, 2.0, "linear", None),
        ("Epsilon", 5, "FINISHED", None, 1.0, None, "data-eng"),
    ]
    ids = {}
    for name, offset, status, acc, loss, model, team in specs:
        run = client.create_run(experiment_id, start_time=BASE_TIME + offset * 1000, run_name=name)
        run_id = run.info.run_id
        metrics = [
            Metric(k, v, BASE_TIME, 0) for k, v in (("acc", acc), ("loss", loss)) if v is not None
        ]
        params = [Param("model", model)] if model else []
        tags = [RunTag("team", team)] if team else []
        tags.append(RunTag("my key", f"spaced {name}"))
        client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
        if status != "RUNNING":
            client.set_terminated(run_id, status=status, end_time=BASE_TIME + offset * 1000 + 500)
        ids[name] = run_id
    training_set = Dataset(name="train-set", digest="abc", source_type="code", source="{}")
    client.log_inputs(
        ids["beta"],
        datasets=[DatasetInput(training_set, tags=[InputTag("mlflow.data.context", "training")])],
    )
    return experiment_id, ids


def names(runs, ids) -> list[str]:
    by_id = {run_id: name for name, run_id in ids.items()}
    return [by_id[run.info.run_id] for run in runs]


def search(client, small, filter_string="", **kwargs) -> list[str]:
    experiment_id, ids = small
    return names(client.search_runs([experiment_id], filter_string, **kwargs), ids)


def test_default_order_is_newest_start_time_first(client, small):
    assert search(client, small) == ["Epsilon", "delta", "gamma", "beta", "alpha"]


@pytest.mark.parametrize(
    "filter_string, expected",
    [
        ("metrics.acc > 0.25", {"gamma", "delta"}),
        ("metrics.acc >= 0.2 AND metrics.acc < 0.4", {"beta", "gamma"}),
        ("metrics.acc = 0.1", {"alpha"}),
        ("metrics.acc != 0.1", {"beta", "gamma", "delta"}),  # runs without `acc` never match
        ("metrics.loss <= 2", {"delta", "Epsilon"}),
        ("params.model = 'tree'", {"beta", "gamma"}),
        ("params.model != 'tree'", {"alpha", "delta"}),
        ("params.model LIKE 'lin%'", {"alpha", "delta"}),
        ("params.model IS NULL", {"Epsilon"}),
        ("params.model IS NOT NULL", {"alpha", "beta", "gamma", "delta"}),
        ("tags.team = 'data-eng'", {"alpha", "Epsilon"}),
        ("tags.team LIKE 'data%'", {"alpha", "Epsilon"}),  # LIKE is case-sensitive
        ("tags.team ILIKE 'data%'", {"alpha", "beta", "Epsilon"}),
        ("tags.team IS NULL", {"delta"}),
        ("tags.`my key` = 'spaced gamma'", {"gamma"}),
        ("tags.\"my key\" LIKE '%lta'", {"delta"}),
        ("attributes.run_name = 'alpha'", {"alpha"}),
        ("run_name ILIKE 'e%'", {"Epsilon"}),
        ("attributes.run_name LIKE '%a'", {"alpha", "beta", "gamma", "delta"}),
        ("attributes.status = 'FAILED'", {"gamma"}),
        ("status != 'FINISHED'", {"gamma", "delta"}),
        (f"attributes.start_time > {BASE_TIME + 3000}", {"delta", "Epsilon"}),
        (f"start_time <= {BASE_TIME + 2000}", {"alpha", "beta"}),
        (f"attributes.end_time < {BASE_TIME + 3000}", {"alpha", "beta"}),
        ("params.model = 'tree' AND tags.team = 'platform'", {"gamma"}),
        ("metrics.acc > 0.15 AND params.model = 'linear' AND status = 'RUNNING'", {"delta"}),
        ("datasets.name = 'train-set'", {"beta"}),
        ("datasets.context = 'training'", {"beta"}),
        ("datasets.digest IN ('abc', 'zzz')", {"beta"}),
    ],
)
def test_filters(client, small, filter_string, expected):
    assert set(search(client, small, filter_string)) == expected


def test_run_id_in_and_not_in(client, small):
    _, ids = small
    picked = (ids["alpha"], ids["gamma"])
    quoted = ", ".join(f"'{run_id}'" for run_id in picked)
    assert set(search(client, small, f"attributes.run_id IN ({quoted})")) == {"alpha", "gamma"}
    assert set(search(client, small, f"run_id NOT IN ({quoted})")) == {"beta", "delta", "Epsilon"}
    assert search(client, small, f"attributes.run_id = '{ids['beta']}'") == ["beta"]


def test_order_by(client, small):
    # Runs without the metric come last in either direction.
    assert search(client, small, order_by=["metrics.acc DESC"]) == [
        "delta",
        "gamma",
        "beta",
        "alpha",
        "Epsilon",
    ]
    assert search(client, small, order_by=["metrics.acc ASC"]) == [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "Epsilon",
    ]
    assert search(client, small, order_by=["metrics.loss"]) == [
        "Epsilon",
        "delta",
        "beta",
        "alpha",
        "gamma",
    ]
    # Ties (same param) fall back to start_time DESC.
    assert search(client, small, order_by=["params.model ASC"]) == [
        "delta",
        "alpha",
        "gamma",
        "beta",
        "Epsilon",
    ]
    assert search(client, small, order_by=["attributes.start_time ASC"]) == [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "Epsilon",
    ]
    assert search(client, small, order_by=["attributes.run_name ASC"]) == [
        "Epsilon",
        "alpha",
        "beta",
        "delta",
        "gamma",
    ]
    assert search(client, small, order_by=["tags.team DESC", "start_time ASC"]) == [
        "gamma",
        "alpha",
        "Epsilon",
        "beta",
        "delta",
    ]


def test_run_view_type(client, small):
    experiment_id, ids = small
    client.delete_run(ids["gamma"])
    try:
        assert "gamma" not in search(client, small)
        assert search(client, small, run_view_type=ViewType.DELETED_ONLY) == ["gamma"]
        assert len(search(client, small, run_view_type=ViewType.ALL)) == 5
        frame = mlflow.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)
        assert list(frame["run_id"]) == [ids["gamma"]]
    finally:
        client.restore_run(ids["gamma"])
    assert "gamma" in search(client, small)


def test_fluent_search_runs_returns_a_frame(small):
    experiment_id, ids = small
    frame = mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string="params.model = 'tree'",
        order_by=["metrics.acc ASC"],
    )
    assert list(frame["run_id"]) == [ids["beta"], ids["gamma"]]
    assert list(frame["metrics.acc"]) == [0.2, 0.3]
    assert list(frame["params.model"]) == ["tree", "tree"]
    assert list(frame["tags.team"]) == ["Data-Science", "platform"]
    assert list(frame["status"]) == ["FINISHED", "FAILED"]

    runs = mlflow.search_runs(
        experiment_ids=[experiment_id], filter_string="tags.team = 'data-eng'", output_format="list"
    )
    assert sorted(run.info.run_name for run in runs) == ["Epsilon", "alpha"]


def test_search_by_experiment_name(small, client):
    experiment_id, _ = small
    name = client.get_experiment(experiment_id).name
    frame = mlflow.search_runs(experiment_names=[name])
    assert len(frame) == 5


def test_syntax_error_is_invalid_parameter_value(client, small):
    experiment_id, _ = small
    with pytest.raises(MlflowException) as excinfo:
        client.search_runs([experiment_id], "metrics.acc >>> 1")
    assert_client_error(excinfo, "INVALID_PARAMETER_VALUE")


@pytest.fixture(scope="module")
def bulk(client):
    """1,000 runs, each with metric `idx` = i, param `parity` and tag `bucket`."""
    experiment_id = client.create_experiment(unique("search-bulk"))

    def make(i: int) -> tuple[int, str]:
        run = client.create_run(
            experiment_id,
            start_time=BASE_TIME + i,
            run_name=f"bulk-{i:04d}",
            tags={"bucket": str(i % 10)},
        )
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("idx", float(i), BASE_TIME, 0)],
            params=[Param("parity", str(i % 2))],
        )
        return i, run.info.run_id

    with ThreadPoolExecutor(max_workers=8) as pool:
        made = dict(pool.map(make, range(BULK_RUNS)))
    return experiment_id, made


def walk(client, experiment_id, **kwargs) -> tuple[list, int]:
    seen, token, pages = [], None, 0
    while True:
        page = client.search_runs([experiment_id], max_results=300, page_token=token, **kwargs)
        pages += 1
        assert len(page) <= 300
        seen += page
        token = page.token
        if not token:
            return seen, pages
        assert pages <= 10, "page tokens do not advance"


def test_pages_over_1000_runs(client, bulk):
    experiment_id, made = bulk
    runs, pages = walk(client, experiment_id)
    assert pages == 4
    run_ids = [run.info.run_id for run in runs]
    assert len(run_ids) == len(set(run_ids)) == BULK_RUNS
    assert set(run_ids) == set(made.values())
    # Default order: start_time DESC.
    assert [run.data.metrics["idx"] for run in runs] == [
        float(i) for i in reversed(range(BULK_RUNS))
    ]


def test_pages_with_filter_and_order(client, bulk):
    experiment_id, made = bulk
    runs, pages = walk(
        client,
        experiment_id,
        filter_string="params.parity = '1' AND tags.bucket != '3'",
        order_by=["metrics.idx ASC"],
    )
    expected = [i for i in range(BULK_RUNS) if i % 2 == 1 and i % 10 != 3]
    assert pages == 2
    assert [int(run.data.metrics["idx"]) for run in runs] == expected
    assert [run.info.run_id for run in runs] == [made[i] for i in expected]


def test_fluent_search_runs_collects_every_page(bulk):
    experiment_id, _ = bulk
    frame = mlflow.search_runs([experiment_id], filter_string="metrics.idx >= 100")
    assert len(frame) == BULK_RUNS - 100
    assert frame["run_id"].is_unique
