"""The OAuth parameters editor as a host-neutral EditorSpec: fields, and commands with params.

A host's settings screen (or hostsim's CLI, ``hostsim oauth <command>``) is built from this, at
start-up, so it imports no credential code: each command imports ``editor`` (which does the work)
the first time one of them runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from robomail_plugin.credentials.choices import ON_CONFLICT, PASSPHRASE_ENV, REDIRECT_HOSTS
from robomail_plugin.lazy import deferred_module, lazy_run
from robomail_plugin.schema import (
    CHOICES_FROM_PROVIDERS,
    CommandScope,
    EditorCommand,
    EditorField,
    EditorSpec,
    FieldKind,
    FieldRule,
    Param,
    ParamType,
)

if TYPE_CHECKING:
    from robomail_plugin.credentials import editor
    from robomail_plugin.credentials.editor import Command
    from robomail_plugin.services import Services
else:
    editor = deferred_module("robomail_plugin.credentials.editor")

EDITOR = "robomail_plugin.credentials.editor"
RECORD_TYPE = "oauth"

_LINE = (FieldRule.SINGLE_LINE,)
_URL = (FieldRule.URL,)
FIELDS = (
    EditorField(name="record_name", label="Record Name", required=True, max_length=200,
                rules=(FieldRule.SINGLE_LINE, FieldRule.NO_EDGE_SPACES), placeholder="Work Mail",
                help="Unique name; actions pick the record by it (oauth_record)."),
    EditorField(name="client_account", label="Client Account", required=True, rules=_LINE,
                placeholder="you@example.com",
                help="The mailbox's user name, usually its e-mail address."),
    EditorField(name="client_id", label="Client ID", required=True, rules=_LINE,
                help="From the provider's app registration."),
    EditorField(name="client_secret", label="Client Secret", kind=FieldKind.SECRET, rules=_LINE,
                help="Optional. Leave empty for a public client (Microsoft personal accounts)."),
    EditorField(name="refresh_token", label="Refresh Token", kind=FieldKind.SECRET,
                read_only=True, help="Obtained only by Get Refresh Token."),
    EditorField(name="authorization_endpoint", label="Authorization Endpoint", kind=FieldKind.URL,
                required=True, rules=_URL, placeholder="https://",
                help="Where the user signs in (Load Predefined Endpoints)."),
    EditorField(name="token_endpoint", label="Access Token Endpoint", kind=FieldKind.URL,
                required=True, rules=_URL, placeholder="https://",
                help="Exchanges the code and the refresh token for tokens."),
    EditorField(name="scope", label="Scope", required=True, rules=_LINE,
                help="Space-separated, as the provider documents."),
    EditorField(name="device_endpoint", label="Device Authorization Endpoint", kind=FieldKind.URL,
                rules=_URL, help="Optional: for the device-code flow (Microsoft)."),
)

_NAME = Param(name="record_name", required=True, positional=True, help="the Record Name")
_SECRET_PARAM = Param(name="client_secret", secret=True,
                      help="Client Secret; empty for a public client")
_FIELD_PARAMS = (
    Param(name="client_account", aliases=("account",),
          help="Client Account (the mailbox's user name)"),
    Param(name="client_id", help="Client ID from the app registration"),
    _SECRET_PARAM,
    Param(name="authorization_endpoint", aliases=("auth_endpoint",),
          help="Authorization Endpoint (https://...)"),
    Param(name="token_endpoint", help="Access Token Endpoint (https://...)"),
    Param(name="scope", help="Scope, space-separated"),
    Param(name="device_endpoint", help="Device Authorization Endpoint (optional)"),
)
_PROVIDER = Param(
    name="provider", choices_from=CHOICES_FROM_PROVIDERS,
    help="fill endpoints and scope from a preset (google, microsoft...)",
)
_TENANT = Param(name="tenant", help="Microsoft tenant: common (default), organizations, consumers, "
                "or a tenant id")
_RECORD_RESULT = "the record: a dict keyed by field names, secrets as *** (set) or '' (empty)"


def build_editor(services: Services) -> EditorSpec:
    """The OAuth parameters editor; its commands run ``editor.OAuthEditor``'s methods."""

    does = editor.OAuthEditor  # each command names the method that does it

    def cmd(id_: str, label: str, method: Command, params: tuple[Param, ...], help_: str,
            **facts: Any) -> EditorCommand:
        run = lazy_run(EDITOR, "run_command", services, method)
        if params and params[0] is _NAME:
            facts.setdefault("scope", CommandScope.RECORD)
        return EditorCommand(id=id_, label=label, run=run, params=params, help=help_, **facts)

    return EditorSpec(
        record_type=RECORD_TYPE,
        title="OAuth parameters",
        fields=FIELDS,
        help="Named OAuth 2.0 parameter sets the Email actions log in with (oauth_record).",
        key_field="record_name",
        list_command="list",
        show_command="show",
        save_command="save",
        commands=(
            cmd("list", "List records", does.list, (), "List the OAuth records.",
                result="a list of records, each a dict keyed by field names (secrets masked)"),
            cmd("show", "Show record", does.show, (_NAME,),
                "Show one record (secrets masked).", result=_RECORD_RESULT),
            cmd("save", "Save", does.save, (_NAME, *_FIELD_PARAMS),
                "Create a record, or change the fields given of an existing one (a form's Save; "
                "fields left out keep their values).", result=_RECORD_RESULT,
                scope=CommandScope.GLOBAL),
            cmd("add", "Add record", does.add, (_NAME, *_FIELD_PARAMS, _PROVIDER, _TENANT),
                "Create a record. --provider fills endpoints and scope; the Client Secret is "
                "asked for when not given (empty for a public client).", result=_RECORD_RESULT,
                scope=CommandScope.GLOBAL),
            cmd("edit", "Edit record", does.edit, (_NAME, *_FIELD_PARAMS, _PROVIDER, _TENANT),
                "Change fields of a record (only the options given).", result=_RECORD_RESULT),
            cmd("delete", "Delete", does.delete, (_NAME,), "Delete a record.",
                confirm="Delete this OAuth record? Tasks that name it stop working."),
            cmd("rename", "Rename record", does.rename,
                (_NAME, Param(name="new_name", required=True, positional=True,
                              help="the new Record Name")),
                "Rename a record (tasks naming it must be updated).",
                result="{old, new}: the two names"),
            cmd("load_predefined", "Load Predefined Endpoints", does.load_predefined,
                (_NAME, Param(name="provider", required=True, positional=True,
                              choices_from=CHOICES_FROM_PROVIDERS,
                              help="google, microsoft, or a provider a plugin adds"), _TENANT),
                "Fill the Authorization Endpoint, Access Token Endpoint and Scope from a "
                "provider preset.", result=_RECORD_RESULT),
            cmd("get_refresh_token", "Get Refresh Token", does.get_refresh_token,
                (_NAME,
                 Param(name="no_browser", type=ParamType.BOOL, default=False,
                       help="print the URL and paste the redirect URL back"),
                 Param(name="device", type=ParamType.BOOL, default=False,
                       help="use the device-code flow (Microsoft)"),
                 Param(name="redirect_url",
                       help="finish a --no-browser sign-in started without a terminal: the "
                       "address the browser showed after signing in"),
                 Param(name="timeout", type=ParamType.INT, default=300,
                       help="seconds to wait for the sign-in (browser, pasted URL or device "
                       "code)"),
                 Param(name="redirect_host", type=ParamType.CHOICE,
                       choices=("auto", *REDIRECT_HOSTS), default="auto",
                       help="host in the redirect URI: auto is localhost for Microsoft, "
                       "else 127.0.0.1 (the listener is on 127.0.0.1 either way)")),
                "Sign in through the browser (PKCE) and save the Refresh Token.",
                long_running=True,
                result="record_name, refresh_token (***), expires_at and expires_in_s of the "
                "first access token"),
            cmd("export", "Export info to file", does.export,
                (Param(name="names", type=ParamType.LIST, positional=True,
                       help="records to export (default: all)"),
                 Param(name="to", type=ParamType.PATH, required=True, help="file to write"),
                 Param(name="include_secrets", type=ParamType.BOOL, default=False,
                       help="include Client Secret and Refresh Token"),
                 Param(name="passphrase", secret=True,
                       help=f"encrypt the secrets (or set {PASSPHRASE_ENV})")),
                "Write records to a JSON file another installation can import.",
                result="file, records (names written), secrets (none|encrypted), damaged"),
            cmd("import", "Import info from file", does.import_,
                (Param(name="file", type=ParamType.PATH, required=True, positional=True,
                       help="the export file"),
                 Param(name="on_conflict", type=ParamType.CHOICE,
                       choices=ON_CONFLICT, default="error",
                       help="what to do when a Record Name exists"),
                 Param(name="passphrase", secret=True,
                       help=f"the export's passphrase (or set {PASSPHRASE_ENV})")),
                "Import records from an export file; checks everything first, changes "
                "nothing on error.", result="added, overwritten, renamed ([old, new] pairs)"),
            cmd("test", "Test", does.test, (_NAME,),
                "Get an access token now and report its expiry (never the token).",
                result="record_name, expires_at, expires_in_s (never the token)"),
            cmd("doctor", "Check against the provider's rules", does.doctor,
                (_NAME,
                 Param(name="protocols", type=ParamType.LIST, aliases=("protocol",),
                       help="the protocols your tasks use: imap, pop3, smtp (repeat, or "
                       "comma-separated; default: all three)")),
                "Check a record against its provider's rules (the scopes the protocols need, "
                "offline_access, a secret on a public client, tenant, redirect) and the last "
                "errors seen, and say what to fix where; contacts no one.",
                result="record_name, provider, problems (count), findings ([{level: "
                "problem|ok|note, topic, text}])"),
            cmd("rotate_key", "Rotate encryption key", does.rotate_key,
                (Param(name="new_key", secret=True,
                       help="the new key (needed when the key comes from ROBOMAIL_KEY)"),),
                "Re-encrypt every stored secret with a new key.",
                confirm="Re-encrypt every stored secret with a new key? Keep the new key: the "
                "old one will no longer open the store.",
                result="key_id, records"),
            cmd("copy_store", "Copy records between stores", does.copy_store,
                (Param(name="to", help="copy the store in use to: a postgresql:// URL, "
                       "'embedded' (the embedded store in ROBOMAIL_HOME) or a folder"),
                 Param(name="from", help="or copy into the store in use from one of those"),
                 Param(name="on_conflict", type=ParamType.CHOICE, choices=ON_CONFLICT,
                       default="error", help="what to do when a Record Name exists")),
                "Copy every record, secrets included, between the embedded store and a "
                "PostgreSQL store (either way); secrets move only in memory, sealed again by "
                "the target.", scope=CommandScope.GLOBAL,
                result="source, target, added, overwritten, renamed ([old, new] pairs), damaged"),
        ),
    )
