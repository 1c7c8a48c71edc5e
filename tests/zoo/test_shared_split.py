"""Held out means held out: train records its split beside the model, convert verifies on
exactly those photos and never calibrates on them, and the bundle records it. Group keys are
per class: ``apple_7`` and ``bana_7`` are different photos."""

from __future__ import annotations

import re

from edgekit.host.calibration import split

GROUP = r"(?:apple|bana)[-_](\d+)"


def test_group_keys_include_the_class(apple_banana_dir):
    from edgekit import images

    files = images.find_images(apple_banana_dir)
    rels = [f.relative_to(apple_banana_dir).as_posix() for f in files]
    sp = split(rels, GROUP)
    assert sp.groups == 16  # 8 photos of apples, 8 of bananas (not 8 mixed groups)
    held = {rels[i] for i in sp.verify}

    # No calibration file shares a (class, photo) group with a verification file.
    def key(rel):
        return rel.split("/")[0], re.findall(GROUP, rel.rsplit("/", 1)[1])[-1]

    assert not {key(rels[i]) for i in sp.calib} & {key(r) for r in held}


def test_split_with_held_out_files_uses_exactly_them():
    rels = [f"a/x_{i}.png" for i in range(10)] + [f"b/y_{i}.png" for i in range(10)]
    held = {"a/x_3.png", "b/y_7.png", "b/y_8.png"}
    sp = split(rels, None, None, held_out=held)
    assert {rels[i] for i in sp.verify} == held
    assert not {rels[i] for i in sp.calib} & held and len(sp.calib) == 17
    capped = split(rels, None, 1, held_out=held)
    assert len(capped.verify) == 1 and len(capped.calib) == 17  # the rest never calibrates
