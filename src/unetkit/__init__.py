"""unetkit: Supervisely UNet V2 + DTL re-created on PyTorch."""

__version__ = "0.1.0"
