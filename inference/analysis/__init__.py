"""The classical gait analysis (no learned weights): per track, frame by frame, kinematics from
joint geometry, coordinate-based gait events, and one record per stride. The baseline the models
must beat and the fallback when none is configured."""
