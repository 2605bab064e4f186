"""Hydra composition for real: every option of every group, every experiment preset, and a
one-line error for every kind of mistake on the command line."""

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import TINY, env, refusal, rnnexp, run_here
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rnnexp.framework.build import validate
from rnnexp.framework.checks import job_settings
from rnnexp.framework.cli import register_configs
from rnnexp.framework.settings import Settings
from rnnexp.framework.tracking import flatten
from rnnexp.resources import CONF_DIR, EXPERIMENTS_DIR

register_configs()
GROUP_OPTIONS = {
    group: sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
    for group in ("model", "corpus", "optimizer", "schedule")
}
EXPERIMENTS = sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml"))


def settings(*overrides: str) -> Settings:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return OmegaConf.to_object(compose("config", overrides=list(overrides)))


def test_the_groups_hold_what_the_docs_promise():
    assert GROUP_OPTIONS == {
        "model": ["gru", "lstm", "rnn", "srn", "stacked2"],
        "corpus": [
            "alice",
            "elman",
            "file",
            "fizzbuzz",
            "kafka",
            "python",
            "sevenths",
            "shakespeare",
        ],
        "optimizer": ["adagrad", "adam", "rmsprop", "sgd"],
        "schedule": ["constant", "cosine", "epoch_decay"],
    }
    s = settings()  # the first run: a GRU that learns tiny shakespeare in about a minute
    assert (s.model.name, s.corpus.name, s.optimizer.name) == ("gru", "shakespeare", "adam")
    assert (s.schedule.name, s.model.dtype, s.optimizer.lr) == ("cosine", "float32", 0.005)
    assert (s.train.batch_size, s.train.seq_length, s.train.steps) == (32, 64, 2000)


def test_a_model_and_optimizer_pair_takes_its_tuned_rate():
    # conf/tuning/MODEL_OPTIMIZER.yaml where it exists, the optimizer's own rate elsewhere;
    # the command line and presets still win
    assert settings("model=stacked2", "optimizer=adagrad").optimizer.lr == 0.005
    assert settings("model=rnn", "optimizer=adagrad").optimizer.lr == 0.03
    assert settings("model=lstm", "optimizer=sgd").optimizer.lr == 0.04
    assert settings("model=lstm", "optimizer=sgd", "optimizer.lr=0.2").optimizer.lr == 0.2
    assert settings("experiment=stacked2_kafka").optimizer.lr == 0.01
    tuned = sorted(p.stem for p in (CONF_DIR / "tuning").glob("*.yaml"))
    for name in tuned:  # each names a real model and optimizer, and sets only the rate
        model, optimizer = name.split("_")
        assert model in GROUP_OPTIONS["model"] and optimizer in GROUP_OPTIONS["optimizer"]
        assert OmegaConf.load(CONF_DIR / "tuning" / f"{name}.yaml") == {
            "optimizer": {"lr": settings(f"model={model}", f"optimizer={optimizer}").optimizer.lr}
        }


@pytest.mark.parametrize(
    "group, option", [(g, o) for g, options in GROUP_OPTIONS.items() for o in options]
)
def test_every_group_option_composes_and_validates(group, option, tmp_path):
    extra = []
    if (group, option) == ("corpus", "file"):
        (tmp_path / "t.txt").write_text("hello world\n" * 20)
        extra = [f"corpus.path={tmp_path / 't.txt'}"]
    s = settings(f"{group}={option}", *extra)
    assert isinstance(s, Settings)
    assert getattr(s, group).name == option
    validate(s)


EXPECTED = {  # the notebooks' settings each preset must carry
    "stacked2_kafka": dict(model="stacked2", corpus="kafka", opt="adagrad", H=256, T=50, lr=0.01),
    "min_char_rnn": dict(model="rnn", corpus="shakespeare", opt="adagrad", H=100, T=25, lr=0.1),
    "elman_srn_shakespeare": dict(model="srn", corpus="shakespeare", opt="sgd", H=128, T=1, lr=0.1),
    "elman_srn_letters": dict(model="srn", corpus="elman", opt="sgd", H=128, T=1, lr=0.1),
    "sigmoid_bptt": dict(model="srn", corpus="shakespeare", opt="adagrad", H=128, T=15, lr=0.1),
    "basic_rnn_sevenths": dict(model="rnn", corpus="sevenths", opt="adagrad", H=128, T=64, lr=0.1),
    "basic_rnn_fizzbuzz": dict(model="rnn", corpus="fizzbuzz", opt="adagrad", H=128, T=64, lr=0.1),
    "basic_rnn_alice": dict(model="rnn", corpus="alice", opt="adagrad", H=512, T=256, lr=0.1),
    "shakespeare_200s": dict(model="gru", corpus="shakespeare", opt="adam", H=320, T=64, lr=0.0164),
    # a sweep: its model and width are the jobs' (model=, model.params), these the defaults
    "karpathy2015": dict(model="lstm", corpus="shakespeare", opt="rmsprop", H=128, T=50, lr=0.002),
}
OWN = ("shakespeare_200s", "karpathy2015")  # the presets that answer no notebook's question


def test_every_preset_is_tested():
    assert EXPERIMENTS == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_experiment_preset_composes(name):
    s = settings(f"experiment={name}")
    e = EXPECTED[name]
    assert (s.model.name, s.corpus.name, s.optimizer.name) == (e["model"], e["corpus"], e["opt"])
    assert (s.model.hidden_size, s.train.seq_length, s.optimizer.lr) == (e["H"], e["T"], e["lr"])
    validate(s)
    if name not in OWN:  # the notebooks' loop: one stream, float64, a fixed rate
        loop = (s.train.batch_size, s.model.dtype, s.schedule.name, s.train.eval_chars)
        assert loop == (1, "float64", "constant", None)  # and the whole split at every eval
    text = (EXPERIMENTS_DIR / f"{name}.yaml").read_text().splitlines()
    assert text[0] == "# @package _global_"
    assert "?" in " ".join(text[1:4])  # its question
    if name not in OWN:
        assert text[1].startswith("# Notebook 00")
    assert f" experiment={name}" in "\n".join(text[:8])  # and its command


def test_presets_carry_their_special_settings():
    s = settings("experiment=sigmoid_bptt")
    assert (s.model.activation, s.model.bptt, s.train.clip) == ("sigmoid", True, 1.0)
    assert settings("experiment=elman_srn_shakespeare").corpus.max_chars == 100_000
    assert settings("experiment=stacked2_kafka").model.layers == 2
    # command-line overrides still win over a preset
    assert settings("experiment=min_char_rnn", "train.steps=7").train.steps == 7


def test_params_are_the_flattened_config():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["corpus=elman"])
    flat = flatten(OmegaConf.to_container(cfg, resolve=True))
    assert flat["train.steps"] == "2000"
    assert flat["corpus.options.n_b"] == "3000"
    assert flat["tracking.uri"] == "null"
    assert len(flat) < 100  # MLflow takes at most 100 params per call
    # each choice's own keys alone: the GRU's and Adam's, cosine's
    model = {k.split(".")[1] for k in flat if k.startswith("model.")}
    assert "activation" not in model and "bptt" not in model and "hidden_size" in model
    assert {k for k in flat if k.startswith(("optimizer.", "schedule."))} == {
        "optimizer.name", "optimizer.lr", "optimizer.beta1", "optimizer.beta2", "optimizer.eps",
        "schedule.name", "schedule.warmup_steps", "schedule.min_lr_ratio",
    }  # fmt: skip
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["model=srn", "optimizer=sgd", "schedule=constant"])
    flat = flatten(OmegaConf.to_container(cfg, resolve=True))
    assert flat["model.bptt"] == "False" and "optimizer.eps" not in flat
    assert {k for k in flat if k.startswith(("optimizer.", "schedule."))} == {
        "optimizer.name",
        "optimizer.lr",
        "schedule.name",
    }


@pytest.mark.parametrize(
    "args, message",
    [
        (["model=rnm"], "unknown model 'rnm'; valid: gru, lstm, rnn, srn, stacked2"),
        (["corpus=kafak"], "unknown corpus 'kafak'; valid: alice, elman, file, fizzbuzz, kafka, "),
        (["optimizer=adamw"], "unknown optimizer 'adamw'; valid: adagrad, adam, rmsprop, sgd"),
        (["experiment=nope"], "unknown experiment 'nope'; valid: basic_rnn_alice, "),
        (
            ["train.stepz=5"],
            "unknown key 'train.stepz'; valid keys of train: batch_size, checkpoint_every, clip, ",
        ),
        (
            ["+train.stepz=5"],
            "unknown key 'train.stepz'; valid keys of train: batch_size, checkpoint_every, clip, ",
        ),
        (["+trian=5"], "unknown key 'trian'; valid keys at the top level: corpus, experiment, "),
        (
            ["trian.steps=5"],
            "unknown key 'trian'; valid keys at the top level: corpus, experiment, ",
        ),
        (
            ["corpus=sevenths", "corpus.options.lenght=9"],
            "unknown key 'corpus.options.lenght'; valid keys of corpus.options: length",
        ),
        (["train.steps=abc"], "train.steps=abc is not a whole number"),
        (["optimizer.lr=fast"], "optimizer.lr=fast is not a number"),
        (["model=rnn", "model.bptt=maybe"], "model.bptt=maybe is not true or false"),
        # a choice's keys are its own: the GRU has no activation, adagrad no beta1
        (["model.activation=tanh"], "unknown key 'model.activation'; valid keys of model: cell,"),
        (["optimizer=adagrad", "optimizer.beta1=0.9"], "unknown key 'optimizer.beta1'; valid keys"),
        (["schedule=constant", "+schedule.warmup_steps=9"], "unknown key 'schedule.warmup_steps"),
        (["train.clip=big"], "train.clip=big is not a number or null"),
        (["optimizer.lr=-0.1"], "optimizer.lr must be a positive number, got -0.1"),
        (["model.hidden_size=0"], "model.hidden_size must be a whole number >= 1, got 0"),
        (["model.init_scale=1e39"], "model.init_scale=1e+39 overflows float32 (largest 3.4e+38)"),
        (["train.seq_length=0"], "train.seq_length must be a whole number >= 1, got 0"),
        # each value has one rule, where its setting is defined, that the code below shares
        (["corpus.val_fraction=0"], "corpus.val_fraction must be a number in (0, 1), got 0.0"),
        (["sample.temperature=-1"], "sample.temperature must be a number in [0, inf], got -1.0"),
        (["corpus.max_chars=0"], "corpus.max_chars must be a whole number >= 1, got 0"),
        (["threads=0"], "threads must be a whole number in [1, 1024] or null (automatic), got 0"),
        # sizes by arithmetic, before anything is allocated (each once grew to GBs or overflowed)
        (["threads=99999999999999999999"], "threads must be a whole number in [1, 1024]"),
        (["model.layers=99999999999999999999"], "model.hidden_size=128 with 99999999999999999999"),
        (
            ["train.batch_size=99999999999999999999"],
            "train.batch_size=99999999999999999999 x train.seq_length=64 for gru H128 x1 and 256 "
            "symbols: about ",
        ),
        (["train.seq_length=10000000000000"], "train.batch_size=32 x train.seq_length=1000000"),
        (["train.eval_streams=10000000000"], "train.eval_streams=10000000000 for gru H128"),
        (["inspect.length=100000000000"], "inspect.length=100000000000 for gru H128 x1"),
        (["train.sample_length=10000000000000"], "train.sample_length=10000000000000: about "),
        (
            ["corpus=sevenths", "corpus.options.length=10000000000000"],
            "sevenths length=10000000000000: about 149,011.6 GiB, more than this machine's",
        ),
        (["corpus=elman", "corpus.options.n_b=10000000000000"], "elman length=10000, n_b=1000"),
        (["corpus=fizzbuzz", "corpus.options.n=10000000000000"], "fizzbuzz n=10000000000000: "),
        (["tracking.uri='sqlite://rel.db'"], "tracking store sqlite://rel.db: a sqlite store is"),
        (["tracking.uri='sqlite://'"], "tracking store sqlite://: a sqlite store is a file, "),
        (["tracking.uri='sqlite:////proc/x.db'"], "cannot create the tracking store /proc/x.db: "),
        (["tracking.uri=abc"], "tracking store abc is not a store URI rnnexp can use: give sqlite"),
        (["tracking.experiment=''"], "tracking.experiment must be a name, got ''"),
        (["train.diverge_factor=0.5"], "train.diverge_factor must be > 1 or null, got 0.5"),
        (["train.eval_streams=0"], "train.eval_streams must be a whole number >= 1, got 0"),
        (["model=srn", "model.activation=relu"], "unknown model.activation 'relu'; valid: tanh,"),
        (["corpus=file"], "corpus.path must be set (corpus=file corpus.path=/path/to/text.txt)"),
        (["corpus=file", "corpus.path=/no/such.txt"], "corpus file not found: /no/such.txt"),
        (["corpus=fizzbuzz", "corpus.options.n=0"], "fizzbuzz n must be a whole number >= 1"),
        (["model=srn,rnn"], "model=srn,rnn is a sweep: add -m (--multirun)"),
        (["-m", "model=srn,rnm"], "unknown model 'rnm'; valid: gru, lstm, rnn, srn, stacked2"),
        (["-m", "train.steps=10,abc"], "train.steps=abc is not a whole number"),
        (["hydra/launcher=nope"], "unknown hydra/launcher 'nope'; valid: basic, joblib"),
        (["search=grid"], "unknown search 'grid'; valid: optuna"),
        (
            ["-m", "tracking.uri=sqlite:///a.db,sqlite:///b.db"],
            "a sweep lives in one store: give tracking.uri one value",
        ),
        (
            ["search=optuna", "hydra.sweeper.params.seed=range(3)"],
            "hydra.sweeper.params.seed=range(3): Hydra cannot sweep its own keys; give a search "
            "space on the key itself (seed=...)",
        ),
        # each password of a swept URI stays unread: refused before any is moved out
        (["-m", "tracking.uri=http://u:pw1@h:9/,http://u:pw2@h:9/"], "a sweep lives in one "),
        (["tracking.uri='http://u:s@[::1'"], "tracking.uri is not a valid URI: Invalid IPv6 URL"),
        (["tracking.uri=http://h:port/"], "tracking.uri is not a valid URI: Port could not be "),
        (["tracking.uri=http://h:9/?password=x"], "tracking.uri http://h:9/?password=*** holds a "),
        (["tracking.uri='sqlite:////tmp'"], "tracking store /tmp is a folder: name a file in it"),
        (["resume="], "resume= is empty: name a run's folder or MLflow run id"),
        (["train.schedule_over=weeks"], "train.schedule_over is steps or seconds, got 'weeks'"),
        (["train.schedule_over=seconds"], "train.schedule_over=seconds runs the schedule over "),
        (["-m", "resume=a,b"], "resume= takes one folder or run id: -m resume=<sweep folder> "),
        # a run's config goes where resume= reads it, never into another run's folder
        (["hydra.output_subdir=../other/.hydra"], "hydra.output_subdir is rnnexp's: a run keeps"),
        (["-m", "hydra.sweep.subdir=x", "seed=1,2"], "hydra.sweep.subdir=x gives every job the "),
        (
            ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=0", "seed=1,2"],
            "hydra.launcher.n_jobs=0 runs no job: give how many run at once (-1: one per core)",
        ),
        (["-m", "hydra.sweep.dir=", "seed=1,2"], "hydra.sweep.dir is empty: name a new or empty "),
        (["-m", "model=glob(q*)"], "the sweep has no jobs: a glob(...) that matches nothing?"),
        (["-m", "--cfg", "job"], "--cfg and --multirun: give one of them"),
        (["-m", "model=glob(s*)", "model.hidden_size=0"], "model.hidden_size must be a whole "),
    ],
)
def test_command_line_mistakes_are_one_clear_line(args, message, tmp_path):
    # in this process: Hydra reads the command line, its callback checks each job, and the
    # command stops with one line, exit 2, nothing written
    line = refusal(*args, cwd=tmp_path)
    assert line.startswith(message), line


def test_good_command_lines_compose_into_settings():
    for args in (
        [],
        ["experiment=min_char_rnn", "train.steps=3"],
        ["train.clip=null", "corpus=elman", "corpus.options.seed=4"],
    ):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            assert isinstance(job_settings(compose("config", overrides=args)), Settings)


def test_a_sweep_over_text_files_checks_and_runs_each(tmp_path):
    """A swept key is not in the command's config (Hydra leaves it to the jobs): corpus=file
    without corpus.path there, each job has its own."""
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(f"{name} holds some text to learn from. " * 40)
    paths = f"corpus.path={tmp_path / 'a.txt'},{tmp_path / 'nope.txt'}"
    assert refusal("-m", "corpus=file", paths, cwd=tmp_path).endswith(
        f"corpus file not found: {tmp_path / 'nope.txt'}"
    )
    paths = f"corpus.path={tmp_path / 'a.txt'},{tmp_path / 'b.txt'}"
    r = run_here("-m", "corpus=file", paths, *TINY, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("FINISHED") == 2


def test_a_mistake_exits_2_with_one_line_and_nothing_written(tmp_path):
    r = rnnexp("model=rnm", "train.steps=5", fresh=True, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "rnnexp: error: unknown model 'rnm'; valid: gru, lstm, rnn, srn, stacked2"
    ]
    assert "Traceback" not in r.stderr + r.stdout
    assert not (tmp_path / "outputs").exists()  # no store, no run folder


def test_cfg_and_help_are_fast_and_do_not_import_mlflow(tmp_path):
    cmd = [sys.executable, "-X", "importtime", "-m", "rnnexp"]
    for extra in (["--cfg", "job", "experiment=stacked2_kafka"], ["--help"]):
        r = subprocess.run(cmd + extra, cwd=tmp_path, env=env(), capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        imported = {line.split("|")[-1].strip().split(".")[0] for line in r.stderr.splitlines()}
        assert "mlflow" not in imported and "matplotlib" not in imported
    assert (
        "hidden_size: 256"
        in rnnexp("--cfg", "job", "experiment=stacked2_kafka", cwd=tmp_path).stdout
    )
    help_text = rnnexp("--help", cwd=tmp_path).stdout
    for line in (
        "model: gru, lstm, rnn, srn, stacked2",
        "optimizer: adagrad, adam, rmsprop, sgd",
        "schedule: constant, cosine, epoch_decay",
        "corpus: alice, elman, file, fizzbuzz, kafka, python, sevenths, shakespeare",
        "experiment: basic_rnn_alice, basic_rnn_fizzbuzz",
    ):
        assert line in help_text


def test_experiments_are_found_from_any_directory(tmp_path):
    elsewhere = tmp_path / "some" / "where"
    elsewhere.mkdir(parents=True)
    r = rnnexp("--cfg", "job", "experiment=basic_rnn_alice", fresh=True, cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    assert "hidden_size: 512" in r.stdout and "seq_length: 256" in r.stdout
    assert Path(elsewhere).exists() and not (elsewhere / "outputs").exists()


def test_a_users_config_folder_is_checked_like_ours(tmp_path):
    mine = tmp_path / "my_conf"
    for group in ("model", "experiment"):
        (mine / group).mkdir(parents=True)
    (mine / "model" / "tiny.yaml").write_text("name: tiny\ncell: gru\nhidden_size: 8\n")
    (mine / "model" / "broken.yaml").write_text("name: broken\nlayers: [1, 2\n")
    (mine / "model" / "typo.yaml").write_text("name: typo\nhiden: 3\n")
    (mine / "experiment" / "nohead.yaml").write_text("train:\n  steps: 5\n")
    r = rnnexp("--config-dir", str(mine), "model=tiny", "--cfg", "job", cwd=tmp_path)
    assert "name: tiny" in r.stdout and "hidden_size: 8" in r.stdout, r.stderr
    for args, message in [
        (["model=broken"], f"cannot read {mine}/model/broken.yaml (line 3): while parsing a"),
        (["model=typo"], "In 'model/typo': unknown key 'model.hiden'; valid keys of model: "),
        (["experiment=nohead"], "In 'experiment/nohead': unknown key 'experiment' (an "
                                "experiment file starts with # @package _global_)"),
    ]:  # fmt: skip
        line = refusal("--config-dir", str(mine), *args, cwd=tmp_path)
        assert line.startswith(message), line
    (mine / "model" / "gru.yaml").write_text("name: gru\nhidden_size: 7\n")  # ours is read first
    line = refusal("--config-dir", str(mine), cwd=tmp_path)
    assert "rnnexp has a model of that name, which Hydra reads" in line
    for folder, what in [(tmp_path / "nope", "no such folder"),
                         (mine / "model/tiny.yaml", "is not a folder")]:  # fmt: skip
        line = refusal("--config-dir", str(folder), cwd=tmp_path)
        assert line == f"--config-dir {folder}: {what}", line


def test_help_into_a_pipe_that_closes_early_is_no_error(tmp_path):
    r = subprocess.run(f"{sys.executable} -m rnnexp --help | head -1", shell=True, cwd=tmp_path,
                       env=env(), capture_output=True, text=True)  # fmt: skip
    assert r.stdout.startswith("rnnexp: train") and r.stderr == ""


def test_an_options_name_is_what_chose_it_not_a_key_to_change():
    # the name of a group's option is set after its node is made: an sgd named adam would
    # train sgd, be filed as adam and never resume (its saved config reads back as an Adam)
    from rnnexp.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^optimizer.name=adam in a SGD: choose the optimizer "
                       r"with optimizer=adam$"):  # fmt: skip
        settings("optimizer=sgd", "optimizer.name=adam")
    with pytest.raises(ConfigError, match=r"^schedule.name=constant in a Cosine: "):
        settings("schedule=cosine", "schedule.name=constant")
    assert settings("optimizer=sgd", "optimizer.name=sgd").optimizer.name == "sgd"
