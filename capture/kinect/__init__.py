"""Azure Kinect (and Orbbec Femto through its K4A wrapper): the pyk4a source, the Body Tracking
SDK binding and the camera geometry. See KINECT.md."""
