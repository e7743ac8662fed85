"""``gaitstream keys DIR NAME``: make a CURVE key pair for a ZeroMQ link that leaves the machine.

Writes ``NAME.key`` (public; give it to the peer) and ``NAME.key_secret`` (keep it on this host,
mode 600). A publisher that binds uses its own secret key and a folder of authorised client public
keys; a subscriber uses its own secret key and the publisher's public key (see
``streams.transport.CurveConfig``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import zmq.auth


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", type=Path, help="folder for the key files")
    p.add_argument("name", help="key name, e.g. edge-box-3 or worker")


def main(args: argparse.Namespace) -> int:
    args.dir.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.auth.create_certificates(str(args.dir), args.name)
    os.chmod(secret, 0o600)
    print(f"public key: {public}\nsecret key: {secret} (keep private)")
    return 0
