"""Runs whose process is gone: closed KILLED when a command next opens their store (a kill
-9, the OOM killer or a power cut gave them no chance to close themselves), and a sweep
job's attempt that died before its first step, replaced when the sweep is resumed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rnnexp.framework import rundir
from rnnexp.framework.tracking.plain import tag_is

log = logging.getLogger("rnnexp")


class AbandonedRuns:
    """These methods of tracking.store.Store (which inherits them: its `path`, `client` and
    `errors`), kept apart as their own idea."""

    def close_abandoned(self, experiment_ids: list[str] | None = None) -> list[str]:
        """Close KILLED the RUNNING runs (and sweeps) of `experiment_ids` (None: every
        experiment) whose process died without closing them (rundir.abandoned: a kill -9, the
        OOM killer, a power cut); return their names. Called whenever a command opens the
        store."""
        if self.path is not None and not self.path.is_file():
            return []  # no store yet: nothing in it to close (and a look creates none)
        client, closed = self.client, []
        with self.errors():
            if experiment_ids is None:
                experiment_ids = [e.experiment_id for e in client.search_experiments()]
            running = client.search_runs(experiment_ids, "attributes.status = 'RUNNING'",
                                         max_results=10_000) if experiment_ids else []  # fmt: skip
            for r in running:
                tags = r.data.tags
                folder = tags.get("rnnexp.output_dir") or tags.get("rnnexp.sweep_dir")
                if not folder or not rundir.abandoned(Path(folder), tags.get("rnnexp.host", "")):
                    continue
                if "rnnexp.sweep_dir" in tags and (Path(folder) / rundir.SWEEP_FILE).is_file():
                    then = f"continue with: rnnexp -m resume={folder}"
                elif (Path(folder) / rundir.CHECKPOINT_FILE).is_file():
                    then = f"continue with: rnnexp resume={folder}"
                else:
                    then = "it stopped before its first step: start it again"  # (or first job)
                error = f"its process died before closing it; {then}"
                client.set_tag(r.info.run_id, "rnnexp.error", error)
                client.set_terminated(r.info.run_id, status="KILLED")
                closed.append(r.info.run_name)
                log.info("closed %s (KILLED): %s", r.info.run_name, error)
        return closed

    def delete_runs_of(self, experiment_id: str, parent_run_id: str, folder: str) -> None:
        """Delete the runs under `parent_run_id` made for `folder`: a sweep's job started again
        there replaces an attempt that never reached its first step."""
        parent = tag_is("mlflow.parentRunId", parent_run_id)
        mine = f"{tag_is('rnnexp.output_dir', folder)} and {parent}"
        with self.errors():
            for r in self.client.search_runs([experiment_id], mine):
                self.client.delete_run(r.info.run_id)
