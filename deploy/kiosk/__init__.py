"""The kiosk web application (``kind = "kiosk"`` in a configuration): the live view of the
preview, a session started and ended from the page, live numbers, the camera's state in words,
and the walk report at the end.

It lives in deploy/ because it shows the walk report (deploy.report), which reads the log
(sinks/) and the norms of inference/. Modules: app.py (the HTTP application on the preview's
server, the session's states, the wire), session.py (the form's checks, the camera in words,
the live numbers); templates/ and static/ hold the page, its CSS and JS.
"""
