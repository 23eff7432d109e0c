"""
rl-zoo3 integration: registration, the shipped hyperparameter files, train/enjoy/record_video/plots through the entry
points, Optuna with a shared storage, and the packaging of the hyperparameters in a wheel.

The command-line runs happen in subprocesses (each run parses its own sys.argv and sets torch's thread count, which
would leak between tests in one process) with tiny settings on Pendulum-v1.
"""

from __future__ import annotations

import argparse
import ast
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import optuna
import pytest
import yaml

import sb3_poplin.zoo.hyperparams_opt as zoo_hpo
from sb3_poplin import POPLIN_A, POPLIN_P
from sb3_poplin.envs import FIXED_SWIMMER_ID, PETS_HALF_CHEETAH_ID
from sb3_poplin.rewards import known_env_ids, resolve_callable
from sb3_poplin.zoo import ZOO_ALGOS, hyperparams_file, plots, register
from sb3_poplin.zoo.algorithms import CONFIG_SETS

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_ID = "Pendulum-v1"
#: a planner small enough that a few hundred steps take seconds
TINY = [
    "population_size:50",
    "n_elites:5",
    "horizon:5",
    "cem_iterations:2",
    "learning_starts:100",
    "n_timesteps:300",
    "ensemble_size:2",
    "dynamics_net_arch:[32,32]",
    "buffer_size:1000",
    "dynamics_min_updates:0",  # no extra gradient steps past the epochs: the tests check the scripts, not the model
]
#: evaluate twice during the 300 steps, two episodes each (all_plots cannot average a single run of one episode)
EVAL = ["--eval-freq", "150", "--eval-episodes", "2", "--num-threads", "1", "--seed", "3"]
#: episodes of 50 steps, not Pendulum's 200: the runs' evaluations and enjoy plan a quarter as many steps (saved in the
#: run's args.yml, which enjoy reads)
EPISODE = 50
SHORT_EPISODES = ["--env-kwargs", f"max_episode_steps:{EPISODE}"]
#: rl-zoo3's keys that are not constructor arguments
ZOO_KEYS = {"n_timesteps", "n_envs", "normalize", "env_wrapper", "vec_env_wrapper", "frame_stack", "callback", "env_kwargs"}


def run_python(args: list[str], cwd: Path, timeout: float = 900, pythonpath: str | None = None) -> str:
    """Run ``python <args>`` in ``cwd`` and return its output; fail the test with the output's tail if it fails.

    The timeout only catches a hang: on a 2-core machine shared with other work, a tiny 300-step run took over 2 min.
    """
    # One torch thread: the tiny batched ops of these runs are several times slower with more (thread overhead).
    env = {**os.environ, "PYTHONPATH": pythonpath or str(REPO_ROOT), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        pytest.fail(f"python {' '.join(args)} exited with {proc.returncode}:\n{output[-4000:]}")
    return output


def zoo(command: str, args: list[str], cwd: Path, timeout: float = 900) -> str:
    """Run ``python -m sb3_poplin.zoo.<command> <args>``."""
    return run_python(["-m", f"sb3_poplin.zoo.{command}", *args], cwd, timeout)


# ---------------------------------------------------------------- registration


def test_register_is_idempotent_and_keeps_rl_zoo_algos() -> None:
    import rl_zoo3.train
    from rl_zoo3 import hyperparams_opt
    from rl_zoo3.utils import ALGOS
    from stable_baselines3 import PPO, SAC, TD3

    from sb3_poplin.zoo.exp_manager import PoplinExperimentManager

    register()
    n_algos = len(ALGOS)
    register()
    assert len(ALGOS) == n_algos
    assert ALGOS["poplin_a"] is POPLIN_A and ALGOS["poplin_p"] is POPLIN_P
    assert ALGOS["sac"] is SAC and ALGOS["td3"] is TD3 and ALGOS["ppo"] is PPO
    for name in ("poplin_a", "poplin_p"):
        assert hyperparams_opt.HYPERPARAMS_SAMPLER[name] is zoo_hpo.SAMPLERS[name]
        assert hyperparams_opt.HYPERPARAMS_CONVERTER[name] is zoo_hpo.CONVERTERS[name]
    assert rl_zoo3.train.ExperimentManager is PoplinExperimentManager
    assert PETS_HALF_CHEETAH_ID in gym.registry and FIXED_SWIMMER_ID in gym.registry


def test_register_refuses_to_replace_another_algorithm() -> None:
    from rl_zoo3.utils import ALGOS
    from stable_baselines3 import SAC

    register()
    ALGOS["poplin_p"] = SAC
    try:
        with pytest.raises(ValueError, match="poplin_p"):
            register()
    finally:
        ALGOS["poplin_p"] = POPLIN_P


#: the modules of sb3_poplin.zoo, by dotted name
ZOO_MODULES = sorted(
    f"sb3_poplin.zoo.{path.stem}" for path in (REPO_ROOT / "sb3_poplin" / "zoo").glob("*.py") if path.stem != "__init__"
)


def zoo_imports(module: str) -> set[str]:
    """The modules of sb3_poplin.zoo that ``module``'s source imports, at the top or inside functions."""
    tree = ast.parse((REPO_ROOT / Path(*module.split("."))).with_suffix(".py").read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            # ``from sb3_poplin.zoo import hyperparams_opt`` imports a submodule; ``from sb3_poplin.zoo.x import y`` x
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        imported.update(name for name in names if name in ZOO_MODULES)
    return imported - {module}


def test_zoo_modules_import_each_other_one_way() -> None:
    graph = {module: zoo_imports(module) for module in ZOO_MODULES}
    assert "sb3_poplin.zoo.exp_manager" in graph["sb3_poplin.zoo.registry"], "the parser misses imports inside functions"
    # Kahn's algorithm: repeatedly drop the modules that import nothing left; a cycle is what cannot be dropped.
    remaining = dict(graph)
    while True:
        leaves = {module for module, imports in remaining.items() if not imports & set(remaining)}
        if not leaves:
            break
        remaining = {module: imports for module, imports in remaining.items() if module not in leaves}
    assert remaining == {}, f"a cycle among (or below) these zoo modules: {remaining}"


#: imports each module named on the command line with no module of sb3_poplin loaded before it (the third-party ones,
#: outside any cycle of ours, stay loaded: one interpreter instead of one per module)
IMPORT_EACH_ALONE = """
import importlib, sys
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "sb3_poplin" or m.startswith("sb3_poplin.")]:
        del sys.modules[loaded]
    importlib.import_module(name)
    print("imported", name)
"""


def test_every_zoo_module_imports_alone() -> None:
    modules = [m for m in ZOO_MODULES if not m.endswith("__main__")]  # running __main__ is the CLI (the CLI tests)
    output = run_python(["-c", IMPORT_EACH_ALONE, *modules], REPO_ROOT, timeout=300)
    assert [line for line in output.splitlines() if line.startswith("imported ")] == [f"imported {m}" for m in modules]


def test_cli_parses_with_poplin_choices(capsys: pytest.CaptureFixture[str]) -> None:
    from sb3_poplin.zoo import cli

    argv = sys.argv
    try:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["train", "--help"])
        assert exit_info.value.code == 0
        help_text = capsys.readouterr().out
        for name in ("poplin_a", "poplin_p", "sac", "td3", "ppo"):
            assert name in help_text
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["fly"])
        assert "unknown script 'fly'" in str(exit_info.value.code)
    finally:
        sys.argv = argv


# ---------------------------------------------------------------- hyperparameter files


def experiment_manager(algo: str, env_id: str, log_folder: Path, **kwargs: Any) -> Any:
    """The experiment manager that ``python -m sb3_poplin.zoo.train`` builds, without evaluation callbacks."""
    register()
    from sb3_poplin.zoo.exp_manager import PoplinExperimentManager

    return PoplinExperimentManager(argparse.Namespace(), algo, env_id, str(log_folder), eval_freq=-1, verbose=0, **kwargs)


def test_default_config_is_the_packaged_file(tmp_path: Path) -> None:
    import rl_zoo3

    for algo in ZOO_ALGOS:
        manager = experiment_manager(algo, ENV_ID, tmp_path)
        assert manager.config == str(hyperparams_file(algo))
        assert Path(manager.config).is_file()
    # rl-zoo3's algorithms keep rl-zoo3's files, and an explicit --conf-file wins
    assert Path(experiment_manager("sac", ENV_ID, tmp_path).config).parent == Path(rl_zoo3.__file__).parent / "hyperparams"
    assert experiment_manager("poplin_p", ENV_ID, tmp_path, config="mine.yml").config == "mine.yml"
    # A shipped set by name: --conf-file cpu
    for algo in ZOO_ALGOS:
        assert experiment_manager(algo, "HalfCheetah-v5", tmp_path, config="cpu").config == str(hyperparams_file(algo, "cpu"))


def test_env_kwargs_of_an_entry_reach_the_evaluation_env(tmp_path: Path) -> None:
    # An entry that observes x (exact reward): training and evaluation envs must have the same observation space.
    entry = dict(n_timesteps=100, policy="MlpPolicy", population_size=8, n_elites=2, horizon=2, cem_iterations=1)
    entry.update(ensemble_size=2, dynamics_net_arch=[8], env_kwargs={"exclude_current_positions_from_observation": False})
    config = tmp_path / "exact.yml"
    config.write_text(yaml.safe_dump({"HalfCheetah-v5": entry}))
    manager = experiment_manager("poplin_p", "HalfCheetah-v5", tmp_path, config=str(config))
    model, _ = manager.setup_experiment()
    eval_env = manager.create_envs(1, eval_env=True)
    try:
        assert model.observation_space.shape == eval_env.observation_space.shape == (18,)
        assert model.dynamics.ignored_inputs == (0,)  # x is observed for the reward, not read by the model
    finally:
        model.env.close()
        eval_env.close()
    # --eval-env-kwargs still wins.
    noise = {"reset_noise_scale": 0.2}
    other = experiment_manager("poplin_p", "HalfCheetah-v5", tmp_path, config=str(config), eval_env_kwargs=noise)
    other.setup_experiment()[0].env.close()
    assert other.eval_env_kwargs == noise


#: the CPU set's entries: (algo, env id)
CPU_ENTRIES = [
    (algo, env_id) for algo in sorted(ZOO_ALGOS) for env_id in yaml.safe_load(hyperparams_file(algo, "cpu").read_text())
]


def test_cpu_set_covers_the_study_envs() -> None:
    for algo in ZOO_ALGOS:
        entries = yaml.safe_load(hyperparams_file(algo, "cpu").read_text())
        assert {"HalfCheetah-v5", "Hopper-v5"} <= set(entries), algo
        for env_id, entry in entries.items():
            assert yaml.safe_load(yaml.safe_dump(entry)) == entry, (algo, env_id)
            assert entry["buffer_size"] >= entry["n_timesteps"], (algo, env_id)


@pytest.mark.parametrize(("algo", "env_id"), CPU_ENTRIES)
def test_every_cpu_entry_builds_the_algorithm(algo: str, env_id: str, tmp_path: Path) -> None:
    manager = experiment_manager(algo, env_id, tmp_path, config="cpu")
    model, saved = manager.setup_experiment()
    try:
        assert type(model) is ZOO_ALGOS[algo]
        assert model.population_size == saved["population_size"] and model.horizon == saved["horizon"]
    finally:
        model.env.close()


@pytest.mark.parametrize("algo", sorted(ZOO_ALGOS))
def test_every_known_env_has_a_plain_yaml_entry(algo: str) -> None:
    entries = yaml.safe_load(hyperparams_file(algo).read_text())
    assert set(entries) == set(known_env_ids())
    for env_id, entry in entries.items():
        # plain YAML: survives a safe dump/load round trip unchanged, and nothing rl-zoo3 would eval() as Python
        assert yaml.safe_load(yaml.safe_dump(entry)) == entry, env_id
        assert not isinstance(entry.get("policy_kwargs", {}), str), env_id
        assert entry["buffer_size"] >= entry["n_timesteps"], f"{env_id}: the ensemble trains on all the data"


@pytest.mark.parametrize("env_id", known_env_ids())
@pytest.mark.parametrize("algo", sorted(ZOO_ALGOS))
def test_every_entry_builds_the_algorithm(algo: str, env_id: str, tmp_path: Path) -> None:
    manager = experiment_manager(algo, env_id, tmp_path)
    model, saved = manager.setup_experiment()
    try:
        assert type(model) is ZOO_ALGOS[algo]
        for key, value in saved.items():
            if key in ZOO_KEYS or key == "policy":
                continue
            if key == "policy_kwargs":
                assert model.policy.net_arch == value["net_arch"]
            elif key == "dynamics_net_arch":
                assert model.dynamics_net_arch == value
            elif key == "distillation":
                assert model.distillation == value
            elif key == "reward_fn":
                assert model.reward_fn_spec == value
                assert model.model_rollout.reward_fn is resolve_callable(value)
            else:
                assert getattr(model, key) == value, key
        assert model.task_env_id == env_id
    finally:
        model.env.close()


# ---------------------------------------------------------------- train / enjoy / record_video / plots


@pytest.fixture(scope="module")
def zoo_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One log folder with tiny POPLIN-A (VecNormalize, policy evaluation), POPLIN-P (MPC) and SAC runs."""
    workdir = tmp_path_factory.mktemp("zoo")
    logs = workdir / "logs"
    common = ["--env", ENV_ID, "-f", str(logs), *EVAL, *SHORT_EPISODES]
    zoo("train", ["--algo", "poplin_a", *common, "-params", *TINY, "normalize:True", "predict_with:'policy'"], workdir)
    zoo("train", ["--algo", "poplin_p", *common, "--save-replay-buffer", "-params", *TINY], workdir)
    zoo("train", ["--algo", "pets", *common, "-params", *TINY], workdir)
    zoo("train", ["--algo", "rs", *common, "-params", *TINY], workdir)
    zoo("train", ["--algo", "sac", *common, "-params", "learning_starts:100", "n_timesteps:300"], workdir)
    return logs


@pytest.mark.parametrize("algo", sorted(ZOO_ALGOS))
def test_train_writes_the_run_folder(zoo_logs: Path, algo: str) -> None:
    run = zoo_logs / algo / f"{ENV_ID}_1"
    assert (run / f"{ENV_ID}.zip").is_file()
    config = yaml.unsafe_load((run / ENV_ID / "config.yml").read_text())
    assert config["population_size"] == 50 and config["horizon"] == 5
    # A value that only the packaged entry sets (the command line overrides the rest).
    packaged = {"poplin_a": ("init_sigma", 0.5), "poplin_p": ("init_sigma", 0.03), "pets": ("init_sigma", 0.5)}
    key, value = packaged.get(algo, ("dynamics_batch_size", 64))
    assert config[key] == value, "the packaged entry was not read"
    evaluations = np.load(run / "evaluations.npz")
    assert list(evaluations["timesteps"]) == [150, 300]
    assert evaluations["results"].shape == (2, 2) and np.all(np.isfinite(evaluations["results"]))
    model = ZOO_ALGOS[algo].load(run / f"{ENV_ID}.zip", env=gym.make(ENV_ID))
    if algo == "poplin_a":
        assert model.predict_with == "policy"
    else:  # POPLIN-P keeps its default; PETS and RS have no policy to act with
        assert getattr(model, "predict_with", None) == ("mpc" if algo == "poplin_p" else None)
    if algo == "poplin_a":
        assert (run / ENV_ID / "vecnormalize.pkl").is_file()
    elif algo == "poplin_p":
        assert (run / "replay_buffer.pkl").is_file()


@pytest.mark.parametrize("algo", sorted(ZOO_ALGOS))
def test_enjoy_runs_the_saved_agent(zoo_logs: Path, algo: str) -> None:
    args = ["--algo", algo, "--env", ENV_ID, "-f", str(zoo_logs), "--no-render", "-n", str(EPISODE + 10), "--num-threads", "1"]
    output = zoo("enjoy", args, zoo_logs)
    assert f"Loading {zoo_logs / algo / f'{ENV_ID}_1' / f'{ENV_ID}.zip'}" in output
    assert "1 Episodes" in output and "Mean reward:" in output


def test_enjoy_loading_uses_the_scripts_env_and_a_dummy_buffer(zoo_logs: Path) -> None:
    """What enjoy's ``ALGOS[algo].load(path, custom_objects=..., device=..., seed=...)`` gives inside the entry point."""
    register()
    import rl_zoo3.enjoy
    from rl_zoo3.utils import ALGOS, get_saved_hyperparams

    from sb3_poplin.zoo._loading import inference_loading

    run = zoo_logs / "poplin_a" / f"{ENV_ID}_1"
    hyperparams, stats_path = get_saved_hyperparams(str(run / ENV_ID), test_mode=True)
    custom_objects = {"learning_rate": 0.0, "lr_schedule": lambda _: 0.0, "clip_range": lambda _: 0.0}
    with inference_loading(rl_zoo3.enjoy):
        env = rl_zoo3.enjoy.create_test_env(ENV_ID, n_envs=1, stats_path=stats_path, seed=0, hyperparams=hyperparams)
        model = ALGOS["poplin_a"].load(str(run / f"{ENV_ID}.zip"), custom_objects=custom_objects, device="cpu", seed=0)
    try:
        assert ALGOS["poplin_a"] is POPLIN_A, "ALGOS was not restored"
        assert type(model) is POPLIN_A
        assert model.replay_buffer.buffer_size == 1
        assert model.get_vec_normalize_env() is env
        # the distilled policy sees raw observations although the env hands out normalised ones
        obs = env.reset()
        action, _ = model.predict(obs)
        expected, _ = model.policy.predict(env.unnormalize_obs(obs))
        np.testing.assert_allclose(action, expected, rtol=1e-6)
    finally:
        env.close()


def test_record_video_writes_a_video(zoo_logs: Path, tmp_path: Path) -> None:
    args = ["--algo", "poplin_p", "--env", ENV_ID, "-f", str(zoo_logs), "-n", "20", "-o", str(tmp_path)]
    output = zoo("record_video", [*args, "--num-threads", "1"], tmp_path)
    assert list(tmp_path.glob("*.mp4")), output


def test_record_training_joins_the_videos_of_a_run(zoo_logs: Path, tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    args = ["--algo", "pets", "--env", ENV_ID, "-f", str(zoo_logs), "-n", "10", "-o", str(videos), "--num-threads", "1"]
    output = zoo("record_training", args, tmp_path)
    # the final and the best model, each recorded by sb3-poplin's record_video, then labelled and joined by ffmpeg
    assert (videos / "training.mp4").is_file(), output
    assert {path.name.split("-step")[0] for path in videos.glob("*.mp4")} >= {"final-model-pets-Pendulum-v1", "training.mp4"}


def cli(args: list[str], cwd: Path) -> str:
    """``python -m sb3_poplin.zoo <args>`` without a display."""
    return run_python(["-m", "sb3_poplin.zoo", *args], cwd)


def test_all_plots_saves_figures_and_results_of_poplin_and_sac_runs(zoo_logs: Path, tmp_path: Path) -> None:
    out, figures = tmp_path / "results", tmp_path / "figures"
    args = ["all_plots", "-a", "poplin_a", "poplin_p", "sac", "-e", ENV_ID, "-f", str(zoo_logs), "--no-display"]
    cli([*args, "-o", str(out), "--figures", str(figures)], tmp_path)
    with open(f"{out}.pkl", "rb") as file:
        results = pickle.load(file)[ENV_ID]
    for algo in ("POPLIN_A", "POPLIN_P", "SAC"):
        curve = results[f"{algo}-{zoo_logs}"]
        assert list(curve["timesteps"]) == [150, 300] and np.all(np.isfinite(curve["mean"])), algo
    assert [path.name for path in figures.glob("*.png")] == [f"Results_{ENV_ID}.png"]
    # plot_from_file summarises seeds: with one run per algorithm it says what is missing
    proc = subprocess.run(
        [sys.executable, "-m", "sb3_poplin.zoo", "plot_from_file", "-i", str(out)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "MPLBACKEND": "Agg"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0 and "at least 2 runs" in proc.stderr


def test_all_plots_of_a_single_run_of_one_episode_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "logs" / "pets" / f"{ENV_ID}_1"
    run.mkdir(parents=True)
    episodes = np.array([[-1000.0], [-500.0]])  # two evaluations of one episode each
    np.savez(run / "evaluations.npz", timesteps=np.array([150, 300]), results=episodes, ep_lengths=np.full((2, 1), 150))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setattr(sys, "argv", ["all_plots", "-a", "pets", "-e", ENV_ID, "-f", "logs", "--no-display"])
    with pytest.raises(SystemExit, match="at least 2 episodes"):
        plots.all_plots()


def test_plot_from_file_draws_a_results_file_of_several_seeds(zoo_logs: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    shutil.copytree(zoo_logs / "sac", logs / "sac")
    shutil.copytree(zoo_logs / "poplin_p", logs / "poplin_p")
    shutil.copytree(logs / "sac" / f"{ENV_ID}_1", logs / "sac" / f"{ENV_ID}_2")  # a second seed of SAC
    results, figures = tmp_path / "results", tmp_path / "figures"
    cli(["all_plots", "-a", "sac", "poplin_p", "-e", ENV_ID, "-f", str(logs), "-o", str(results), "--no-display"], tmp_path)
    output = cli(["plot_from_file", "-i", str(results), "--figures", str(figures), "--no-million"], tmp_path)
    assert "leaving out POPLIN_P" in output  # its single run
    assert {path.name for path in figures.glob("*.png")} >= {f"Results_{ENV_ID}.png", "Sensitivity_plot.png"}


def test_plots_without_a_display_go_to_a_named_folder(zoo_logs: Path, tmp_path: Path) -> None:
    output = cli(["all_plots", "-a", "poplin_p", "-e", ENV_ID, "-f", str(zoo_logs)], tmp_path)
    assert (tmp_path / "zoo_plots" / f"Results_{ENV_ID}.png").is_file(), output
    assert "zoo_plots" in output


def test_plot_train_smooths_short_runs_over_what_they_have(
    zoo_logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 300-step run has a few episodes: with rl-zoo3's window of 100 it drew empty axes; here it is drawn."""
    from matplotlib import pyplot as plt
    from stable_baselines3.common.monitor import load_results

    from sb3_poplin.zoo import plots

    monkeypatch.delenv("DISPLAY", raising=False)
    drawn: list[int] = []
    save = plots.save_open_figures

    def inspect_then_save(folder: Path, dpi: int = 120) -> list[Path]:
        drawn.extend(len(line.get_xdata()) for line in plt.gca().get_lines())
        return save(folder, dpi)

    monkeypatch.setattr(plots, "save_open_figures", inspect_then_save)
    plots.plot_train(["-a", "poplin_p", "-e", ENV_ID, "-f", str(zoo_logs), "-w", "100", "--figures", str(tmp_path)])
    (run,) = (zoo_logs / "poplin_p").iterdir()
    episodes = len(load_results(str(run)))
    assert drawn == [episodes - plots.short_run_window(episodes, 100) + 1], "one curve with its smoothed points"
    assert "fewer than the window of 100" in capsys.readouterr().out
    assert (tmp_path / "Training_Episodic_Reward.png").is_file()


def test_saved_figures_keep_their_labels_inside(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from sb3_poplin.zoo.plots import save_open_figures

    figure = plt.figure("labels", figsize=(3.5, 2.5))
    plt.plot([0, 1], [0, 1e6])
    plt.xlabel("Timesteps (in Million)", fontsize=14)
    plt.ylabel("Score", fontsize=14)
    labels = (figure.axes[0].xaxis.label, figure.axes[0].yaxis.label)

    def outside() -> list[str]:
        figure.canvas.draw()  # lay the figure out as it is now
        renderer = figure.canvas.get_renderer()
        inside = figure.bbox
        return [
            label.get_text()
            for label in labels
            if not inside.contains(*label.get_window_extent(renderer).min)
            or not inside.contains(*label.get_window_extent(renderer).max)
        ]

    try:
        assert outside(), "matplotlib's default layout clips these labels (otherwise this test shows nothing)"
        (path,) = save_open_figures(tmp_path)
        assert outside() == [] and path.is_file()
    finally:
        plt.close("all")


def test_cli_lists_every_script_and_says_what_is_not_covered(tmp_path: Path) -> None:
    output = cli(["--help"], tmp_path)
    for script in ("train", "enjoy", "record_video", "record_training", "all_plots", "plot_train", "plot_from_file"):
        assert f"  {script} " in output, script
    assert "push_to_hub" in output and "python -m rl_zoo3" in output


# ---------------------------------------------------------------- Optuna


def optimize(storage: str, n_trials: int, workdir: Path, extra: list[str] | None = None) -> str:
    """``train --optimize`` with the search space narrowed to tiny planners (module-level choices, set in the child)."""
    narrow = (
        "import sys, sb3_poplin.zoo.hyperparams_opt as h\n"
        "h.POPULATION_SIZES = (30, 40); h.HORIZONS = (3, 5); h.CEM_ITERATIONS = (2,)\n"
        "h.DYNAMICS_WIDTHS = (16, 32); h.DYNAMICS_DEPTHS = (2,)\n"
        "from sb3_poplin.zoo.train import main\n"
        "main()\n"
    )
    args = ["--algo", "poplin_p", "--env", ENV_ID, "-f", str(workdir / "logs"), "-n", "300", "--num-threads", "1"]
    args += ["-optimize", "--n-trials", str(n_trials), "--n-evaluations", "1", "--eval-episodes", "1"]
    args += ["--sampler", "random", "--pruner", "none", "--no-optim-plots", "--storage", storage, "--study-name", "tiny"]
    args += [*SHORT_EPISODES, "-params", "learning_starts:100", "ensemble_size:2", "dynamics_min_updates:0", *(extra or [])]
    return run_python(["-c", narrow, *args], workdir)


def completed_trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    if storage.endswith(".log"):
        backend = optuna.storages.journal.JournalFileBackend(storage)
        study = optuna.load_study(study_name="tiny", storage=optuna.storages.JournalStorage(backend))
    else:
        study = optuna.load_study(study_name="tiny", storage=storage)
    return study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))


def test_optuna_workers_share_an_sqlite_study(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    # two workers (as on two machines) add one trial each to the same study
    optimize(storage, 1, tmp_path)
    optimize(storage, 1, tmp_path)
    trials = completed_trials(storage)
    assert len(trials) == 2
    for trial in trials:
        assert trial.params["population_size"] in (30, 40) and trial.params["distillation"] in zoo_hpo.POPLIN_P_DISTILLATIONS
        assert np.isfinite(trial.value)
    assert list((tmp_path / "logs" / "poplin_p").glob("report_*.csv"))
    # --trial-id rebuilds a trial's hyperparameters with the converter (rl-zoo3 skips trial id 0)
    args = ["--algo", "poplin_p", "--env", ENV_ID, "-f", str(tmp_path / "from_trial"), "-n", "1", "--eval-freq", "-1"]
    args += ["--storage", storage, "--study-name", "tiny", "--trial-id", "1"]
    zoo("train", args, tmp_path)
    config = yaml.unsafe_load((tmp_path / "from_trial" / "poplin_p" / f"{ENV_ID}_1" / ENV_ID / "config.yml").read_text())
    expected = zoo_hpo.convert_poplin_p_params(trials[1].params)
    assert {key: config[key] for key in expected} == expected


@pytest.mark.slow  # the same optimisation as the SQLite test with another storage (two minutes at load 6)
def test_optuna_with_a_journal_file(tmp_path: Path) -> None:
    storage = str(tmp_path / "journal" / "study.log")
    optimize(storage, 2, tmp_path)
    assert len(completed_trials(storage)) == 2


@pytest.mark.parametrize("algo", sorted(ZOO_ALGOS))
def test_samplers_give_valid_constructor_arguments(algo: str) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        hyperparams = zoo_hpo.SAMPLERS[algo](trial, 1, 1, {})
        assert 2 <= hyperparams["n_elites"] <= hyperparams["population_size"]
        assert hyperparams == zoo_hpo.CONVERTERS[algo](trial.params)
        assert yaml.safe_load(yaml.safe_dump(hyperparams)) == hyperparams
        study.tell(trial, 0.0)
    model = ZOO_ALGOS[algo]("MlpPolicy", ENV_ID, learning_starts=10, **hyperparams)
    assert model.population_size == hyperparams["population_size"]


def test_the_default_search_space_is_cpu_sized_and_the_paper_one_is_a_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    def worst_case_transitions_per_step() -> int:
        return max(zoo_hpo.POPULATION_SIZES) * max(zoo_hpo.HORIZONS) * max(zoo_hpo.CEM_ITERATIONS)

    assert zoo_hpo.SEARCH_SPACES["cpu"]["POPULATION_SIZES"] == zoo_hpo.POPULATION_SIZES
    assert worst_case_transitions_per_step() <= 20_000 and max(zoo_hpo.DYNAMICS_WIDTHS) <= 128
    try:
        zoo_hpo.use_search_space("paper")
        assert worst_case_transitions_per_step() == 240_000 and 500 in zoo_hpo.POPULATION_SIZES
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        assert zoo_hpo.SAMPLERS["poplin_p"](study.ask(), 1, 1, {})["population_size"] in zoo_hpo.POPULATION_SIZES
    finally:
        zoo_hpo.use_search_space("cpu")
    with pytest.raises(ValueError, match="SB3_POPLIN_SEARCH_SPACE"):
        zoo_hpo.use_search_space("huge")
    # the environment variable is read when the module is imported
    probe = "import sb3_poplin.zoo.hyperparams_opt as h; print(max(h.POPULATION_SIZES))"
    monkeypatch.setenv(zoo_hpo.SEARCH_SPACE_VARIABLE, "paper")
    assert run_python(["-c", probe], REPO_ROOT).strip().splitlines()[-1] == "1000"


# ---------------------------------------------------------------- packaging


def test_an_installed_wheel_finds_its_hyperparameters(tmp_path: Path) -> None:
    """Build a wheel from the sources, install it into a folder, and let the zoo's experiment manager read its files."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml"):
        shutil.copy(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "sb3_poplin", source / "sb3_poplin", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    run_python(["-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels)], tmp_path)
    (wheel,) = wheels.glob("sb3_poplin-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for algo in ZOO_ALGOS:
        assert f"sb3_poplin/hyperparams/{algo}.yml" in names
        for config_set in CONFIG_SETS:
            assert f"sb3_poplin/hyperparams/{config_set}/{algo}.yml" in names
    site = tmp_path / "site"
    run_python(["-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site), str(wheel)], tmp_path)
    probe = (
        "import argparse, sb3_poplin\n"
        "from sb3_poplin.zoo import register\n"
        "register()\n"
        "from rl_zoo3.train import ExperimentManager\n"
        "manager = ExperimentManager(argparse.Namespace(), 'poplin_p', 'Pendulum-v1', 'logs', verbose=0)\n"
        "hyperparams, _ = manager.read_hyperparameters()\n"
        "print('MODULE', sb3_poplin.__file__)\n"
        "print('CONFIG', manager.config)\n"
        "print('POPULATION', hyperparams['population_size'])\n"
    )
    output = run_python(["-c", probe], tmp_path, pythonpath=str(site))
    lines = {}
    for line in output.splitlines():
        key, _, value = line.partition(" ")
        if key in ("MODULE", "CONFIG", "POPULATION"):
            lines[key] = value
    assert Path(lines["MODULE"]).is_relative_to(site), "the probe imported another sb3_poplin than the wheel's"
    assert Path(lines["CONFIG"]) == site / "sb3_poplin" / "hyperparams" / "poplin_p.yml"
    assert lines["POPULATION"] == "100"
    if sys.platform != "win32":
        # the console script of the wheel dispatches to rl-zoo3's train with sb3-poplin registered
        script = site / "bin" / "sb3-poplin-zoo"
        env = {**os.environ, "PYTHONPATH": str(site)}
        command = [str(script), "train", "--help"]
        proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "poplin_a" in proc.stdout and "poplin_p" in proc.stdout and "sb3-poplin-zoo train" in proc.stdout


def test_plots_find_runs_of_a_namespaced_env_id() -> None:
    from sb3_poplin.zoo.plots import _folder_env_names

    argv = ["-a", "poplin_p", "sac", "-e", "sb3_poplin/PETSHalfCheetah-v0", "Pendulum-v1", "-f", "logs/"]
    expected = ["-a", "poplin_p", "sac", "-e", "sb3_poplin-PETSHalfCheetah-v0", "Pendulum-v1", "-f", "logs/"]
    assert _folder_env_names(argv) == expected


def test_importing_the_package_registers_the_paper_envs() -> None:
    code = "import gymnasium as gym, sb3_poplin; gym.make('sb3_poplin/PETSHalfCheetah-v0').close(); print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr
