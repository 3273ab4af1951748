"""The MLflow 3 prompt registry through the unmodified `mlflow` client (`mlflow.genai.*`). It has no
endpoints of its own: a prompt is a registered model tagged `mlflow.prompt.is_prompt=true`, each
prompt version a model version whose template is the tag `mlflow.prompt.text` (source
"dummy-source"), and aliases are registered-model aliases. See test_mlflow_registry.py for the
registry itself.

Covered: register_prompt (first and later versions, text and chat templates), load_prompt by
version, by alias and latest, PromptVersion.format, set/delete_prompt_alias, search_prompts (by
name, by experiment, order, limit), prompt and version tags, deleting versions and prompts, linking
to the active experiment and run, how prompts are stored on the wire, that the server keeps
prompts out of model searches (and models out of prompt searches), and name clashes between
models and prompts (KEELSON_TEST_REFERENCE_MLFLOW=1 proves each against `mlflow server` 3.17.2)."""

from __future__ import annotations

import json
import os
from typing import Iterator

import mlflow
import mlflow.genai
import mlflow.tracking.fluent
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from mlflow_helpers import (
    API,
    assert_client_error,
    assert_rest_error,
    unique,
    wait_for_prompt_links,
)

RM = f"{API}/registered-models"
MV = f"{API}/model-versions"
IS_PROMPT = "mlflow.prompt.is_prompt"
PROMPT_TEXT = "mlflow.prompt.text"
PROMPT_TYPE = "_mlflow_prompt_type"
EXPERIMENT_IDS = "_mlflow_experiment_ids"
EXPERIMENT_ID_ENV = "MLFLOW_EXPERIMENT_ID"


@pytest.fixture(scope="module")
def client(mlflow_tracking) -> MlflowClient:
    return MlflowClient(mlflow_tracking.url)


@pytest.fixture(scope="module")
def experiment_id(client) -> Iterator[str]:
    """The active experiment: the client tags every prompt it registers or loads with it."""
    experiment_id = client.create_experiment(unique("prompts"))
    previous = os.environ.get(EXPERIMENT_ID_ENV)
    mlflow.set_experiment(experiment_id=experiment_id)  # also exports MLFLOW_EXPERIMENT_ID
    try:
        yield experiment_id
    finally:
        # The next module's server has other experiments: leave neither behind.
        mlflow.tracking.fluent._active_experiment_id = None
        if previous is None:
            os.environ.pop(EXPERIMENT_ID_ENV, None)
        else:
            os.environ[EXPERIMENT_ID_ENV] = previous


def register(name: str, template, **kwargs):
    version = mlflow.genai.register_prompt(name=name, template=template, **kwargs)
    wait_for_prompt_links()
    return version


def load(uri_or_name: str, **kwargs):
    prompt = mlflow.genai.load_prompt(uri_or_name, **kwargs)
    wait_for_prompt_links()
    return prompt


def tags_of(entity: dict) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in entity.get("tags", [])}


def test_register_and_load_versions(experiment_id):
    name = unique("greeting")
    first = register(
        name, "Hello {{name}}!", commit_message="first draft", tags={"author": "alice"}
    )
    assert first.name == name
    assert first.version == 1
    assert first.template == "Hello {{name}}!"
    assert first.commit_message == "first draft"
    assert first.tags == {"author": "alice"}  # mlflow.* / _mlflow_* tags are hidden
    assert first.variables == {"name"}
    assert first.uri == f"prompts:/{name}/1"

    second = register(
        name,
        "Hi {{name}}, {{greeting}}",
        commit_message="add a greeting",
        tags={"author": "bob"},
    )
    assert second.version == 2
    assert second.variables == {"name", "greeting"}

    v1 = load(f"prompts:/{name}/1")
    assert (v1.version, v1.template, v1.commit_message) == (1, "Hello {{name}}!", "first draft")
    assert v1.tags == {"author": "alice"}
    assert v1.format(name="Bob") == "Hello Bob!"

    v2 = load(name, version=2)
    assert v2.template == "Hi {{name}}, {{greeting}}"
    assert v2.format(name="Ann", greeting="welcome") == "Hi Ann, welcome"
    partial = v2.format(name="Ann", allow_partial=True)
    assert partial.template == "Hi Ann, {{greeting}}"
    with pytest.raises(MlflowException):
        v2.format(name="Ann")  # a variable is missing

    # Without a version: the latest, which the server answers for the alias "latest".
    assert load(name).version == 2
    assert load(f"prompts:/{name}@latest", cache_ttl_seconds=0).version == 2


def test_prompt_storage_on_the_wire(mlflow_tracking, experiment_id):
    name = unique("stored")
    register(name, "Summarise {{text}}", commit_message="v1", tags={"author": "alice"})
    register(name, "Summarise briefly: {{text}}", commit_message="v2", tags={"author": "bob"})

    response = mlflow_tracking.get(f"{RM}/get", params={"name": name})
    assert response.status_code == 200, response.text
    model = response.json()["registered_model"]
    # The prompt: description = the first commit message; prompt-level tags = the marker, the
    # latest value of each version tag, and the experiments it was used in (",<id>,...").
    assert model["description"] == "v1"
    assert tags_of(model) == {
        IS_PROMPT: "true",
        "author": "bob",
        EXPERIMENT_IDS: f",{experiment_id},",
    }
    [latest] = model["latest_versions"]
    assert latest["version"] == "2"

    for version, text, message, author in [
        ("1", "Summarise {{text}}", "v1", "alice"),
        ("2", "Summarise briefly: {{text}}", "v2", "bob"),
    ]:
        response = mlflow_tracking.get(f"{MV}/get", params={"name": name, "version": version})
        assert response.status_code == 200, response.text
        mv = response.json()["model_version"]
        assert mv["source"] == "dummy-source"  # the placeholder the client sends
        assert mv["description"] == message
        assert mv["status"] == "READY"
        assert mv["current_stage"] == "None"
        assert mv["run_id"] == ""
        assert tags_of(mv) == {
            IS_PROMPT: "true",
            PROMPT_TYPE: "text",
            PROMPT_TEXT: text,
            "author": author,
        }


def test_chat_prompt(mlflow_tracking, experiment_id):
    name = unique("chat")
    messages = [
        {"role": "system", "content": "You are a {{style}} assistant."},
        {"role": "user", "content": "{{question}}"},
    ]
    created = register(name, messages, commit_message="chat")
    assert created.template == messages

    loaded = load(f"prompts:/{name}/1")
    assert loaded.template == messages
    assert loaded.format(style="terse", question="Why?") == [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "Why?"},
    ]
    mv = mlflow_tracking.get(f"{MV}/get", params={"name": name, "version": "1"}).json()
    tags = tags_of(mv["model_version"])
    assert tags[PROMPT_TYPE] == "chat"
    assert json.loads(tags[PROMPT_TEXT]) == messages


def test_prompt_aliases(mlflow_tracking, experiment_id):
    name = unique("aliased")
    register(name, "one {{x}}")
    register(name, "two {{x}}")

    mlflow.genai.set_prompt_alias(name, alias="production", version=1)
    prod = load(f"prompts:/{name}@production")
    assert prod.version == 1
    assert prod.template == "one {{x}}"
    assert prod.aliases == ["production"]
    assert prod.format(x="!") == "one !"

    # Moving the alias (the client drops its cached copy when it sets an alias).
    mlflow.genai.set_prompt_alias(name, alias="production", version=2)
    assert load(f"prompts:/{name}@production").version == 2
    response = mlflow_tracking.get(f"{RM}/alias", params={"name": name, "alias": "production"})
    assert response.status_code == 200, response.text
    assert response.json()["model_version"]["version"] == "2"
    assert response.json()["model_version"]["aliases"] == ["production"]

    mlflow.genai.delete_prompt_alias(name, alias="production")
    with pytest.raises(MlflowException) as excinfo:
        load(f"prompts:/{name}@production")
    assert_client_error(excinfo, "INVALID_PARAMETER_VALUE")  # the server's 400, not a 404
    assert load(f"prompts:/{name}@production", allow_missing=True) is None
    assert load(f"prompts:/{name}/1").aliases == []

    # The registry's alias rules hold for prompts too.
    with pytest.raises(MlflowException) as excinfo:
        mlflow.genai.set_prompt_alias(name, alias="latest", version=1)
    assert_client_error(excinfo, "INVALID_PARAMETER_VALUE")
    with pytest.raises(MlflowException) as excinfo:
        mlflow.genai.set_prompt_alias(name, alias="v2", version=2)
    assert_client_error(excinfo, "INVALID_PARAMETER_VALUE")
    model = mlflow_tracking.get(f"{RM}/get", params={"name": name}).json()["registered_model"]
    assert model.get("aliases", []) == []


def test_search_prompts(client, experiment_id):
    prefix = unique("search")
    for suffix, team in [("a", "red"), ("b", "blue"), ("c", "red")]:
        register(
            f"{prefix}-{suffix}",
            f"prompt {suffix}",
            commit_message=f"made {suffix}",
            tags={"team": team},
        )
    client.create_registered_model(f"{prefix}-model")

    found = mlflow.genai.search_prompts(filter_string=f"name LIKE '{prefix}-%'")
    assert sorted(p.name for p in found) == [f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"]
    by_name = {p.name: p for p in found}
    prompt_a = by_name[f"{prefix}-a"]
    assert prompt_a.description == "made a"
    assert prompt_a.tags["team"] == "red"
    assert IS_PROMPT not in prompt_a.tags
    assert prompt_a.creation_timestamp > 0

    red = mlflow.genai.search_prompts(
        filter_string=f"name LIKE '{prefix}-%' AND tags.team = 'red'"
    )
    assert sorted(p.name for p in red) == [f"{prefix}-a", f"{prefix}-c"]
    ordered = mlflow.genai.search_prompts(
        filter_string=f"name LIKE '{prefix}-%'", order_by=["name DESC"]
    )
    assert [p.name for p in ordered] == [f"{prefix}-c", f"{prefix}-b", f"{prefix}-a"]
    limited = mlflow.genai.search_prompts(
        filter_string=f"name LIKE '{prefix}-%'", order_by=["name ASC"], max_results=2
    )
    assert [p.name for p in limited] == [f"{prefix}-a", f"{prefix}-b"]
    # `experiment_id = "<id>"` becomes a LIKE on the _mlflow_experiment_ids tag.
    in_experiment = mlflow.genai.search_prompts(
        filter_string=f"experiment_id = '{experiment_id}' AND name LIKE '{prefix}-%'"
    )
    assert len(in_experiment) == 3
    other = client.create_experiment(unique("no-prompts"))
    assert mlflow.genai.search_prompts(
        filter_string=f"experiment_id = '{other}' AND name LIKE '{prefix}-%'"
    ) == []


def test_prompts_stay_out_of_model_searches(mlflow_tracking, client, experiment_id):
    prefix = unique("apart")
    prompt, model = f"{prefix}-prompt", f"{prefix}-model"
    register(prompt, "p {{x}}")
    register(prompt, "p2 {{x}}")
    client.create_registered_model(model)
    run_id = client.create_run(experiment_id).info.run_id
    client.create_model_version(model, f"runs:/{run_id}/model", run_id=run_id)

    # Through the client (which adds `tag.`mlflow.prompt.is_prompt` != 'true'` itself).
    assert [m.name for m in client.search_registered_models(f"name LIKE '{prefix}-%'")] == [model]
    fluent = mlflow.search_registered_models(filter_string=f"name LIKE '{prefix}-%'")
    assert [m.name for m in fluent] == [model]
    assert client.search_model_versions(f"name = '{prompt}'") == []
    assert [p.name for p in mlflow.genai.search_prompts(f"name LIKE '{prefix}-%'")] == [prompt]

    # The server leaves prompts out by itself unless the filter asks for them.
    response = mlflow_tracking.get(f"{RM}/search", params={"filter": f"name LIKE '{prefix}-%'"})
    assert response.status_code == 200, response.text
    assert [m["name"] for m in response.json()["registered_models"]] == [model]
    response = mlflow_tracking.get(
        f"{RM}/search",
        params={"filter": f"name LIKE '{prefix}-%' AND tags.`{IS_PROMPT}` = 'true'"},
    )
    assert [m["name"] for m in response.json()["registered_models"]] == [prompt]
    response = mlflow_tracking.get(f"{MV}/search", params={"filter": f"name = '{prompt}'"})
    assert response.status_code == 200 and response.json() == {}, response.text
    response = mlflow_tracking.get(
        f"{MV}/search",
        params={"filter": f"name = '{prompt}' AND tag.`{IS_PROMPT}` = 'true'"},
    )
    assert [mv["version"] for mv in response.json()["model_versions"]] == ["2", "1"]

    # get_registered_model refuses a prompt (client side: the server answers 200).
    with pytest.raises(MlflowException) as excinfo:
        client.get_registered_model(prompt)
    assert_client_error(excinfo, "RESOURCE_DOES_NOT_EXIST")
    assert mlflow_tracking.get(f"{RM}/get", params={"name": prompt}).status_code == 200


def test_prompt_and_model_names_clash(mlflow_tracking, client, experiment_id):
    prompt, model = unique("clash-prompt"), unique("clash-model")
    register(prompt, "x {{y}}")
    client.create_registered_model(model)

    with pytest.raises(MlflowException) as excinfo:
        client.create_registered_model(prompt)
    assert_client_error(excinfo, "RESOURCE_ALREADY_EXISTS")
    response = mlflow_tracking.post(f"{RM}/create", json={"name": prompt})
    body = assert_rest_error(response, 400, "RESOURCE_ALREADY_EXISTS")
    assert "prompt" in body["message"]
    response = mlflow_tracking.post(
        f"{RM}/create", json={"name": model, "tags": [{"key": IS_PROMPT, "value": "true"}]}
    )
    body = assert_rest_error(response, 400, "RESOURCE_ALREADY_EXISTS")
    assert "registered model" in body["message"]

    # register_prompt on a model's name is refused by the client after a look-up.
    with pytest.raises(MlflowException) as excinfo:
        register(model, "never stored")
    assert_client_error(excinfo, "INVALID_PARAMETER_VALUE")
    assert client.search_model_versions(f"name = '{model}'") == []
    # load_prompt on a model's name is refused too.
    with pytest.raises(MlflowException) as excinfo:
        load(f"prompts:/{model}/1")
    assert_client_error(excinfo, "INVALID_PARAMETER_VALUE")
    # Prompt names: alphanumerics, '-', '_' and '.' only (checked by the client).
    with pytest.raises(MlflowException) as excinfo:
        register(f"{prompt} with spaces", "x")
    assert_client_error(excinfo, "INVALID_PARAMETER_VALUE")
    # The prompt is unchanged.
    response = mlflow_tracking.get(
        f"{MV}/search", params={"filter": f"name = '{prompt}' AND tags.`{IS_PROMPT}` = 'true'"}
    )
    assert [v["version"] for v in response.json()["model_versions"]] == ["1"]


def test_prompt_version_source_must_be_a_placeholder(mlflow_tracking, experiment_id):
    name = unique("source")
    register(name, "x {{y}}")
    prompt_tags = [
        {"key": IS_PROMPT, "value": "true"},
        {"key": PROMPT_TYPE, "value": "text"},
        {"key": PROMPT_TEXT, "value": "raw {{y}}"},
    ]
    response = mlflow_tracking.post(
        f"{MV}/create", json={"name": name, "source": "s3://bucket/x", "tags": prompt_tags}
    )
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")
    # "dummy-source" (the client's) and "prompt-template" (the store's) are the accepted values.
    for number, source in [("2", "prompt-template"), ("3", "dummy-source")]:
        response = mlflow_tracking.post(
            f"{MV}/create", json={"name": name, "source": source, "tags": prompt_tags}
        )
        assert response.status_code == 200, response.text
        assert response.json()["model_version"]["version"] == number
    assert load(f"prompts:/{name}/3").template == "raw {{y}}"
    # A prompt version cannot be the source of a model version.
    model = unique("from-prompt")
    mlflow_tracking.post(f"{RM}/create", json={"name": model})
    response = mlflow_tracking.post(
        f"{MV}/create", json={"name": model, "source": f"models:/{name}/1"}
    )
    assert_rest_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_prompt_and_version_tags(client, experiment_id):
    name = unique("tagged")
    register(name, "t {{x}}", tags={"v": "1"})
    mlflow.genai.set_prompt_tag(name, "owner", "team-a")
    assert mlflow.genai.get_prompt_tags(name)["owner"] == "team-a"
    mlflow.genai.delete_prompt_tag(name, "owner")
    assert "owner" not in mlflow.genai.get_prompt_tags(name)

    mlflow.genai.set_prompt_version_tag(name, 1, "reviewed", "yes")
    assert load(f"prompts:/{name}/1", cache_ttl_seconds=0).tags == {"v": "1", "reviewed": "yes"}
    mlflow.genai.delete_prompt_version_tag(name, 1, "reviewed")
    assert load(f"prompts:/{name}/1", cache_ttl_seconds=0).tags == {"v": "1"}


def test_load_prompt_in_a_run_links_it(client, experiment_id):
    name = unique("linked")
    register(name, "run {{x}}")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        load(f"prompts:/{name}/1", cache_ttl_seconds=0)
    linked = json.loads(client.get_run(run.info.run_id).data.tags["mlflow.linkedPrompts"])
    assert {"name": name, "version": "1"} in linked


def test_delete_prompt_versions_and_prompt(mlflow_tracking, client, experiment_id):
    name = unique("doomed")
    register(name, "one")
    register(name, "two")
    client.delete_prompt_version(name, 2)
    with pytest.raises(MlflowException) as excinfo:
        load(f"prompts:/{name}/2", cache_ttl_seconds=0)
    assert_client_error(excinfo, "RESOURCE_DOES_NOT_EXIST")
    assert load(name, cache_ttl_seconds=0).version == 1  # latest is the highest live version
    # Version numbers are not reused.
    assert register(name, "three").version == 3

    client.delete_prompt(name)
    with pytest.raises(MlflowException) as excinfo:
        load(f"prompts:/{name}/1", cache_ttl_seconds=0)
    assert_client_error(excinfo, "RESOURCE_DOES_NOT_EXIST")
    assert load(f"prompts:/{name}/1", cache_ttl_seconds=0, allow_missing=True) is None
    assert_rest_error(
        mlflow_tracking.get(f"{RM}/get", params={"name": name}), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    # The name is free again, and a new prompt starts at version 1.
    assert register(name, "again").version == 1


def test_unknown_prompt(experiment_id):
    missing = unique("nope")
    with pytest.raises(MlflowException) as excinfo:
        load(f"prompts:/{missing}/1")
    assert_client_error(excinfo, "RESOURCE_DOES_NOT_EXIST")
    assert load(f"prompts:/{missing}/1", allow_missing=True) is None
    assert load(f"prompts:/{missing}@production", allow_missing=True) is None
    name = unique("one-version")
    register(name, "only")
    with pytest.raises(MlflowException) as excinfo:
        load(f"prompts:/{name}/9")
    assert_client_error(excinfo, "RESOURCE_DOES_NOT_EXIST")
