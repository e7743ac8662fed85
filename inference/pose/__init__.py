"""Pose estimation for webcam frames, run inside the worker: ``estimator.py`` picks the backend
(MediaPipe, RTMPose, YOLO-pose), ``people.py`` whom to follow, ``metric.py`` the camera geometry."""
