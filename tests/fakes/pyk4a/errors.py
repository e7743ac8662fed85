"""pyk4a.errors: a failed k4a call raises K4AException, a wait that timed out its subclass."""


class K4AException(Exception):
    pass


class K4ATimeoutException(K4AException):
    pass
