"""Typed config: defaults, YAML overrides, --set overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesharp.train.config import ConfigError, TrainConfig, load_config, save_config, to_dict
from edgesharp.train.models import REGISTRY, RESEARCH

CONFIGS = Path(__file__).resolve().parents[2] / "train" / "configs"


def test_defaults_then_yaml_then_set(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("arch: nafnet-ps2-w16\noptim: {grad_clip: 0.5}\nphases:\n  - {steps: 10}\n  - {steps: 20, alpha: 1.0}\n")
    cfg = load_config(path, ["phases.1.lr=0.01", "optim.betas=[0.8, 0.95]", "arch_config.width=8", "data.sources.0.weight=2"])
    assert cfg.arch == "nafnet-ps2-w16" and cfg.optim.grad_clip == 0.5
    assert cfg.optim.ema_decay == TrainConfig().optim.ema_decay  # untouched default
    assert [p.steps for p in cfg.phases] == [10, 20] and cfg.phases[1].lr == 0.01
    assert cfg.phases[0].lr == TrainConfig().phases[0].lr  # each list element starts from defaults
    assert cfg.optim.betas == [0.8, 0.95] and cfg.arch_config == {"width": 8}
    assert cfg.data.sources[0].weight == 2.0 and isinstance(cfg.data.sources[0].weight, float)


def test_exponents_without_a_dot_are_numbers(tmp_path):
    # PyYAML reads 1e-5 (no dot) as a string; a learning rate written that way must still work
    path = tmp_path / "c.yaml"
    path.write_text("phases:\n  - {steps: 10, lr: 2e-3, min_lr: 1e-5}\n")
    cfg = load_config(path, ["phases.0.lr=4e-3"])
    assert cfg.phases[0].lr == 4e-3 and cfg.phases[0].min_lr == 1e-5


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.grad_clp=1", "unknown config key 'optim.grad_clp'; optim has: .*grad_clip"),
        ("learning_rate=1", "unknown config key 'learning_rate'"),
        ("phases.0.steps=abc", "phases.0.steps: expected an integer, got 'abc'"),
        ("phases.0.steps=1.5", "phases.0.steps: expected an integer"),
        ("phases.0.lr=fast", "phases.0.lr: expected a number, got 'fast'"),
        ("optim.lr_scale=0", "optim.lr_scale: must be positive, got 0.0"),
        ("optim.amp=maybe", "optim.amp: expected true or false"),
        ("phases.4.steps=1", "'phases.4' is not an index of a list of 1"),
        ("phases.0.alpha=0.5", "phases.0.alpha is 0.5 but teacher.kind is none"),
        ("phases.0.subsets=[2]", r"phases.0.subsets: \[2\] must be"),
        ("loss.kind=l2", "loss.kind: expected charbonnier or l1"),
        ("loss.ssim_window=box", "loss.ssim_window: choose gaussian or uniform"),
        ("data.rescale=[2.0, 1.0]", r"data.rescale: need \[min, max\]"),
        ("validation.levels=[extreme]", "validation.levels: unknown level"),
        ("data.sources.0.split=test", r"data.sources.0.split: train or val, .* got 'test'"),
        ("data.sources.0.downscale=0.5", "data.sources.0.downscale: 1 to 8"),
        ("data.sources.0.downscale=9", "data.sources.0.downscale: 1 to 8"),
        ("validation.split=validation", "validation.split: train or val, got 'validation'"),
        ("validation.downscale=0.9", "validation.downscale: 1 to 8, got 0.9"),
        ("validation.downscale=8.5", "validation.downscale: 1 to 8, got 8.5"),
        ("time_budget_s=-1", r"time_budget_s must be >= 0 .*got -1.0"),
        ("budget_probe_steps=0", r"budget_probe_steps >= 1, got .*, 0"),
        ("budget_probe_steps=1.5", "budget_probe_steps: expected an integer"),
        ("arch", "expected key=value"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_split_and_downscale_are_for_sources_of_sharp_images():
    gopro = ["data.sources.0.kind=gopro", "data.sources.0.path=/data/gopro"]
    with pytest.raises(ConfigError, match=r"data.sources.0.split: train or val, for a folder or builtin source, got 'val' \(gopro\)"):
        load_config(None, [*gopro, "data.sources.0.split=val"])
    with pytest.raises(ConfigError, match=r"data.sources.0.downscale: .*got 2.0 \(gopro\)"):
        load_config(None, [*gopro, "data.sources.0.downscale=2"])
    assert load_config(None, [*gopro, "data.sources.0.downscale=1"]).data.sources[0].downscale == 1.0
    cfg = load_config(None, ["data.sources.0.kind=folder", "data.sources.0.path=/photos", "data.sources.0.split=val",
                             "data.sources.0.downscale=2", "validation.split=val", "validation.downscale=8",
                             "time_budget_s=270", "budget_probe_steps=1"])
    src = cfg.data.sources[0]
    assert (src.split, src.downscale, cfg.validation.split, cfg.validation.downscale) == ("val", 2.0, "val", 8.0)
    assert (cfg.time_budget_s, cfg.budget_probe_steps) == (270.0, 1)
    # an empty value (as train/gpu-default.sh passes) clears a split
    assert load_config(None, ["data.sources.0.split=val", "data.sources.0.split=", "validation.split="]).data.sources[0].split == ""
    defaults = TrainConfig()
    assert (defaults.time_budget_s, defaults.validation.split, defaults.validation.downscale) == (0.0, "", 1.0)


def test_yaml_errors_name_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  crops: 64\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown config key 'data.crops'"):
        load_config(bad)
    with pytest.raises(ConfigError, match="missing.yaml: config file not found"):
        load_config(tmp_path / "missing.yaml")
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping at the top level"):
        load_config(listy)


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(None, ["phases.0.steps=3"])
    path = save_config(cfg, tmp_path / "config.yaml")
    assert to_dict(load_config(path)) == to_dict(cfg)


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_shipped_configs_load(name):
    cfg = load_config(CONFIGS / name)
    assert cfg.phases and (cfg.arch in REGISTRY or cfg.arch in RESEARCH)


def test_default_student_is_distilled_from_the_default_teacher():
    teacher, student = load_config(CONFIGS / "default-teacher.yaml"), load_config(CONFIGS / "default.yaml")
    assert student.teacher.kind == "student" and student.teacher.path == f"{teacher.out_dir}/last.pt"
    assert [p.alpha for p in student.phases] == [0.7, 0.5, 0.7] and all(p.alpha == 1.0 for p in teacher.phases)


def test_continued_stages_chain_the_default_recipe():
    teacher, teacher2 = load_config(CONFIGS / "default-teacher.yaml"), load_config(CONFIGS / "default-teacher-continue.yaml")
    student, student2 = load_config(CONFIGS / "default.yaml"), load_config(CONFIGS / "default-continue.yaml")
    assert teacher2.init_from == f"{teacher.out_dir}/last.pt" and student2.init_from == f"{student.out_dir}/last.pt"
    assert student2.teacher.path == f"{teacher2.out_dir}/last.pt"
    # everything not restated comes from the base file
    assert to_dict(teacher2)["data"] == to_dict(teacher)["data"] and teacher2.loss == teacher.loss
    assert student2.optim == student.optim and student2.arch == student.arch == "nafnet-rt-s2"


def test_base_file_is_merged_first_and_relative_to_the_config(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "base.yaml").write_text("arch: nafnet-rt\nseed: 3\noptim: {lr_scale: 2, grad_clip: 0.5}\n")
    (tmp_path / "sub" / "child.yaml").write_text("base: ../base.yaml\nseed: 4\noptim: {lr_scale: 3}\n")
    cfg = load_config(tmp_path / "sub" / "child.yaml", ["seed=5"])
    assert (cfg.arch, cfg.seed, cfg.optim.lr_scale, cfg.optim.grad_clip) == ("nafnet-rt", 5, 3, 0.5)


def test_base_errors_name_the_file(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match=r"a\.yaml: 'base' chain loops back"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match=r"missing\.yaml: config file not found"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("base: [x]\n")
    with pytest.raises(ConfigError, match=r"d\.yaml: 'base' must be a file name"):
        load_config(tmp_path / "d.yaml")


def test_seed_recipe_has_the_two_alpha_phases():
    cfg = load_config(CONFIGS / "seed.yaml")
    assert [p.alpha for p in cfg.phases] == [0.7, 0.5]
    assert cfg.teacher.kind == "spandrel"
    assert len(cfg.data.sources) == 3


def test_cli_module_is_light():
    import subprocess
    import sys

    code = "import sys, train, train.cli; print(sorted(m for m in ('torch', 'yaml', 'spandrel') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_default_recipe_takes_its_photos_from_DATA(tmp_path):
    """`make default-model DATA=...` rebuilds the default from another photo folder: every stage that reads
    photos (the last training stage, calibration, the validation check) reads DATA, split and downscaled."""
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    root = Path(__file__).resolve().parents[2]
    photos = str(tmp_path / "my-photos")
    dry = subprocess.run(["make", "-n", "-C", str(root), "default-model", f"DATA={photos}"], capture_output=True,
                         text=True, check=True).stdout
    stage = next(line for line in dry.splitlines() if "default-photos.yaml" in line)
    assert f"data.sources.0.path={photos}" in stage and f"validation.source={photos}" in stage
    assert f"--val-images {photos} --val-split val --calib-images {photos} --calib-split train --downscale 2" in dry
    assert f"--images {photos} --split val --downscale 2" in dry
    assert "CHECKPOINT=runs/default-photos/last.pt" in dry or "calibrate runs/default-photos/last.pt" in dry
    cfg = load_config(root / "train/configs/default-photos.yaml",
                      [f"data.sources.0.path={photos}", f"validation.source={photos}"])
    src = cfg.data.sources[0]
    assert (src.kind, src.path, src.split, src.downscale) == ("folder", photos, "train", 2.0)
    assert (cfg.validation.source, cfg.validation.split, cfg.validation.downscale) == (photos, "val", 2.0)
    assert all(p.alpha == 1.0 for p in cfg.phases) and cfg.teacher.kind == "none"


def test_paths_expand_home_and_environment_variables(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))  # what expanduser reads on Windows
    monkeypatch.setenv("EDGESHARP_TEST_DATA", str(tmp_path / "data"))
    path = tmp_path / "c.yaml"
    path.write_text("init_from: ~/runs/a/last.pt\nout_dir: $EDGESHARP_TEST_DATA/out\n"
                    "teacher: {kind: student, path: '${EDGESHARP_TEST_DATA}/teacher.pt'}\n"
                    "validation: {source: ~/val}\n"
                    "data:\n  sources:\n    - {kind: realblur, path: ~/list.txt, root: $EDGESHARP_TEST_DATA/realblur}\n"
                    "    - {kind: builtin}\n")
    cfg = load_config(path, ["data.sources.1.kind=folder", "data.sources.1.path=~/Pictures"])
    data = tmp_path / "data"
    assert cfg.init_from == str(home / "runs/a/last.pt") and cfg.out_dir == f"{data}/out"
    assert cfg.teacher.path == f"{data}/teacher.pt" and cfg.validation.source == str(home / "val")
    assert (cfg.data.sources[0].path, cfg.data.sources[0].root) == (str(home / "list.txt"), f"{data}/realblur")
    assert cfg.data.sources[1].path == str(home / "Pictures")  # a --set value as well as the file's
    # values that are not paths stay as written; a `~` inside a path is not a home directory
    plain = load_config(None, ["phases.0.name=~warm", "out_dir=runs/a~b", "validation.source=builtin"])
    assert (plain.phases[0].name, plain.out_dir, plain.validation.source) == ("~warm", "runs/a~b", "builtin")


def test_an_unset_variable_in_a_path_is_an_error_naming_the_key(monkeypatch):
    monkeypatch.delenv("EDGESHARP_UNSET", raising=False)
    with pytest.raises(ConfigError, match=r"^data.sources.0.path: environment variable 'EDGESHARP_UNSET' in "
                                          r"'\$EDGESHARP_UNSET/photos' is not set$"):
        load_config(None, ["data.sources.0.kind=folder", "data.sources.0.path=$EDGESHARP_UNSET/photos"])


def _documented_finetune_command() -> list[str]:
    """The `edgesharp train` command in finetune-cpu.yaml's header, as arguments after `edgesharp`."""
    import shlex

    header = [line[1:].strip() for line in (CONFIGS / "finetune-cpu.yaml").read_text().splitlines() if line.startswith("#")]
    (command,) = [line for line in header if line.startswith("edgesharp train")]
    return shlex.split(command)[1:]


def test_finetune_config_builds_the_architecture_of_the_shipped_default_model():
    import json

    from edgesharp.train import models

    manifest = json.loads((CONFIGS.parents[1] / "edge/models/default/manifest.json").read_text())
    photos = load_config(CONFIGS / "default-photos.yaml")
    args = _documented_finetune_command()
    assert args[:2] == ["train", "train/configs/finetune-cpu.yaml"]
    cfg = load_config(CONFIGS / "finetune-cpu.yaml", [a for a in args[2:] if a != "--set"])
    model = models.create(cfg.arch, **cfg.arch_config)
    assert cfg.arch == manifest["arch"] and model.arch_config == manifest["arch_config"]
    assert cfg.data.sources[0].kind == "folder" and cfg.data.sources[0].path == str(Path.home() / "Pictures")
    assert cfg.init_from == "runs/recovered/last.pt" and cfg.device == "cpu"
    # ground truth only, with the default's loss and the degradations of its phases
    assert cfg.teacher.kind == "none" and all(p.alpha == 1.0 for p in cfg.phases)
    assert cfg.loss == photos.loss and [p.subsets for p in cfg.phases] == [p.subsets for p in photos.phases]
    assert sum(p.steps for p in cfg.phases) < sum(p.steps for p in photos.phases) / 2
    assert cfg.data.crop * cfg.data.batch_size < photos.data.crop * photos.data.batch_size
    assert "python -m edgesharp.calibrate.recover edge/models/default runs/recovered/last.pt" in (CONFIGS / "finetune-cpu.yaml").read_text()


def test_finetune_runs_as_documented_from_the_recovered_default_model(tmp_path, monkeypatch, capsys):
    """The header's two commands: the shipped model rebuilt as a checkpoint, then the fine-tune from it (2 steps,
    small crops and no validation; photos under `~/Pictures`)."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import torch
    from train_helpers import make_image

    from edgesharp.calibrate.recover import main as recover
    from edgesharp.edge.cli import main as edgesharp
    from edgesharp.edge.imaging.io import write_image
    from edgesharp.train import checkpoint

    home = tmp_path / "home"
    for i in range(4):
        write_image(home / "Pictures" / f"IMG_{i:04d}.jpg", make_image(96, 128, i))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.chdir(tmp_path)  # runs/ of the documented commands lands here
    assert recover([str(CONFIGS.parents[1] / "edge/models/default"), "runs/recovered/last.pt"]) == 0
    args = _documented_finetune_command()
    args[1] = str(CONFIGS / "finetune-cpu.yaml")
    small = ["data.crop=32", "data.batch_size=2", "data.workers=0", "data.builtin_count=5", "validation.source=",
             "progress=false"]
    assert edgesharp([*args, *[a for s in small for a in ("--set", s)], "--stop-at-step", "2"]) == 0
    assert "at step 2" in capsys.readouterr().out
    start = checkpoint.read_checkpoint("runs/recovered/last.pt")["model"]
    tuned = checkpoint.read_checkpoint("runs/finetune-cpu/last.pt")
    assert tuned["arch"] == "nafnet-rt-s2" and tuned["step"] == 2
    assert tuned["config"]["data"]["sources"][0]["path"] == str(home / "Pictures")
    # two warm-up steps move the recovered weights by little, and do move them
    diffs = [float((tuned["model"][k] - v).abs().max()) for k, v in start.items() if v.is_floating_point()]
    assert 0 < max(diffs) < 0.01, max(diffs)
    assert all(torch.isfinite(v).all() for v in tuned["model"].values() if v.is_floating_point())
