"""Why an export is refused after it ran: the model it made must not be published."""


class ValidationError(Exception):
    """The exported model does not reproduce PyTorch within tolerance."""


class QuantizationError(Exception):
    """The int8 model disagrees with PyTorch too often."""
