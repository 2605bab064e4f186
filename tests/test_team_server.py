"""The team set-up: a sweep logged to `mlflow server` on PostgreSQL (a real server started by
the test harness, conftest.postgres_mlflow_server) reads back complete: params, every metric
point, samples, models."""

from __future__ import annotations

import time
from pathlib import Path

import mlflow.artifacts
import pytest
from helpers import TINY, artifacts, history, run_here, runs
from omegaconf import OmegaConf
from test_runs import check_sweep

from rnnexp.framework.tracking import flatten


@pytest.mark.slow
def test_a_sweep_reads_back_complete_from_the_postgres_server(tmp_path, postgres_mlflow_server):
    from mlflow import MlflowClient

    uri = postgres_mlflow_server
    start = time.monotonic()
    r = run_here("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "corpus=elman",
               "model.hidden_size=16,24,32,40", *TINY, f"tracking.uri={uri}",
               cwd=tmp_path, timeout=600)  # fmt: skip
    print(f"4 jobs, 2 at a time, to mlflow server on PostgreSQL: {time.monotonic() - start:.1f} s")
    assert r.returncode == 0, r.stderr
    check_sweep(uri, 4, {"model.hidden_size"})  # parent, children, every metric point
    # named by its command line, over the 250 characters PostgreSQL holds for a run's name
    [parent] = [p for p in runs(uri) if "mlflow.parentRunId" not in p.data.tags]
    assert len(parent.info.run_name) == 250 and parent.info.run_name.endswith("…")

    client = MlflowClient(uri)
    for child in runs(uri)[1:]:
        out = Path(child.data.tags["rnnexp.output_dir"])
        config = OmegaConf.to_container(
            OmegaConf.load(out / ".hydra" / "config.yaml"), resolve=True
        )
        assert child.data.params == flatten(config)  # the full resolved config, every key
        assert [s for s, _ in history(uri, child.info.run_id, "train/smooth_loss")] == [
            5, 10, 15, 20, 25, 30,
        ]  # fmt: skip
        files = {"config.yaml", "gate_saturation.png", "inspect.html", "loss_curve.png",
                 "samples/step_0000015.txt", "samples/step_0000030.txt"}  # fmt: skip
        best = child.data.tags["rnnexp.best_model"]  # model_best/ where it is not the final
        if best == "model_best":
            files |= {"model_best/model.json", "model_best/model.npz"}
        assert set(artifacts(uri, child.info.run_id)) == files
        for name in sorted(files - {"config.yaml"} - {f for f in files if "samples" in f}):
            served = client.download_artifacts(child.info.run_id, name, str(tmp_path / "dl"))
            assert Path(served).read_bytes() == (out / name).read_bytes(), name  # byte for byte
        # the final model's one copy on the server: its MLflow model, the folder's model/
        model_id = child.data.tags["rnnexp.model_id"]
        mlflow.set_tracking_uri(uri)
        got = Path(
            mlflow.artifacts.download_artifacts(
                f"models:/{model_id}", dst_path=str(tmp_path / model_id)
            )
        )
        for name in ("model.npz", "model.json"):
            assert (got / "artifacts" / "model" / name).read_bytes() == (
                out / "model" / name).read_bytes(), name  # fmt: skip
        sample = client.download_artifacts(child.info.run_id, "samples/step_0000030.txt")
        assert len(Path(sample).read_text()) == 21  # the start character + 20
