"""``gaitstream record`` and ``gaitstream replay`` as the real commands, in their own processes,
over real sockets: a live publisher's chosen topics into a file, the file back out flat out,
a time window of it, and in a loop."""

import signal
import subprocess
import time

import numpy as np
import pytest

from conftest import free_port, gaitstream, wait_for
from streams.streamfile import StreamReader
from streams.schema import Body, GaitCycle, SkeletonFrame, Status, monotonic_us
from streams.transport import Publisher, Subscriber

N = 60  # skeleton frames published, 10 ms apart
PIPES = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}  # for finish()


def finish(proc, sig=None, timeout=20):
    if sig is not None:
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-2000:]
    return out


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """A live source publishing skeletons, cycles and statuses; `gaitstream record` keeps the
    skeleton and status topics. Returns (file, the frames published on those topics)."""
    out = tmp_path_factory.mktemp("rec") / "live.gst"
    pub = Publisher(f"tcp://127.0.0.1:{free_port()}")
    rec = gaitstream("record", "--connect", pub.endpoint, "--topic", "skel/", "--topic",
                     "status", "--out", str(out), **PIPES)
    try:
        # one subscription per topic prefix, both before the first message
        assert pub.wait_for_subscribers(2, 20) == 2, "the recorder did not subscribe"
        joints = np.random.default_rng(3).normal(size=(22, 3)).astype(np.float32)
        kept = []
        for i in range(1, N + 1):
            msgs = [SkeletonFrame(source="cam", seq=i, t_us=i * 10_000, host_us=monotonic_us(),
                                  bodies=[Body(1, joints + i, np.ones(22, np.float32))])]
            if i % 20 == 0:
                msgs.append(GaitCycle(source="cam", seq=i, t_us=i, host_us=i, track=1,
                                      start_us=i, end_us=i + 1))  # not a recorded topic
                msgs.append(Status(source="cam", seq=i // 20, t_us=i, host_us=i,
                                   process="cam", role="capture"))
            for m in msgs:
                pub.send(m)
                if not isinstance(m, GaitCycle):
                    kept.append(m)
            time.sleep(0.01)
        assert wait_for(lambda: sum(1 for _ in StreamReader(out)) == len(kept))
        text = finish(rec, signal.SIGINT)
    finally:
        if rec.poll() is None:
            rec.kill()
        pub.close()
    assert f"{len(kept)} messages written to {out}" in text
    return out, kept


def test_record_writes_the_chosen_topics_and_their_messages(recording):
    path, kept = recording
    r = StreamReader(path)
    assert r.header["topics"] == ["skel/", "status"]
    recs = list(r)
    assert not r.truncated and len(recs) == len(kept) == N + 3
    assert [x.topic for x in recs] == [("skel/cam" if isinstance(m, SkeletonFrame) else "status")
                                      for m in kept]
    hosts = [x.host_us for x in recs]
    assert hosts == sorted(hosts) and 0.5 < (hosts[-1] - hosts[0]) / 1e6 < 5


def replay_into_subscriber(path, *args, want=None, stop_after=None):
    """Run `gaitstream replay` and collect the frames a subscriber receives (as bytes)."""
    ep = f"tcp://127.0.0.1:{free_port()}"
    sub = Subscriber([ep], [""], hwm=100000)  # connects first; ZeroMQ retries until bound
    proc = gaitstream("replay", str(path), "--publish", ep, *args, **PIPES)
    got = []
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end and (stop_after is None or len(got) < stop_after):
            frames = sub.recv_frames(200)
            if frames is not None:
                got.append([bytes(f.buffer) for f in frames])
            elif proc.poll() is not None and want is not None and len(got) >= want:
                break
        text = finish(proc, signal.SIGINT if stop_after else None)
    finally:
        if proc.poll() is None:
            proc.kill()
        sub.close()
    return got, text


def test_replay_fast_publishes_every_recorded_message_unchanged(recording):
    path, _ = recording
    recs = list(StreamReader(path))
    got, text = replay_into_subscriber(path, "--fast", want=len(recs))
    assert got == [x.frames for x in recs]
    assert f"{len(recs)} messages replayed" in text


def test_replay_start_and_end_select_a_window(recording):
    path, _ = recording
    recs = list(StreamReader(path))
    t0 = recs[0].host_us
    want = [x.frames for x in recs if 0.2 <= (x.host_us - t0) / 1e6 <= 0.4]
    assert 10 <= len(want) < len(recs) // 2
    got, text = replay_into_subscriber(path, "--fast", "--start", "0.2", "--end", "0.4",
                                       want=len(want))
    assert got == want and f"{len(want)} messages replayed" in text


def test_replay_loop_repeats_the_file(recording):
    path, _ = recording
    recs = [x.frames for x in StreamReader(path)]
    got, text = replay_into_subscriber(path, "--fast", "--loop", stop_after=3 * len(recs))
    assert len(got) >= 3 * len(recs)
    assert got[:3 * len(recs)] == recs * 3
    sent = int(text.split()[0])
    assert sent >= 3 * len(recs)  # it looped until stopped
