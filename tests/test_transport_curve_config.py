"""CURVE configured the way a site does it: keys from `gaitstream keys`, a capture process that
binds with ``[process.curve]`` and a recorder that connects with ``[process.subscribe_curve]``,
both run by `gaitstream proc` from one TOML file. The authorised recorder gets the skeletons; a
client whose key is not authorised, and a client without CURVE, get nothing."""

import shutil
import signal
import subprocess
import time

from conftest import free_port, gaitstream
from streams.streamfile import StreamReader
from streams.schema import SkeletonFrame, decode
from streams.transport import CurveConfig, Subscriber


def test_two_processes_from_a_configuration_talk_over_curve(tmp_path):
    keys = tmp_path / "keys"
    for name in ("cam", "recorder", "intruder"):
        assert gaitstream("keys", str(keys), name, stdout=subprocess.DEVNULL).wait(30) == 0
    assert oct((keys / "recorder.key_secret").stat().st_mode & 0o777) == "0o600"
    allowed = tmp_path / "authorized"
    allowed.mkdir()
    shutil.copy(keys / "recorder.key", allowed)  # only the recorder's public key
    ep = f"tcp://127.0.0.1:{free_port()}"
    cfg = tmp_path / "curve.toml"
    cfg.write_text(f"""
[pipeline]
name = "curve"
data_dir = "{tmp_path}"

[[process]]
name = "cam"
kind = "capture"
publish = "{ep}"
[process.curve]
secret_key_file = "{keys / 'cam.key_secret'}"
authorized_dir = "{allowed}"
[process.options]
source = "sim"
rate_hz = 30.0

[[process]]
name = "recorder"
kind = "record"
subscribe = ["{ep}"]
topics = ["skel/"]
[process.subscribe_curve]
secret_key_file = "{keys / 'recorder.key_secret'}"
server_key_file = "{keys / 'cam.key'}"
[process.options]
path = "over-curve.gst"
""")
    intruder = Subscriber([ep], [""], curve=CurveConfig(
        secret_key_file=str(keys / "intruder.key_secret"), server_key_file=str(keys / "cam.key")))
    plain = Subscriber([ep], [""])
    procs = [gaitstream("proc", "--config", str(cfg), "--name", n, stderr=subprocess.PIPE,
                        text=True) for n in ("recorder", "cam")]
    out = tmp_path / "over-curve.gst"
    stolen = []
    try:
        end = time.monotonic() + 40
        while time.monotonic() < end:
            for s in (intruder, plain):
                got = s.recv_frames(20)
                if got is not None:
                    stolen.append(got)
            if out.exists() and sum(1 for _ in StreamReader(out)) >= 45:  # 1.5 s at 30 Hz
                break
        for s in (intruder, plain):  # a last look after the stream has run a while
            while (got := s.recv_frames(200)) is not None:
                stolen.append(got)
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            _, err = p.communicate(timeout=20)
            assert p.returncode == 0, err[-2000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        intruder.close()
        plain.close()
    recs = list(StreamReader(out))
    assert len(recs) >= 45, f"the authorised recorder got {len(recs)} messages over CURVE"
    msgs = [decode(r.frames[1]) for r in recs]
    assert all(isinstance(m, SkeletonFrame) and m.source == "cam" for m in msgs)
    seqs = [m.seq for m in msgs]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # nothing lost on the way
    assert stolen == [] and intruder.counters.received == plain.counters.received == 0
