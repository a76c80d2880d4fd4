"""User-facing errors: the CLI prints these as one line, without a traceback."""


class GrapeError(Exception):
    """A mistake in the user's input or settings; the message says what, where and what to do."""


class InputError(GrapeError):
    """A bad input row or file. The message names the file, the row and the field."""

    def __init__(self, file: str, row: int | None, field: str | None, reason: str):
        self.file, self.row, self.field, self.reason = file, row, field, reason
        where = file if row is None else f"{file}, row {row}"
        if field:
            where += f", field '{field}'"
        super().__init__(f"{where}: {reason}")
