"""Help and messages a newcomer meets: suggestions for typos, option types, wording."""

from __future__ import annotations

import json
import textwrap

import pytest
from click.testing import CliRunner

from hostsim.cli.main import main
from hostsim.runtime.task import TaskError, load_task_text


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


def test_a_mistyped_action_title_gets_a_suggestion(host):
    with pytest.raises(TaskError, match=r"unknown action 'IMAP Mail Lop' \(did you mean "
                                        r"'IMAP Mail Loop'\?\)"):
        load_task_text("name: t\nsteps:\n  - action: IMAP Mail Lop\n", host.registry)


def test_a_mistyped_parameter_gets_a_suggestion(host):
    text = "name: t\nsteps:\n  - action: IMAP Open\n    params: {servr: x}\n"
    with pytest.raises(TaskError, match=r"unknown parameter\(s\) servr \(did you mean 'server'"):
        load_task_text(text, host.registry)


def test_editor_options_say_their_type_and_have_no_negative_twins():
    _, out = cli("oauth", "get-refresh-token", "--help")
    assert "--no-browser" in out and "--no-no-browser" not in out
    assert "--timeout INTEGER" in out
    _, out = cli("oauth", "export", "--help")
    assert "--to PATH" in out


def test_short_helps_say_what_a_command_does():
    _, out = cli("oauth", "--help")
    assert "Create a record" in out and "Add record" not in out


def test_connection_hint_uses_the_right_article(host):
    result = host.run_text(textwrap.dedent("""
        name: t
        steps:
          - action: IMAP Close
    """))
    assert "run an IMAP Open step" in result.error.description


def test_add_without_endpoints_points_at_the_provider_option():
    code, out = cli("oauth", "add", "x", "--account", "a@example.test", "--client-id", "c",
                    "--client-secret", "")
    assert code != 0
    assert "--provider google|microsoft" in out


def test_device_flow_on_a_record_without_a_device_endpoint_does_not_blame_google():
    cli("oauth", "add", "corp", "--account", "a@example.test", "--client-id", "c",
        "--client-secret", "", "--authorization-endpoint", "https://auth.example.test/a",
        "--token-endpoint", "https://auth.example.test/t", "--scope", "mail")
    code, out = cli("oauth", "get-refresh-token", "corp", "--device")
    assert code != 0 and "Google" not in out
    assert "edit --device-endpoint" in out


def test_import_overwrite_without_secrets_says_the_tokens_were_kept(tmp_path):
    cli("oauth", "add", "kept", "--account", "a@example.test", "--client-id", "c",
        "--client-secret", "s", "--provider", "google")
    target = tmp_path / "out.json"
    cli("oauth", "export", "--to", str(target))
    code, out = cli("oauth", "import", str(target), "--on-conflict", "overwrite")
    assert code == 0, out
    assert "kept their Client Secret and Refresh Token" in out
    assert "run get-refresh-token" not in out
    document = json.loads(target.read_text())
    document["records"][0]["record_name"] = "fresh"
    target.write_text(json.dumps(document))
    _, out = cli("oauth", "import", str(target))
    assert "run get-refresh-token for 'fresh'" in out


def test_mistyped_commands_get_a_suggestion():
    code, out = cli("oauth", "lsit")
    assert code != 0 and "Did you mean 'list'?" in out
    code, out = cli("acions")
    assert code != 0 and "Did you mean 'actions'?" in out
    code, out = cli("describe", "IMAP Opn")
    assert code != 0 and "did you mean 'IMAP Open'?" in out


def test_the_top_level_help_lists_the_environment_variables():
    _, out = cli("--help")
    for name in ("HOSTSIM_HOME", "ROBOMAIL_HOME", "ROBOMAIL_KEY", "HOSTSIM_BLOCK_PLUGINS",
                 "HOSTSIM_TRACE", "HOSTSIM_PLUGIN_CACHE"):
        assert name in out
