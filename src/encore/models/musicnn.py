"""musicnn and its VGG-like baseline, ported from the TensorFlow originals.

J. Pons and X. Serra, "musicnn: pre-trained convolutional neural networks for music
audio tagging", ISMIR 2019 late-breaking demo (https://github.com/jordipons/musicnn,
ISC licence). Both networks read a log-mel of 96 bands (16 kHz, 512-point FFT, hop 256,
librosa's Slaney filters, ``log10(1 + 10000 * mel)``) in 3-s patches of 187 frames.

The layers follow ``musicnn/models.py`` one for one, with TensorFlow's conventions kept
where they change a number: the input is laid out as TensorFlow's ``(time, mel)`` image,
BatchNorm has ``eps=1e-3`` (``tf.layers.batch_normalization``), convolutions are followed
by ReLU *then* BatchNorm, "same" padding of an even kernel puts the extra row after, and
the back end's pooled features interleave max and mean per channel as TensorFlow's
flatten of ``concat([max, mean], axis=2)`` does. Each network normalises its own input
with a single-channel BatchNorm (registered with ``input_norm=False``), and returns the
penultimate embedding; the 50-tag output layer is the model's tag head.
:mod:`encore.pretrained.musicnn` maps the shipped checkpoints onto these modules.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from encore.exceptions import ParameterError
from encore.models.registry import register_model

__all__ = ["MUSICNN_FRONTEND", "MUSICNN_N_FRAMES", "Musicnn", "MusicnnVGG"]

MUSICNN_FRONTEND = {
    "sample_rate": 16000,
    "n_fft": 512,
    "hop_length": 256,
    "n_mels": 96,
    "mel_scale": "slaney",
    "mel_norm": "slaney",
    "power": 2.0,
    "center": True,
    "pad_mode": "constant",
    "compression": "log10_1p",
    "compression_gain": 10000.0,
}
"""musicnn's input as :class:`~encore.features.LogMelSpectrogram` settings (librosa's
``melspectrogram`` defaults, as ``musicnn.extractor.batch_data`` calls it)."""
MUSICNN_N_FRAMES = 187
"""Frames of a 3-s patch (``librosa.time_to_frames(3, ...) + 1``)."""
MUSICNN_CHUNK_SECONDS = (MUSICNN_N_FRAMES - 1) * 256 / 16000
"""2.976 s: the waveform whose centred log-mel has exactly 187 frames, one patch."""
TF_BN_EPS = 1e-3
TF_BN_MOMENTUM = 0.01  # TensorFlow's momentum 0.99 for the moving averages


def _tf_bn(n: int, dims: int = 1) -> nn.Module:
    cls = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
    return cls(n, eps=TF_BN_EPS, momentum=TF_BN_MOMENTUM)


def _as_tf_image(log_mel: Tensor) -> Tensor:
    """(batch, n_mels, n_frames) -> (batch, 1, n_frames, n_mels): TensorFlow's (time, mel) image."""
    return log_mel.transpose(1, 2).unsqueeze(1)


class _ConvReluBN(nn.Module):
    """Conv2d, ReLU, BatchNorm (TensorFlow's ``conv2d(activation=relu)`` then ``batch_normalization``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int], *, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding)
        self.bn = _tf_bn(out_channels, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(torch.relu(self.conv(x)))


class _MidendConv(nn.Module):
    """A mid-end layer: a (7 x all channels) convolution over time, ReLU, BatchNorm."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, 7, padding=3)
        self.bn = _tf_bn(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(torch.relu(self.conv(x)))


# Its tall and long one-channel filters run about 2x faster in contiguous memory, two
# chunks at a time, than channels-last with whole songs a batch (bench/bench_embed.py).
@register_model("musicnn", default_chunk_seconds=MUSICNN_CHUNK_SECONDS, input_norm=False, channels_last=False, cpu_batch_size=2)
class Musicnn(nn.Module):
    """musicnn (Pons & Serra 2019): musically motivated front end, dense mid end, temporal pooling.

    Front end: timbral filters spanning 7 frames and 40 % or 70 % of the mel axis (204
    each), and temporal filters spanning 128, 64 and 32 frames of one band (51 each), each
    max-pooled over the mel axis. Mid end: three 7-frame convolutions of
    ``midend_channels`` with residual connections, densely concatenated with the front
    end. Back end: max and mean over time, BatchNorm, dropout, a dense layer of
    ``embedding_dim`` with ReLU and BatchNorm: the penultimate embedding.

    Args:
        n_mels: Mel bands of the input (96 in the original).
        midend_channels: Filters per mid-end layer (64; 512 for ``MSD_musicnn_big``).
        embedding_dim: Units of the penultimate layer (200; 500 for the big model).

    Shape:
        ``(batch, n_mels, n_frames)`` -> ``(batch, embedding_dim)``, any ``n_frames``
        (the original is trained on 187).
    """

    def __init__(self, *, n_mels: int = 96, midend_channels: int = 64, embedding_dim: int = 200) -> None:
        super().__init__()
        self.input_bn = _tf_bn(1, 2)
        timbral_filters, temporal_filters = int(1.6 * 128), int(1.6 * 32)
        self.timbral = nn.ModuleList(_ConvReluBN(1, timbral_filters, (7, int(share * n_mels))) for share in (0.4, 0.7))
        self.temporal_kernels = (128, 64, 32)
        self.temporal = nn.ModuleList(_ConvReluBN(1, temporal_filters, (k, 1)) for k in self.temporal_kernels)
        frontend_channels = 2 * timbral_filters + 3 * temporal_filters
        self.midend = nn.ModuleList(
            _MidendConv(frontend_channels if i == 0 else midend_channels, midend_channels) for i in range(3)
        )
        pooled_channels = frontend_channels + 3 * midend_channels
        self.pool_bn = _tf_bn(2 * pooled_channels)
        self.pool_dropout = nn.Dropout(0.5)
        self.dense = nn.Linear(2 * pooled_channels, embedding_dim)
        self.dense_bn = _tf_bn(embedding_dim)
        self.embedding_dim = embedding_dim

    def frontend_features(self, log_mel: Tensor) -> Tensor:
        """(batch, n_mels, n_frames) -> (batch, 561, n_frames): timbral then temporal features."""
        x = self.input_bn(_as_tf_image(log_mel))
        padded = F.pad(x, (0, 0, 3, 3))  # 'same' over time for the 7-frame timbral filters
        features = [block(padded).amax(dim=3) for block in self.timbral]
        for kernel, block in zip(self.temporal_kernels, self.temporal, strict=True):
            before = (kernel - 1) // 2  # TensorFlow's 'same': the extra row goes after
            features.append(block(F.pad(x, (0, 0, before, kernel - 1 - before))).amax(dim=3))
        return torch.cat(features, dim=1)

    top_modules = ("pool_bn", "dense", "dense_bn")
    """The back end's trained layers: what :meth:`top` runs, and what ``train.tune_top`` fine-tunes."""

    def bottom(self, log_mel: Tensor) -> Tensor:
        """(batch, n_mels, n_frames) -> (batch, 1506): the front and mid end, max and mean over time."""
        frontend = self.frontend_features(log_mel)
        layers = [frontend, self.midend[0](frontend)]
        for conv in self.midend[1:]:
            layers.append(conv(layers[-1]) + layers[-1])
        features = torch.cat(layers, dim=1)  # (batch, 753, n_frames)
        return torch.stack([features.amax(dim=2), features.mean(dim=2)], dim=2).flatten(1)  # max, mean per channel

    def top(self, pooled: Tensor) -> Tensor:
        """(batch, 1506) pooled features -> (batch, embedding_dim): the dense layer of the back end."""
        hidden = torch.relu(self.dense(self.pool_dropout(self.pool_bn(pooled))))
        return self.dense_bn(hidden)

    def forward(self, log_mel: Tensor) -> Tensor:
        """(batch, n_mels, n_frames) log-mel (``log10_1p``) -> (batch, embedding_dim)."""
        return self.top(self.bottom(log_mel))


@register_model("musicnn_vgg", default_chunk_seconds=MUSICNN_CHUNK_SECONDS, input_norm=False)
class MusicnnVGG(nn.Module):
    """musicnn's VGG-like baseline (Pons & Serra 2019): five 3x3 conv blocks of 128 filters.

    Each block is a convolution with ReLU, BatchNorm and max pooling (4x1 with stride 2,
    then 2x2 three times, then 4x4), with dropout 0.25 between blocks; the flattened last
    pooling (time, mel, channel order, as TensorFlow flattens) is the embedding.

    Args:
        n_mels: Mel bands of the input (96 in the original).
        n_frames: Frames of the input patch: the flattening fixes it (187 in the original).
        channels: Filters per block (128).

    Shape:
        ``(batch, n_mels, n_frames)`` -> ``(batch, embedding_dim)`` (256 for the original).
    """

    def __init__(self, *, n_mels: int = 96, n_frames: int = MUSICNN_N_FRAMES, channels: int = 128) -> None:
        super().__init__()
        self.n_frames = n_frames
        self.input_bn = _tf_bn(1, 2)
        self.blocks = nn.ModuleList(_ConvReluBN(1 if i == 0 else channels, channels, (3, 3), padding=1) for i in range(5))
        self.pools = nn.ModuleList(
            [
                nn.MaxPool2d((4, 1), stride=(2, 2)),
                nn.MaxPool2d(2),
                nn.MaxPool2d(2),
                nn.MaxPool2d(2),
                nn.MaxPool2d(4),
            ]
        )
        self.block_dropout = nn.Dropout(0.25)
        height, width = n_frames, n_mels
        for kernel, stride in (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4))):
            height, width = (height - kernel[0]) // stride[0] + 1, (width - kernel[1]) // stride[1] + 1
        if height < 1 or width < 1:
            raise ParameterError(f"n_frames={n_frames} and n_mels={n_mels} are too small for five pooling stages")
        self.embedding_dim = height * width * channels

    def forward(self, log_mel: Tensor) -> Tensor:
        """(batch, n_mels, n_frames) log-mel (``log10_1p``) -> (batch, embedding_dim)."""
        if log_mel.shape[-1] != self.n_frames:
            raise ParameterError(
                f"the VGG model reads patches of exactly {self.n_frames} frames, got {log_mel.shape[-1]}; "
                "keep the checkpoint's chunk length"
            )
        x = self.input_bn(_as_tf_image(log_mel))
        for i, (block, pool) in enumerate(zip(self.blocks, self.pools, strict=True)):
            x = pool(block(x))
            if i < 4:
                x = self.block_dropout(x)
        return x.permute(0, 2, 3, 1).flatten(1)  # TensorFlow's NHWC flatten
