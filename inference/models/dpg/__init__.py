"""DPG (after Dinh et al.): two pattern images of 124 frames of 2D keypoints -> GDI, knee
flexion at maximum extension, cadence and step length per side."""
