"""The one exception family users see.

Every error caused by the user's input (a bad file, a wrong shape, an unknown
name) is an `XmodalError`. Its message names the problem and says how to fix
it; the CLI prints it as one line and exits non-zero, without a traceback.
Anything else escaping the library is a bug.
"""


class XmodalError(Exception):
    """A problem with the user's input, data, weights or saved files."""


class WeightsError(XmodalError):
    """Source-model weights are missing, unreadable or fail their sha256 check."""


class DataError(XmodalError, ValueError):
    """Input data has the wrong shape, type or values (NaN, empty, ...)."""


class PersistenceError(XmodalError):
    """A saved reprogrammer is missing, corrupt or belongs to another source."""


class DeviceError(XmodalError):
    """The requested device (e.g. cuda) is not available on this machine."""
