"""A Task's report: pictures and text in the workdir and in TensorBoard (Images and Text tabs), through one writer."""

import glob
import io
import os
import struct

from PIL import Image
from tensorboardX.proto import event_pb2

from jaxdl import cli

from conftest import EXPERIMENTS


def _events(workdir: str) -> list:
    (path,) = glob.glob(os.path.join(workdir, "tensorboard", "events.out.tfevents.*"))
    data, offset, out = open(path, "rb").read(), 0, []
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset : offset + 8])
        event = event_pb2.Event()
        event.ParseFromString(data[offset + 12 : offset + 12 + length])
        out.append(event)
        offset += 16 + length
    return out


def test_the_autoencoders_pictures_and_the_language_models_samples_reach_tensorboard(tmp_path, capsys):
    autoencoder = str(tmp_path / "ae")
    assert cli.main(["train", "--quiet", "--workdir", autoencoder, "--config", os.path.join(EXPERIMENTS, "digits_autoencoder.py"),
                     "--config.train.epochs=2", "--config.train.eval_every_epochs=1", "--config.parallel=single"]) == 0
    images = [(e.step, v) for e in _events(autoencoder) for v in e.summary.value if v.HasField("image")]
    assert [(step, v.tag) for step, v in images if v.tag.endswith("reconstructions")] == [
        (45, "autoencoder/reconstructions"), (90, "autoencoder/reconstructions")]
    png = Image.open(io.BytesIO(images[-1][1].image.encoded_image_string))
    assert (png.width, png.height) == (images[-1][1].image.width, images[-1][1].image.height)
    assert os.path.isfile(os.path.join(autoencoder, "plots", "reconstructions.png"))
    # Every task's checkpoint restores for `jaxdl eval`; `jaxdl predict` says it is for supervised runs.
    capsys.readouterr()
    assert cli.main(["eval", "--workdir", autoencoder]) == 0
    assert "test split of digits, 359 examples; loss" in capsys.readouterr().out
    assert cli.main(["predict", "--workdir", autoencoder, "--input", os.path.join(autoencoder, "config.json")]) == 2
    assert "is for supervised models' runs; its figures: jaxdl eval" in capsys.readouterr().err

    text_file = tmp_path / "text.txt"
    text_file.write_text("the quick brown fox jumps over the lazy dog. " * 60)  # 2,700 characters
    language = str(tmp_path / "lm")
    assert cli.main(["train", "--quiet", "--workdir", language, "--config", os.path.join(EXPERIMENTS, "pydoc_char_lm.py"),
                     f"--config.data.text_file={text_file}", "--config.train.epochs=1", "--config.model.context=16",
                     "--config.model.embed_dim=16", "--config.model.num_layers=1", "--config.sample.length=40",
                     "--config.optimizer.warmup_steps=0", "--config.train.batch_size=8", "--config.parallel=single"]) == 0
    texts = [v for e in _events(language) for v in e.summary.value if v.tag == "language_model/sample"]
    assert len(texts) == 1 and texts[0].metadata.plugin_data.plugin_name == "text"
    sample = texts[0].tensor.string_val[0].decode()
    assert sample in open(os.path.join(language, "samples.txt"), encoding="utf-8").read()
