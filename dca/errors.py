"""Errors, classed by what the caller should do about them.

    DcaError
    ├── ConfigError          bad settings: fix the configuration, nothing ran
    ├── PlanError            the plan as a whole cannot be read or written
    └── BrokerError          the broker said or did something unexpected
        ├── BrokerUnavailable  the request provably did not reach the broker
        ├── OrderRejected      the broker received the order and said no
        ├── DuplicateOrderRef  the client order id is already registered: it HAS the order
        └── OrderInDoubt       the broker may or may not have the order
    NotifyError              a notification was not delivered (never affects an order)
"""


class DcaError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(DcaError):
    """The configuration is invalid; the message says which key and how to fix it."""


class PlanError(DcaError):
    """The plan source cannot be read or written as a whole."""


class BrokerError(DcaError):
    """Something went wrong talking to the broker."""


class BrokerUnavailable(BrokerError):
    """The broker could not be reached; the request was never received by it."""


class OrderRejected(BrokerError):
    """The broker received the order and refused it."""


class DuplicateOrderRef(BrokerError):
    """The broker refused a submission because it already holds an order under this
    client order id. Not a failure: the order exists, so it must be looked up."""


class OrderInDoubt(BrokerError):
    """The broker may have received the order (timeout, dropped connection)."""


class NotifyError(DcaError):
    """A notification was not delivered. What to do is in its attributes:
    `retry_after` (rate-limited: send again after that many seconds), `permanent` (this
    message will never be accepted as it is), `gone` (the destination refuses everything:
    a deleted webhook or a bad token). None of them set: temporary, try again later.
    The message never contains a secret (webhook URLs are redacted)."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None,
                 retry_after: float | None = None, permanent: bool = False, gone: bool = False,
                 may_have_arrived: bool = False):
        super().__init__(message)
        self.may_have_arrived = may_have_arrived  # a timeout: sending again at once may duplicate
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.permanent = permanent
        self.gone = gone
