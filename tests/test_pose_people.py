"""Person-of-interest selection on constructed observations: who is locked, kept, rejected, lost."""

from __future__ import annotations

import numpy as np
import pytest

from inference.pose.people import PersonObservation, PersonSelector, SelectorConfig

W, H = 1280, 720


def person(hip_x: float, hip_y: float = 450.0, leg: float = 100.0) -> PersonObservation:
    """A standing figure in MediaPipe's 33 points: hips at (hip_x, hip_y), legs ``leg`` px."""
    xy = np.zeros((33, 2))
    xy[:] = (hip_x, hip_y - 1.2 * leg)  # head and hands default to the head
    for side, dx in ((0, -0.1), (1, 0.1)):  # left, right
        x = hip_x + dx * leg
        xy[23 + side] = (x, hip_y)
        xy[25 + side] = (x, hip_y + 0.5 * leg)
        xy[27 + side] = (x, hip_y + leg)
        xy[29 + side] = (x - 0.05 * leg, hip_y + 1.05 * leg)
        xy[31 + side] = (x + 0.15 * leg, hip_y + 1.05 * leg)
        xy[11 + side] = (x, hip_y - 0.7 * leg)
    return PersonObservation(image_xy=xy, visibility=np.full(33, 0.9, np.float32))


def run(sel: PersonSelector, frames: list[tuple[int, list[PersonObservation]]]):
    chosen = []
    for t, people in frames:
        sel.begin_frame(t, W, H)
        sel.match(people, t)
        c = sel.choose(t)
        chosen.append(None if c is None or c.last_us != t else (c.cid, c.locked,
                                                                 float(c.last.hip_px[0])))
    return chosen


def walk_and_stand(fps: float, seconds: float = 1.5):
    """A walker crossing right to left at 1.5 leg lengths/s and someone standing still."""
    frames = []
    rng = np.random.default_rng(0)
    for k in range(int(seconds * fps)):
        t = int(round(k * 1e6 / fps))
        stander = person(300 + rng.normal(0, 2), leg=110)  # larger, so first followed
        walker = person(1000 - 150 * t / 1e6, leg=100)
        frames.append((t, [stander, walker]))
    return frames


def test_the_walker_is_locked_and_kept():
    sel = PersonSelector()
    chosen = run(sel, walk_and_stand(30))
    first = chosen[0]
    assert first is not None and first[2] < 400  # before anyone walked: the larger person
    assert not first[1]
    ids = {c[0] for c in chosen[-20:]}
    assert len(ids) == 1
    walker_id = ids.pop()
    assert walker_id != first[0]
    locked_at = next(i for i, c in enumerate(chosen) if c and c[1])
    # a lock needs 0.8 of the 0.5 s window: after about 12 frames at 30 fps
    assert 11 <= locked_at <= 16
    assert all(c[0] == walker_id and c[1] for c in chosen[locked_at:])
    assert list(sel.candidates) == [walker_id]  # everyone else dropped
    assert sel.counters["locked"] == 1


def test_the_lock_does_not_depend_on_the_frame_rate():
    times = []
    for fps in (15, 30, 60):
        chosen = run(PersonSelector(), walk_and_stand(fps))
        times.append(next(i for i, c in enumerate(chosen) if c and c[1]) / fps)
    assert max(times) - min(times) <= 1 / 15 + 1e-9


def test_a_jump_onto_someone_else_is_rejected():
    sel = PersonSelector()
    frames = walk_and_stand(30, 1.0)
    run(sel, frames)
    (cid, c), = sel.candidates.items()
    assert c.locked
    t = frames[-1][0] + 33_333
    # the walker vanishes and only a person 3 leg lengths away is seen: not glued on
    sel.begin_frame(t, W, H)
    sel.match([person(float(c.last.hip_px[0]) - 300)], t)
    assert sel.choose(t).last_us < t
    assert sel.counters["rejected_jumps"] == 1
    # same place but twice the size (someone nearer the camera): rejected too
    t += 33_333
    sel.begin_frame(t, W, H)
    sel.match([person(float(c.last.hip_px[0]) - 5, leg=200)], t)
    assert sel.choose(t).last_us < t
    assert sel.counters["rejected_jumps"] == 2


def test_a_lost_person_is_dropped_and_the_next_gets_a_new_id():
    sel = PersonSelector(SelectorConfig(lost_after_s=0.5))
    frames = walk_and_stand(30, 1.0)
    chosen = run(sel, frames)
    walker = chosen[-1][0]
    t_end = frames[-1][0]
    # nobody for 0.4 s: still the walker's track; at 0.6 s: lost
    for dt in (0.2, 0.4):
        sel.begin_frame(t_end + int(dt * 1e6), W, H)
        assert walker in sel.candidates
    sel.begin_frame(t_end + 600_000, W, H)
    assert walker not in sel.candidates and sel.counters["lost"] == 1
    t = t_end + 633_333
    sel.begin_frame(t, W, H)
    sel.match([person(600)], t)
    c = sel.choose(t)
    assert c is not None and c.cid > walker  # ids are never reused


def test_people_outside_the_walkway_are_ignored():
    # the walkway is the lower half of the image; someone on a roof (feet at y=250) is not in it
    sel = PersonSelector(SelectorConfig(walkway=(0.0, 0.5, 1.0, 1.0)))
    frames = [(int(k * 33_333), [person(300, hip_y=150), person(900, hip_y=450)])
              for k in range(5)]
    chosen = run(sel, frames)
    assert all(c is not None and abs(c[2] - 900) < 1 for c in chosen)
    assert len(sel.candidates) == 1
    assert sel.counters["outside_walkway"] == 5


def test_nobody_is_reported_before_walking_when_provisional_is_off():
    sel = PersonSelector(SelectorConfig(publish_provisional=False))
    chosen = run(sel, walk_and_stand(30, 1.0))
    locked_at = next(i for i, c in enumerate(chosen) if c is not None)
    assert locked_at >= 11 and all(c is not None and c[1] for c in chosen[locked_at:])


@pytest.mark.parametrize("walkway", [(0.5, 0, 0.4, 1), (0, 0, 1, 1.5)])
def test_bad_walkway_is_refused(walkway):
    with pytest.raises(ValueError, match="walkway"):
        SelectorConfig(walkway=walkway)
