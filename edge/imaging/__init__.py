"""The imaging core shared by every package: degradation protocol, metrics, image IO (numpy/OpenCV only)."""
