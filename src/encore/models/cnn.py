"""CNN backbones on log-mel spectrograms.

``short_chunk_cnn`` and ``short_chunk_resnet`` follow M. Won, A. Ferraro, D. Bogdanov and
X. Serra, "Evaluation of CNN-based automatic music tagging models", SMC 2020: seven 3x3
convolution blocks with 2x2 max pooling over a short chunk (3.69 s in the paper), global
max pooling over what remains, and a dense layer. ``small_cnn`` is a narrower
four-block version with mean+max pooling, the CPU default.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from encore.models.registry import register_model

__all__ = ["ShortChunkCNN", "ShortChunkResNet", "SmallCNN"]


class ConvBlock(nn.Module):
    """Conv 3x3 - BatchNorm - ReLU - MaxPool.

    The ReLU runs after the pooling: ``relu(maxpool(x)) == maxpool(relu(x))`` (ReLU is
    monotone), with the same gradients, on a quarter of the values (about 15 % of a
    ``small_cnn`` training step on a CPU).
    """

    def __init__(self, in_channels: int, out_channels: int, *, pool: int | tuple[int, int] = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.pool = nn.MaxPool2d(pool)

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.pool(self.bn(self.conv(x))))


class ResBlock(nn.Module):
    """Two 3x3 convolutions with a (projected) identity shortcut, then max pooling."""

    def __init__(self, in_channels: int, out_channels: int, *, pool: int | tuple[int, int] = 2) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))
        self.pool = nn.MaxPool2d(pool)

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(self.pool(out + self.shortcut(x)))  # relu(pool(.)) == pool(relu(.)), as in ConvBlock


def _pools(n_mels: int, n_blocks: int) -> list[tuple[int, int]]:
    """2x2 pooling while the mel axis allows it, then pool time only."""
    pools = []
    height = n_mels
    for _ in range(n_blocks):
        ph = 2 if height >= 2 else 1
        height //= ph
        pools.append((ph, 2))
    return pools


class _StackedCNN(nn.Module):
    block: type[nn.Module] = ConvBlock

    def __init__(self, *, n_mels: int, channels: tuple[int, ...], embedding_dim: int, pooling: str) -> None:
        super().__init__()
        if pooling not in ("max", "mean_max"):
            raise ValueError(f"pooling={pooling!r} must be 'max' or 'mean_max'")
        layers = []
        in_channels = 1
        for out_channels, pool in zip(channels, _pools(n_mels, len(channels)), strict=True):
            layers.append(self.block(in_channels, out_channels, pool=pool))
            in_channels = out_channels
        self.layers = nn.Sequential(*layers)
        self.pooling = pooling
        pooled = in_channels * (2 if pooling == "mean_max" else 1)
        self.dense = nn.Sequential(nn.Linear(pooled, embedding_dim), nn.BatchNorm1d(embedding_dim), nn.ReLU())
        self.embedding_dim = embedding_dim

    def forward(self, log_mel: Tensor) -> Tensor:
        """(batch, n_mels, n_frames) -> (batch, embedding_dim)."""
        x = self.layers(log_mel.unsqueeze(1))
        x = x.amax(dim=2)  # collapse what is left of the mel axis
        if self.pooling == "max":
            pooled = x.amax(dim=-1)
        else:
            pooled = torch.cat([x.mean(dim=-1), x.amax(dim=-1)], dim=1)
        return self.dense(pooled)


@register_model("small_cnn", default_chunk_seconds=3.0)
class SmallCNN(_StackedCNN):
    """Four conv blocks (32-64-128-128) with mean+max pooling; the fast CPU default."""

    def __init__(self, *, n_mels: int, channels: tuple[int, ...] = (32, 64, 128, 128), embedding_dim: int = 128) -> None:
        super().__init__(n_mels=n_mels, channels=tuple(channels), embedding_dim=embedding_dim, pooling="mean_max")


@register_model("short_chunk_cnn", default_chunk_seconds=3.69)
class ShortChunkCNN(_StackedCNN):
    """Short-chunk CNN (Won et al. 2020): seven conv blocks and global max pooling."""

    def __init__(
        self, *, n_mels: int, channels: tuple[int, ...] = (128, 128, 256, 256, 256, 256, 512), embedding_dim: int = 512
    ) -> None:
        super().__init__(n_mels=n_mels, channels=tuple(channels), embedding_dim=embedding_dim, pooling="max")


@register_model("short_chunk_resnet", default_chunk_seconds=3.69)
class ShortChunkResNet(_StackedCNN):
    """Short-chunk CNN with residual blocks (Won et al. 2020, "Short-chunk CNN + Res")."""

    block = ResBlock

    def __init__(
        self, *, n_mels: int, channels: tuple[int, ...] = (128, 128, 256, 256, 256, 256, 512), embedding_dim: int = 512
    ) -> None:
        super().__init__(n_mels=n_mels, channels=tuple(channels), embedding_dim=embedding_dim, pooling="max")
