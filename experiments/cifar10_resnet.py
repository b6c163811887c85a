"""A small ResNet for 32x32 colour images: CIFAR-10, or offline its stand-in `colour_digits`.

The default run trains offline on `colour_digits` (scikit-learn's 1,797
digits as 32x32 colour images: upsampled, shifted, random foreground and
background colours, noise; see jaxdl/data/tfds_source.py), which takes the
same path as TFDS `cifar10`: uint8 "image" features scaled to [0, 1]. The
model is a ResNet of three stages (16, 32, 64 channels, one basic residual
block each, batch normalisation), global average pooling and a softmax over
ten classes; adamw with a warmup + cosine schedule.

`:cifar10` is the full-size run: ResNet-20 (three blocks per stage) on the
real CIFAR-10 (50,000 train / 10,000 test images), which must be downloaded
once first; offline, training it stops at once with the command to prepare it.

Run:
    jaxdl train --config experiments/cifar10_resnet.py
    jaxdl train --config experiments/cifar10_resnet.py:quick     # 2 epochs, for a smoke test
    jaxdl data prepare cifar10                                    # downloads CIFAR-10 (~160 MB), once
    jaxdl train --config experiments/cifar10_resnet.py:cifar10   # ResNet-20, 40 epochs at batch size 128
Result (default run, seeds 0-4, 2-core CPU shared with other jobs, cold
compilation cache): test accuracy 0.9526-0.9805 (mean 0.9671) on the 359
test images; train loss 2.36-2.40 in epoch 1, 0.018-0.044 in epoch 15;
52-105 s per run (12-14 s of it compiling; 57-60 s of CPU time). Seed 0:
0.9610, loss 2.3741 -> 0.0246, 52.5 s. `:cifar10` is not measured here (no
network access to download CIFAR-10); published ResNet-20s reach ~91% with
crop-and-flip augmentation, which jaxdl does not have, so expect less.
"""

from jaxdl.config import default_config
from jaxdl.errors import InputError


def get_config(arg: str | None = None):
    cfg = default_config()
    cfg.data.name = "colour_digits"
    cfg.model.name = "resnet"
    cfg.model.resnet.stage_features = (16, 32, 64)  # the channels of each stage
    cfg.model.resnet.blocks_per_stage = 1
    cfg.model.resnet.batch_norm = True
    cfg.train.loss = "categorical_crossentropy"
    cfg.train.epochs = 15
    cfg.train.batch_size = 64
    cfg.optimizer.name = "adamw"
    cfg.optimizer.learning_rate = 1e-2  # batch normalisation tolerates it; 3e-3 needed twice the epochs
    cfg.optimizer.weight_decay = 5e-4
    cfg.optimizer.schedule = "warmup_cosine"
    cfg.optimizer.warmup_steps = 50  # about two epochs of 23 steps
    if arg == "quick":
        cfg.train.epochs = 2
        cfg.optimizer.warmup_steps = 10  # within the 46 steps of the run
    elif arg == "cifar10":
        cfg.data.name = "cifar10"  # has its own test split of 10,000 images
        cfg.model.resnet.blocks_per_stage = 3  # ResNet-20
        cfg.train.epochs = 40
        cfg.train.batch_size = 128
        cfg.optimizer.learning_rate = 3e-3
        cfg.optimizer.weight_decay = 0.05  # the only regulariser: jaxdl has no data augmentation (crops, flips)
        cfg.optimizer.warmup_steps = 782  # two epochs of 391 steps
    elif arg is not None:
        raise InputError(
            f"--config=experiments/cifar10_resnet.py:{arg}: unknown argument {arg!r}; expected quick or cifar10"
        )
    return cfg
