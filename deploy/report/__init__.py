"""Write the walk report of a logged session as HTML and/or a PDF to file.

``gaitstream report SESSION (--db LOG.db | --dsn postgresql://...) [--html OUT.html]
[--pdf OUT.pdf] [--subject ID] [--age Y] [--sex male|female] [--source-kind KIND]
[--recording FILE]``

It lives in deploy/ because it reads the log (sinks/) and draws against the clinical norms and
curves of inference/ (the GDI normative data, the gait variables of a recording): only deploy/
may import both. Modules: data.py (the log → what the report says), normals.py (the
spatiotemporal normal ranges), figures.py (matplotlib charts), render.py (Jinja2 page, PDF by
headless Chromium), curves.py (kinematic curves of a recording).
"""

from deploy.report.render import add_arguments, main

__all__ = ["add_arguments", "main"]
