"""Configs: every default in one place, validated ranges with one-line errors, the JSON round trip
the project directory relies on."""
import json

import pytest

from musivid.config import BenchConfig, OptimizeConfig, RenderConfig, RhythmConfig, RunSettings, ScheduleConfig, TimingConfig, resolve_device
from musivid.errors import InputError


@pytest.mark.parametrize("make,match", [
    (lambda: ScheduleConfig(reactivity=5), "reactivity must be from 0 to 1"),
    (lambda: ScheduleConfig(reactivity=-0.1), "reactivity"),
    (lambda: ScheduleConfig(pulse=-1), "pulse"),
    (lambda: ScheduleConfig(walk=4), "walk must be from 0 to 3"),
    (lambda: ScheduleConfig(energy=1.5), "energy must be from 0 to 1"),
    (lambda: ScheduleConfig(intro="fade"), "intro must be one of title, drift, none"),
    (lambda: ScheduleConfig(outro="title"), "outro must be one of drift, none"),
    (lambda: ScheduleConfig(title="  "), "title must be 1 to 300 characters"),
    (lambda: ScheduleConfig(drift=0.5), "drift"),
    (lambda: OptimizeConfig(steps=-1), "steps"),
    (lambda: OptimizeConfig(variants=0), "variants"),
    (lambda: OptimizeConfig(cutouts=0), "cutouts"),
    (lambda: OptimizeConfig(lr=0), "lr"),
    (lambda: OptimizeConfig(cutout_min=0.9, cutout_max=0.5), "cutout sizes"),
    (lambda: OptimizeConfig(seed=-1), "seed"),
    (lambda: RenderConfig(fps=0), "fps"),
    (lambda: RenderConfig(size=7), "size"),
    (lambda: RenderConfig(crf=52), "crf"),
    (lambda: RhythmConfig(hop_length=0), "hop_length"),
    (lambda: TimingConfig(asr="vosk"), "asr must be one of"),
    (lambda: RunSettings(device="tpu"), "device"),
    (lambda: BenchConfig(batches=(0,)), "batch sizes"),
    (lambda: BenchConfig(steps=0), "steps"),
])
def test_out_of_range_settings_are_one_line_errors(make, match):
    with pytest.raises(InputError, match=match) as e:
        make()
    assert "\n" not in str(e.value) and "got" in str(e.value)


def test_the_edges_of_each_range_are_accepted():
    ScheduleConfig(reactivity=0.0), ScheduleConfig(reactivity=1.0), RenderConfig(crf=0), RenderConfig(crf=51)
    ScheduleConfig(walk=0.0, energy=1.0, intro="none", outro="none"), ScheduleConfig(walk=3.0, energy=0.0)
    OptimizeConfig(steps=0), RunSettings(device="cuda:3"), RunSettings(device="auto")


def test_run_settings_json_round_trip():
    s = RunSettings(optimize=OptimizeConfig(steps=7, variants=3), render=RenderConfig(fps=29.97, captions=True),
                    schedule=ScheduleConfig(reactivity=0.2, walk=1.5, intro="drift", title="Polar Sea"),
                    timing=TimingConfig(asr="none"), device="cpu")
    blob = json.loads(json.dumps(s.to_json()))
    assert RunSettings.from_json(blob) == s


def test_settings_from_an_older_or_newer_project():
    old = RunSettings().to_json()
    del old["timing"]
    old["asr"], old["whisper_model"] = "none", "tiny"  # how version-1 projects stored them
    old["render"]["some_future_option"] = 1  # unknown keys from a newer musivid are ignored
    s = RunSettings.from_json(old)
    assert s.timing == TimingConfig(asr="none", whisper_model="tiny") and s.render == RenderConfig()


def test_the_help_states_the_configs_defaults():
    """The CLI leaves unset options to the config classes and its help quotes their defaults."""
    import re

    from conftest import musivid

    text = " ".join(musivid("--help").stdout.split())
    for opt, value in [("--steps", OptimizeConfig.steps), ("--variants", OptimizeConfig.variants),
                       ("--cutouts", OptimizeConfig.cutouts), ("--fps", f"{RenderConfig.fps:g}"),
                       ("--size", RenderConfig.size), ("--crf", RenderConfig.crf),
                       ("--reactivity", f"{ScheduleConfig.reactivity:g}"), ("--walk", f"{ScheduleConfig.walk:g}"),
                       ("--energy", f"{ScheduleConfig.energy:g}")]:
        m = re.search(re.escape(opt) + r" [A-Z]+ .*?\(default ([\d.]+)\)", text)
        assert m and m.group(1) == str(value), opt


def test_resolve_device_on_this_machine():
    import torch

    c = resolve_device("cpu")
    dev, amp = c.device, c.amp
    assert dev.type == "cpu" and amp is None
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            resolve_device("cuda")
        assert resolve_device("auto").device.type == "cpu"


def test_captions_mode_and_projects_with_true_false_captions():
    from musivid.config import RenderConfig, RunSettings

    assert RenderConfig(captions=True).captions == "line" and RenderConfig(captions=False).captions == "none"
    old = RunSettings.from_json({"render": {"captions": True}})
    assert old.render.captions == "line"
    assert RunSettings.from_json(RunSettings(render=RenderConfig(captions="karaoke", font="/x.ttf")).to_json()
                                 ).render == RenderConfig(captions="karaoke", font="/x.ttf")
    with pytest.raises(InputError, match="captions must be one of none, line, karaoke"):
        RenderConfig(captions="bold")


def test_a_whole_number_for_a_float_setting_is_the_same_setting():
    from musivid.config import RenderConfig, RunSettings

    a, b = RunSettings(render=RenderConfig(fps=6)), RunSettings(render=RenderConfig(fps=6.0))
    assert a.render.fps == 6.0 and isinstance(a.render.fps, float)
    assert json.dumps(a.to_json(), sort_keys=True) == json.dumps(b.to_json(), sort_keys=True)
