"""The one domain error of the optimizer engine."""


class HyperparameterError(ValueError):
    """A hyperparameter is unknown, of the wrong type, or out of range.

    `field` names the offending hyperparameter (``"betas"``, ``"name"``, ...);
    the message follows torch.optim's wording where torch has one.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class StateError(ValueError):
    """An optimizer state (bytes or JSON) does not fit the optimizer or the session."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
