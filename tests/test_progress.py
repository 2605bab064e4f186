"""What a person watching a run sees when stderr is no terminal (a log file, CI, nohup): a
progress line every PROGRESS_EVERY seconds, each sample as it is made, and the samples in the
run's folder, tracked or not. The run's loop, in-process, untracked."""

import logging

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rnnexp.framework import loop
from rnnexp.framework.cli import register_configs
from rnnexp.framework.run import Job, Run
from rnnexp.resources import CONF_DIR


def test_progress_lines_and_samples_without_a_terminal(tmp_path, monkeypatch, caplog):
    register_configs()
    overrides = ["corpus=elman", "train.steps=40", "train.batch_size=4", "train.seq_length=16",
                 "train.log_every=10", "train.eval_every=20", "train.sample_every=20",
                 "train.sample_length=30"]  # fmt: skip
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        s = OmegaConf.to_object(compose("config", overrides=overrides))
    run = Run(s, Job(output_dir=tmp_path, launch_dir=tmp_path))  # untracked: a NullRun
    monkeypatch.setattr(loop, "PROGRESS_EVERY", 0.0)  # a line at every log_every
    with caplog.at_level(logging.INFO, logger="rnnexp"):
        loop.train(run)
    lines = caplog.messages
    progress = [m for m in lines if "nats/char" in m and "chars/s" in m and "left" in m]
    assert [m.split()[1] for m in progress] == ["10/40", "20/40", "30/40"]  # not the last
    assert any(m.startswith("sample at step 20:\n    ") for m in lines)
    assert "step 20/40  val" in "\n".join(lines) and "over the whole validation split" in lines[-2]
    written = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert written == ["step_0000020.txt", "step_0000040.txt"]
    assert (tmp_path / "samples" / "step_0000040.txt").read_text() == run.state.sample
    assert len(run.state.sample) == 31  # the start character and 30 more


def _run(tmp_path, *overrides):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        s = OmegaConf.to_object(compose("config", overrides=["corpus=elman", *overrides]))
    return Run(s, Job(output_dir=tmp_path, launch_dir=tmp_path))  # untracked: a NullRun


def test_every_run_has_ten_validation_points_by_default(tmp_path):
    run = _run(tmp_path, "train.steps=50", "train.batch_size=4", "train.seq_length=16")
    loop.train(run)
    assert [step for step, _ in run.state.val] == list(range(5, 51, 5))
    (tmp_path / "b").mkdir()  # a run's folder exists before it runs
    run = _run(tmp_path / "b", "train.steps=50", "train.batch_size=4", "train.seq_length=16",
               "train.eval_every=20")  # fmt: skip
    loop.train(run)
    assert [step for step, _ in run.state.val] == [20, 40, 50]  # given: it wins


def test_the_time_left_leaves_out_the_first_steps_compile(tmp_path, monkeypatch, caplog):
    import time

    run = _run(tmp_path, "train.steps=40", "train.batch_size=4", "train.seq_length=16",
               "train.log_every=10")  # fmt: skip
    step, calls = run.b.trainer.train_step, []

    def first_slow():  # as a first run compiles its kernels in its first step
        calls.append(1)
        if len(calls) == 1:
            time.sleep(4.0)
        return step()

    monkeypatch.setattr(run.b.trainer, "train_step", first_slow)
    monkeypatch.setattr(loop, "PROGRESS_EVERY", 0.0)
    with caplog.at_level(logging.INFO, logger="rnnexp"):
        loop.train(run)
    (first, *_) = [m for m in caplog.messages if m.startswith("step 10/40") and "left" in m]
    left = int(first.split("about ")[1].split(" s left")[0])
    assert left < 3, first  # with the first step's 4 s counted: >= 4 s / 10 steps x 30 = 12 s


def test_the_loop_leaves_the_garbage_collector_as_it_found_it(tmp_path):
    # the loop hides start-up's objects from the collector (gc.freeze); a sweep runs its jobs
    # one after another in one process, so garbage frozen with them would pile up job by job
    import gc
    import weakref

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        s = OmegaConf.to_object(compose("config", overrides=["corpus=elman", "train.steps=3"]))
    run = Run(s, Job(output_dir=tmp_path, launch_dir=tmp_path))

    class Garbage:
        pass

    cycle = Garbage()
    cycle.me = cycle  # only the collector frees a cycle
    ref = weakref.ref(cycle)
    del cycle
    frozen = gc.get_freeze_count()
    loop.train(run)
    gc.collect()
    assert ref() is None  # collected, not frozen with the rest
    assert gc.get_freeze_count() == frozen
