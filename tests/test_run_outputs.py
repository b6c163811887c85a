"""What a run leaves for a researcher: TensorBoard events, plots, the manifest, `jaxdl summary`, `jaxdl runs compare`."""

import glob
import json
import os
import struct

import pytest
from PIL import Image
from tensorboardX.crc32c import crc32c
from tensorboardX.proto import event_pb2

from jaxdl import cli


def _masked(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_events(path: str) -> list[tuple[int, str, float]]:
    """(step, tag, value) of every scalar in a TensorBoard event file, its TFRecord checksums verified.

    The protobufs are parsed by tensorboardX's generated classes and the
    checksums computed by its CRC-32C: readers independent of jaxdl's writer.
    """
    data = open(path, "rb").read()
    out, offset = [], 0
    while offset < len(data):
        header = data[offset : offset + 8]
        (length,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", data[offset + 8 : offset + 12])[0] == _masked(header)
        body = data[offset + 12 : offset + 12 + length]
        assert struct.unpack("<I", data[offset + 12 + length : offset + 16 + length])[0] == _masked(body)
        event = event_pb2.Event()
        event.ParseFromString(body)
        offset += 12 + length + 4
        out += [(event.step, value.tag, value.simple_value) for value in event.summary.value]
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    made = {}
    for name, extra in (
        ("slow", ["--config.logging.every_steps=20"]),
        ("fast", ["--config.optimizer.learning_rate=0.01"]),
        ("members", ["--config.ensemble.size=3"]),
    ):
        workdir = str(root / name)
        assert cli.main(["train", "--quiet", "--workdir", workdir, "--config.train.epochs=4", *extra]) == 0
        made[name] = workdir
    return made


def test_tensorboard_events_hold_the_runs_scalars(runs):
    files = glob.glob(os.path.join(runs["slow"], "tensorboard", "events.out.tfevents.*"))
    assert len(files) == 1
    events = read_events(files[0])
    tags = {tag for _, tag, _ in events}
    assert {"train/loss", "train/accuracy", "test/loss", "test/accuracy", "test/auc", "optimizer/learning_rate",
            "timing/steps_per_second", "timing/examples_per_second", "timing/compile_seconds"} <= tags
    losses = {step: value for step, tag, value in events if tag == "train/loss"}
    records = [json.loads(line) for line in open(os.path.join(runs["slow"], "metrics.jsonl")) if '"train"' in line]
    assert sorted(losses) == [46, 92, 138, 184]
    for record in records:
        assert losses[record["step"]] == pytest.approx(record["loss"], rel=1e-6)
    running = sorted(step for step, tag, _ in events if tag == "train_running/loss")
    assert running == [20, 40, 60, 80, 100, 120, 140, 160, 180]  # every 20 steps, within epochs of 46
    rates = [value for _, tag, value in events if tag == "optimizer/learning_rate"]
    assert len(rates) == 4 and all(rate == pytest.approx(0.001) for rate in rates)
    member_tags = {tag for _, tag, _ in read_events(glob.glob(os.path.join(runs["members"], "tensorboard", "*"))[0])}
    assert {"train/loss/member_0", "train/loss/member_2", "test/accuracy/member_1"} <= member_tags


def test_learning_curves_are_valid_pngs(runs):
    for workdir in runs.values():
        path = os.path.join(workdir, "plots", "learning_curves.png")
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size[0] > 400 and image.size[1] > 200


def test_manifest_records_versions_devices_command_and_git(runs):
    manifest = json.load(open(os.path.join(runs["slow"], "manifest.json")))
    assert {"python", "jax", "jaxlib", "flax", "optax", "orbax_checkpoint", "tensorflow_datasets"} <= set(manifest["versions"])
    assert all(manifest["versions"].values())
    assert manifest["devices"]["device_count"] >= 1 and manifest["seed"] == 0
    assert "--workdir" in manifest["command"]
    assert "git" in manifest  # the commit of the checkout the run started in, or None outside one


def test_summary_command_prints_the_layers_without_training(capsys, tmp_path):
    assert cli.main(["summary", "--config.model.mlp.hidden=16,4"]) == 0
    out = capsys.readouterr().out
    assert "hidden_0 (Dense)" in out and "(None, 16)" in out
    assert "Total params: 569" in out  # 30*16+16 + 16*4+4 + 4*1+1


def test_runs_compare_lists_config_differences_and_writes_a_plot(runs, capsys, tmp_path):
    plot = str(tmp_path / "compare.png")
    assert cli.main(["runs", "compare", runs["slow"], runs["fast"], "--plot", plot]) == 0
    out = capsys.readouterr().out
    assert "optimizer.learning_rate" in out and "0.001" in out and "0.01" in out and "logging.every_steps" in out
    assert "slow" in out and "fast" in out and "eval accuracy" in out
    assert "ensemble.size" not in out  # only the keys that differ between these two
    with Image.open(plot) as image:
        assert image.format == "PNG"
    assert cli.main(["runs", "compare", str(tmp_path)]) == 2
    assert "holds no run" in capsys.readouterr().err
