"""Building blocks of the UNet backbone (NHWC tensors throughout)."""
