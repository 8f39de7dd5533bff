"""Exceptions raised by the robustwatch agent.

Every exception type of the ``agent`` package lives here, so that callers (the CLI, tests) have
one place to import them from.
"""

from collections.abc import Sequence

__all__ = ["ConfigError", "StartupError", "WorkerError"]


class ConfigError(ValueError):
    """The agent's configuration is missing, unreadable or invalid.

    ``str(err)`` is one message with one problem per line; each line names the key path it is
    about (``config error at kafka.topics.0: ...``) and the first line names the first problem.
    Secret values never appear in it.

    Parameters
    ----------
    lines : str or sequence of str
        The problem descriptions, one per line.
    paths : sequence of str, optional
        The dotted key path of each line, in the same order (``""`` for a problem with the file
        as a whole, such as a YAML syntax error).

    Attributes
    ----------
    lines : tuple of str
        The problem descriptions.
    paths : tuple of str
        Their dotted key paths.

    Examples
    --------
    >>> err = ConfigError(
    ...     ["config error at model.name: missing required key"], paths=["model.name"]
    ... )
    >>> str(err)
    'config error at model.name: missing required key'
    >>> err.paths
    ('model.name',)
    >>> isinstance(err, ValueError)
    True
    """

    def __init__(self, lines: str | Sequence[str], *, paths: Sequence[str] = ()) -> None:
        self.lines = (lines,) if isinstance(lines, str) else tuple(lines)
        self.paths = tuple(paths)
        super().__init__("\n".join(self.lines))


class StartupError(RuntimeError):
    """The agent could not start: Kafka unreachable, the reference unreadable, and the like.

    The CLI prints ``str(err)`` (one line saying what failed and what to check) and exits with
    code 3.
    """


class WorkerError(RuntimeError):
    """The detection worker process (``pipeline.worker_process``) died or broke the protocol.

    The runner stops: what the worker held is not committed and is read again after a restart.
    The CLI prints ``str(err)`` and exits with code 4.
    """
