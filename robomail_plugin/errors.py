"""The errors robomail raises; each has a stable ``code`` a task can test in ``LastErrorCode``.

All derive from ``schema.ActionFailed`` so any host reports them the same way. Messages say what
is wrong and what to do, and never contain a secret.
"""

from __future__ import annotations

from robomail_plugin.schema import ActionFailed


class RobomailError(ActionFailed):
    """Base of every robomail error."""

    default_code = "robomail_error"
    meaning = "robomail could not do what the step asks"
    advice = "read the message: it says what to do"

    def __init__(self, message: str, *, code: str | None = None, server_reply: str | None = None):
        super().__init__(message, code=code or self.default_code, server_reply=server_reply)


# --- credentials -------------------------------------------------------------------------------


class RecordInvalid(RobomailError):
    """A record's fields are missing or malformed (raised before anything is stored)."""

    default_code = "record_invalid"
    meaning = "a record's fields are missing or malformed"
    advice = "fix the field the message names (`hostsim oauth edit`)"


class RecordNotFound(RobomailError):
    """No OAuth record has the given Record Name."""

    default_code = "record_not_found"
    meaning = "no OAuth record has that Record Name"
    advice = "check `oauth_record` against `hostsim oauth list`"


class RecordExists(RobomailError):
    """A record with that Record Name exists already (names are unique)."""

    default_code = "record_exists"
    meaning = "a record with that Record Name exists already"
    advice = "choose another Record Name, or edit the existing record"


class StoreError(RobomailError):
    """The store cannot be read or written: a wrong key, a tampered value, a damaged file."""

    default_code = "store_error"
    meaning = "the credential store cannot be read or written (key, file or database)"
    advice = (
        "the message names the key, file or database setting to fix; the other records "
        "are untouched"
    )


class ImportFileInvalid(RobomailError):
    """An export file is malformed, of an unknown version, or its passphrase is wrong."""

    default_code = "import_invalid"
    meaning = "the export file is malformed, of an unknown version, or its passphrase is wrong"
    advice = "check the file and its passphrase"


class AuthorizationFailed(RobomailError):
    """Get Refresh Token did not complete (denied, wrong state, timeout, bad redirect)."""

    default_code = "authorization_failed"
    meaning = "Get Refresh Token did not complete"
    advice = "run Get Refresh Token again; the message says why it stopped"


class TokenError(RobomailError):
    """The token endpoint refused; the user must act (``invalid_grant``, ``invalid_client``...)."""

    default_code = "token_refused"
    meaning = "the provider refused the refresh token"
    advice = "run Get Refresh Token again"


class TokenTemporaryError(RobomailError):
    """The token endpoint is unreachable or failing (429, 5xx, network) after retries."""

    default_code = "token_temporary"
    meaning = "the token endpoint is unreachable"
    advice = "try again later"


# --- mail --------------------------------------------------------------------------------------


class ConnectFailed(RobomailError):
    """The server cannot be reached, TLS failed, or STARTTLS was required and not offered."""

    default_code = "connect_failed"
    meaning = (
        "the server cannot be reached, TLS failed, STARTTLS was required but not offered, or "
        "the connection was lost"
    )
    advice = "check server, port and `security`; for certificate errors give `ca_file`"


class LoginFailed(RobomailError):
    """The server rejected the user name and password, or the OAuth token."""

    default_code = "login_failed"
    meaning = "user name/password or OAuth token rejected"
    advice = (
        "check the password; for OAuth run `hostsim oauth test <record>` or Get Refresh "
        "Token again, and check Client Account and Scope"
    )


class LoginTemporaryFailure(RobomailError):
    """The server could not check the login now (its token check is down): try again later."""

    default_code = "login_temporary"
    meaning = "the server could not check the login now; try again later"
    advice = "try again later; nothing is wrong with the record"


class MailProtocolError(RobomailError):
    """The server refused a command (the literal reply is in ``server_reply``)."""

    default_code = "server_error"
    meaning = "the server refused a command (reply attached)"
    advice = "read the server's reply (e.g. a bad `raw_search`)"


class MessageNotFound(RobomailError):
    """No message has that UID or number."""

    default_code = "message_not_found"
    meaning = "no message has that UID or number"
    advice = "UIDs belong to one folder; after a move use the new UID"


class InvalidParameter(RobomailError):
    """A parameter value is wrong in a way only the action can tell."""

    default_code = "invalid_parameter"
    meaning = "a parameter value is wrong"
    advice = "the message says which parameter and what it takes"


class FileError(RobomailError):
    """A file could not be read or written (missing attachment, existing target, bad folder)."""

    default_code = "file_error"
    meaning = "a file could not be read or written"
    advice = "check the path, the folder and `if_exists`"


class ParseError(RobomailError):
    """A message could not be parsed at all."""

    default_code = "parse_error"
    meaning = "the message is empty or unparsable"
    advice = "give an RFC 5322 message (.eml)"


class SendFailed(RobomailError):
    """SMTP refused the message or every recipient."""

    default_code = "send_failed"
    meaning = "the server refused the sender, the message or every recipient"
    advice = "read the server's reply; check the sender, the recipients and the size"


class FolderNotFound(RobomailError):
    """An IMAP folder does not exist (and create_if_missing was not set)."""

    default_code = "folder_not_found"
    meaning = "the IMAP folder does not exist"
    advice = "check the name, or use `create_if_missing: true`"
