"""``--model blend``: late fusion of models that read different things.

A blend trains each of ``blend.members`` on the same songs, each from its own config (a
pretrained probe and the classical vote, say: one hears what musicnn learnt from a million
songs, the other 145 handcrafted features, and they err differently), into
``RUN/members/<name>/``, and writes ``RUN/blend_card.json``. A song's prediction is the
weighted mean of the members' (:mod:`encore.inference.blend`). The weights are settings,
chosen on training folds (experiments/README.md: the probe and the vote, 0.75 and 0.25),
not fitted here.

Each member's config is its own file and ``set``, then ``blend.overrides``: what `encore
cv` and `encore train` pass to every model (``--set``, the seed, the device) reaches the
members through it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from encore.config import BlendMember, EncoreConfig, load_config, save_config
from encore.data.manifest import Manifest
from encore.exceptions import ConfigError, ParameterError
from encore.inference.blend import BLEND_CARD

logger = logging.getLogger(__name__)

__all__ = ["BLEND_CARD", "MemberPlan", "blend_overrides", "fit_blend", "member_plans", "member_rates"]


@dataclass(frozen=True)
class MemberPlan:
    """A member with its resolved config and its share of the blend."""

    member: BlendMember
    config: EncoreConfig
    weight: float

    @property
    def sample_rate(self) -> int:
        """The rate its songs are decoded at."""
        return self.config.features.sample_rate


def blend_overrides(overrides: list[str]) -> list[str]:
    """``overrides`` plus the one that hands them to a blend's members (``blend.overrides``).

    Keys of the ``blend`` section itself stay with the blend.
    """
    passed = [o for o in overrides if not o.strip().startswith("blend.")]
    return [*overrides, f"blend.overrides={json.dumps(passed)}"] if passed else list(overrides)


def member_plans(config: EncoreConfig) -> list[MemberPlan]:
    """The members of ``config.blend`` with their resolved configs and normalised weights.

    Raises:
        ParameterError: fewer than two members.
        ConfigError: a member's config is missing or invalid (the message names the member).
    """
    members = config.blend.members
    if len(members) < 2:
        raise ParameterError(
            f"--model blend needs at least two blend.members, the config has {len(members)}; "
            "see configs/emotify_blend.yaml for one"
        )
    total = sum(m.weight for m in members)
    plans = []
    for member in members:
        try:
            resolved = load_config(member.config, [*member.set, *config.blend.overrides])
        except ConfigError as err:
            raise ConfigError(f"blend member {member.name!r}: {err}") from None
        if resolved.blend.members:
            raise ConfigError(f"blend member {member.name!r}: its config is itself a blend; list its members directly")
        plans.append(MemberPlan(member, resolved, member.weight / total))
    return plans


def member_rates(config: EncoreConfig) -> list[int]:
    """The sample rates a blend's members read, in member order without repeats."""
    return list(dict.fromkeys(plan.sample_rate for plan in member_plans(config)))


def fit_blend(
    manifest: Manifest,
    songs_at: Callable[[int], Mapping[str, np.ndarray | None]],
    config: EncoreConfig,
    run_dir: Path,
    *,
    manifest_path: str,
    fit_member: Callable[[MemberPlan, Mapping[str, np.ndarray | None], Path], None],
) -> Path:
    """Train every member into ``run_dir/members/<name>`` and write the blend's card.

    Args:
        manifest: The training manifest (the members read the splits as they each do).
        songs_at: The songs decoded at a rate, by track id.
        config: The blend's config (``blend.members``).
        run_dir: The run folder.
        manifest_path: Recorded in the card.
        fit_member: Trains one member on the songs at its rate into a folder.

    Returns:
        The path of ``blend_card.json``.
    """
    from encore.inference.runs import load_predictor
    from encore.models.card import BlendCard, BlendMemberRecord, ManifestRecord

    plans = member_plans(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir / "config.yaml")
    records, trained_on_validation = [], False
    for plan in plans:
        folder = run_dir / "members" / plan.member.name
        logger.info("blend member %s (%s, weight %.2f)", plan.member.name, plan.member.kind, plan.weight)
        fit_member(plan, songs_at(plan.sample_rate), folder)
        predictor = load_predictor(folder)
        trained_on_validation |= bool(getattr(predictor.card, "trained_on_validation", False))
        records.append(
            BlendMemberRecord(name=plan.member.name, kind=plan.member.kind, weight=plan.weight, sample_rate=predictor.sample_rate)
        )
    card = BlendCard(
        sample_rate=max(r.sample_rate for r in records),
        members=records,
        label_names=list(manifest.label_names),
        tag_names=list(manifest.tag_names),
        regression_names=list(manifest.regression_names),
        trained_on_validation=trained_on_validation,
        config=config.model_dump(mode="json"),
        manifest=ManifestRecord(path=manifest_path, digest=manifest.digest(), summary=manifest.summary()),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    return card.write(run_dir / BLEND_CARD)
