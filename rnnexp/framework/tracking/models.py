"""A run's model the MLflow way: logged as a pyfunc "model from code" (tracking/pyfunc_model.py)
with a signature and an input example, registered under a name (a sweep's best with the alias
`best`), and found again by its models:/ URI.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rnnexp.framework.tracking import plain, serving
from rnnexp.framework.tracking.store import Store

PARAMETERS = "model"  # the MLflow model's artifact that holds model.npz and model.json
# the name of a run's MLflow model (runs:/<run id>/mlflow_model): not the run's own model/
# folder of npz + json, which MLflow would list merged with a model of the same name
MLFLOW_MODEL = "mlflow_model"


def _signature():
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = Schema([
        ColSpec("string", "prime", required=False),  # empty or missing: the start character
        ColSpec("long", "length"),
        ColSpec("double", "temperature", required=False),  # 1.0
        ColSpec("long", "seed", required=False),  # 0
    ])  # fmt: skip
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("string", "text")]))


def log_model(client, run_id: str, model_dir: Path, step: int) -> str:
    """The model in `model_dir` (model.npz + model.json) as run `run_id`'s MLflow model:
    loadable by `mlflow.pyfunc.load_model("models:/<id>")` and servable by `mlflow models
    serve`, the run's only one; returns its model id."""
    import tempfile

    import mlflow.pyfunc
    from mlflow.entities import LoggedModelOutput
    from mlflow.models import Model

    from rnnexp.framework.tracking import pyfunc_model

    logging.getLogger("mlflow.pyfunc").setLevel(logging.WARNING)  # "Validating input ..."
    run = client.get_run(run_id)
    logged = client.create_logged_model(
        run.info.experiment_id, name=MLFLOW_MODEL, source_run_id=run_id,
        tags={"rnnexp.step": str(step)},
    )  # fmt: skip
    model = Model(artifact_path=logged.artifact_location, run_id=run_id,
                  model_id=logged.model_id, model_uuid=logged.model_id)  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        mlflow.pyfunc.save_model(
            Path(scratch) / "model",
            python_model=pyfunc_model.__file__,  # code, not a pickle
            artifacts={PARAMETERS: str(model_dir)},
            signature=_signature(),
            input_example=serving.EXAMPLE,
            pip_requirements=serving.requirements(),  # not inferred: that runs the model twice
            mlflow_model=model,
        )
        client.log_outputs(run_id, models=[LoggedModelOutput(logged.model_id, step=step)])
        client.log_model_artifacts(logged.model_id, str(Path(scratch) / "model"))
    client.finalize_logged_model(logged.model_id, "READY")
    # one model per run: a run resumed after its model was logged (or half logged) logs it
    # again, and the earlier one goes
    earlier = client.search_logged_models([run.info.experiment_id],
                                          f"source_run_id = '{run_id}'")  # fmt: skip
    for m in earlier:
        if m.model_id != logged.model_id:
            client.delete_logged_model(m.model_id)
    return logged.model_id


def register_model(
    store: Store, name: str, model_id: str, run_id: str, alias: str | None = None
) -> str:
    """A new version of registered model `name` (made if new) holding logged model
    `model_id` of run `run_id`, with `alias` pointing at it; returns the version."""
    from mlflow.exceptions import MlflowException

    client = store.client
    with store.lock(), store.errors():
        try:
            client.create_registered_model(name)
        except MlflowException as e:
            if e.error_code != "RESOURCE_ALREADY_EXISTS":  # made by another run: join it
                raise
        # the model's storage location, not models:/<id>: MLflow's sqlite registry resolves
        # that through the global tracking URI, another store than this one
        source = client.get_logged_model(model_id).artifact_location
        version = client.create_model_version(
            name, source, run_id=run_id, model_id=model_id
        ).version
        if alias:
            client.set_registered_model_alias(name, alias, version)
        client.set_tag(run_id, "rnnexp.registered", f"{name}/{version}")
    return str(version)


def download_model(store: Store, model_uri: str, dst: Path, hint: str) -> tuple[Path, str]:
    """An MLflow model of `store` (models:/<model id>, models:/<name>/<version>,
    models:/<name>@<alias>), downloaded into `dst`: the folder of its model.npz and
    model.json, and the id of the run that logged it."""
    m = plain.model_uri(model_uri)
    with store.looking_up(model_uri, hint) as client:
        if m["id"]:
            logged = client.get_logged_model(m["id"])
            run_id, location = logged.source_run_id, logged.artifact_location
        else:
            version = (client.get_model_version(m["name"], m["version"]) if m["version"] else
                       client.get_model_version_by_alias(m["name"], m["alias"]))  # fmt: skip
            run_id, location = version.run_id, version.source
    # where the store says the model's files are, bounded
    return store.fetch(location, dst, model_uri) / "artifacts" / PARAMETERS, run_id
